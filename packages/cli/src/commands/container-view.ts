/**
 * What `shoal container ls|ps` and `container inspect` show of the engine's container records, as
 * docker's `ps` columns, `--filter` keys and `inspect` JSON, kept apart from the command wiring so
 * that they test without containers.
 */
import { InvalidArgumentError } from '@shoal/common';
import type { ContainerRecord, NetworkMode } from '@shoal/engine';
import { matchLabels, type Filters } from '../format/index.js';

/** docker's `ps --filter` keys that apply to the engine's containers. */
export const PS_FILTERS = [
  'id',
  'name',
  'label',
  'status',
  'exited',
  'ancestor',
  'health',
  'before',
  'since',
  'volume',
  'network',
] as const;

const STATES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];
const HEALTH = ['starting', 'healthy', 'unhealthy', 'none'];

export const PS_TABLE = '{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

export const PS_HEADERS: Readonly<Record<string, string | (() => string)>> = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Names: 'NAMES',
  Labels: 'LABELS',
  Label: () => 'LABEL',
  Mounts: 'MOUNTS',
  Networks: 'NETWORKS',
  LocalVolumes: 'LOCAL VOLUMES',
};

/** One row of `container ls` (also its `--format json` object), as docker's container context. */
export interface PsRow {
  ID: string;
  Image: string;
  Command: string;
  CreatedAt: string;
  RunningFor: string;
  Ports: string;
  State: string;
  Status: string;
  Size: string;
  Names: string;
  Labels: string;
  Mounts: string;
  Networks: string;
  LocalVolumes: string;
  /** `{{.Label "k"}}`: the value of one label (not part of the JSON). */
  readonly Label?: (key: string) => string;
}

/** Docker's human durations: `Less than a second`, `3 seconds`, `About a minute`, `5 minutes`, `2 days`... */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 14) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 60) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 730) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

function since(iso: string | undefined, now: number): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? 0 : Math.max(0, now - t);
}

/** docker's State string of a container. */
export function stateOf(r: ContainerRecord): string {
  return r.status;
}

/** docker's STATUS: `Up 5 minutes (healthy)`, `Exited (3) 2 minutes ago`, `Created`. */
export function statusText(r: ContainerRecord, now: number): string {
  switch (r.status) {
    case 'running': {
      const up = `Up ${humanDuration(since(r.startedAt, now))}`;
      const h = r.health?.status;
      if (h === 'starting') return `${up} (health: starting)`;
      return h ? `${up} (${h})` : up;
    }
    case 'exited': {
      const code = r.exitCode ?? 255;
      return r.finishedAt ? `Exited (${code}) ${humanDuration(since(r.finishedAt, now))} ago` : `Exited (${code})`;
    }
    case 'created':
      return 'Created';
  }
}

/** Cuts `s` to `n` characters, the last one an ellipsis, as docker's tables. */
export function ellipsis(s: string, n: number): string {
  const chars = [...s];
  return chars.length <= n ? s : chars.slice(0, n - 1).join('') + '…';
}

/** Go's `time.Time` text (`2026-11-29 04:02:13 +0000 UTC`), as docker's `.CreatedAt`. */
export function goTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const off = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + off * 60_000);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const sign = off < 0 ? '-' : '+';
  const zone =
    new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')
      ?.value ?? '';
  return (
    `${local.getUTCFullYear()}-${p(local.getUTCMonth() + 1)}-${p(local.getUTCDate())} ` +
    `${p(local.getUTCHours())}:${p(local.getUTCMinutes())}:${p(local.getUTCSeconds())} ` +
    `${sign}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)} ${zone}`
  );
}

/** The network a container is on, by docker's names: `none`, `host`, or the namespace path it joined. */
export function networkName(mode: NetworkMode | undefined): string {
  if (mode === undefined) return 'none';
  return typeof mode === 'string' ? mode : mode.path;
}

function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join(',');
}

/** The mounts' names as docker's MOUNTS: volume names, bind and tmpfs targets' sources. */
function mountNames(r: ContainerRecord): string[] {
  return [...(r.volumes ?? []).map((v) => v.name), ...r.binds.map((b) => b.source), ...r.tmpfs.map(() => 'tmpfs')];
}

export function psRow(r: ContainerRecord, opts: { now: number; trunc: boolean; size?: string }): PsRow {
  const command = r.process.args.join(' ');
  const image = opts.trunc && /^sha256:[0-9a-f]{64}$/.test(r.image) ? r.image.slice(7, 19) : r.image;
  const row: PsRow = {
    ID: opts.trunc ? r.id.slice(0, 12) : r.id,
    Image: image,
    Command: JSON.stringify(opts.trunc ? ellipsis(command, 20) : command),
    CreatedAt: goTime(r.created),
    RunningFor: `${humanDuration(since(r.created, opts.now))} ago`,
    Ports: '',
    State: stateOf(r),
    Status: statusText(r, opts.now),
    Size: opts.size ?? '',
    Names: r.name,
    Labels: labelText(r.labels),
    Mounts: mountNames(r)
      .map((m) => (opts.trunc ? ellipsis(m, 15) : m))
      .join(','),
    Networks: networkName(r.network?.mode),
    LocalVolumes: String((r.volumes ?? []).length),
  };
  Object.defineProperty(row, 'Label', { value: (k: string): string => r.labels[k] ?? '', enumerable: false });
  return row;
}

/** Docker's unanchored regular-expression match of filter values (or an exact match). */
function reMatch(values: readonly string[], source: string): boolean {
  return values.some((v) => {
    if (v === source) return true;
    try {
      return new RegExp(v).test(source);
    } catch (err) {
      if (err instanceof SyntaxError) return false;
      throw err;
    }
  });
}

/** Checks filter values that have a fixed set (status, health, exited) before anything is opened. */
export function checkPsFilters(filters: Filters): void {
  for (const v of filters.get('status') ?? [])
    if (!STATES.includes(v)) throw new InvalidArgumentError(`invalid filter 'status=${v}'`);
  for (const v of filters.get('health') ?? [])
    if (!HEALTH.includes(v)) throw new InvalidArgumentError(`invalid filter 'health=${v}'`);
  for (const v of filters.get('exited') ?? [])
    if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`invalid filter 'exited=${v}'`);
}

/** Does `ref` (as given to `ancestor=`) name the image the container runs? */
function isAncestor(r: ContainerRecord, ref: string): boolean {
  const withTag = (s: string): string => (/:[^/]+$/.test(s) || s.includes('@') ? s : `${s}:latest`);
  const short = (s: string): string => s.replace(/^docker\.io\/(library\/)?/, '');
  if (ref === r.image || withTag(short(ref)) === withTag(short(r.image))) return true;
  const hex = ref.replace(/^sha256:/, '');
  return /^[0-9a-f]{4,64}$/.test(hex) && r.imageId.replace(/^sha256:/, '').startsWith(hex);
}

/**
 * The containers `ps` shows, newest first: running ones (all with `all`, a status filter or a
 * limit), filtered as docker's keys (values of one key OR-ed, keys AND-ed), at most `last`.
 */
export function selectContainers(
  records: readonly ContainerRecord[],
  filters: Filters,
  opts: { all?: boolean; last?: number },
): ContainerRecord[] {
  const sorted = [...records].sort((a, b) => b.created.localeCompare(a.created));
  const find = (key: 'before' | 'since'): ContainerRecord | undefined => {
    const refs = filters.get(key);
    if (!refs) return undefined;
    const ref = refs[refs.length - 1] ?? '';
    const hit =
      sorted.find((r) => r.id === ref || r.name === ref.replace(/^\//, '')) ??
      sorted.find((r) => ref.length > 0 && r.id.startsWith(ref));
    if (!hit) throw new InvalidArgumentError(`no such container: ${ref}`);
    return hit;
  };
  const before = find('before');
  const after = find('since');
  const all = opts.all === true || filters.has('status') || (opts.last !== undefined && opts.last > 0);
  const has = (key: string, test: (v: string) => boolean): boolean => {
    const vs = filters.get(key);
    return vs === undefined || vs.some(test);
  };
  const out = sorted.filter((r) => {
    if (!all && r.status !== 'running') return false;
    const id = filters.get('id');
    if (id && !reMatch(id, r.id)) return false;
    const name = filters.get('name');
    if (name && !reMatch(name, `/${r.name}`)) return false;
    const labels = filters.get('label');
    if (labels && !matchLabels(r.labels, labels)) return false;
    if (!has('status', (v) => v === stateOf(r))) return false;
    if (!has('exited', (v) => r.status === 'exited' && Number(v) === (r.exitCode ?? 255))) return false;
    if (!has('health', (v) => v === (r.health?.status ?? 'none'))) return false;
    if (!has('ancestor', (v) => isAncestor(r, v))) return false;
    if (before && r.created >= before.created) return false;
    if (after && r.created <= after.created) return false;
    const mounts = [
      ...(r.volumes ?? []).flatMap((v) => [v.name, v.target]),
      ...r.binds.flatMap((b) => [b.source, b.target]),
      ...r.tmpfs.map((m) => m.target),
    ];
    if (!has('volume', (v) => mounts.includes(v))) return false;
    if (!has('network', (v) => v === networkName(r.network?.mode))) return false;
    return true;
  });
  return opts.last !== undefined && opts.last > 0 ? out.slice(0, opts.last) : out;
}

/** `container inspect`: docker's JSON shape of a container, as far as the record knows it. */
export function inspectJson(
  r: ContainerRecord,
  opts: { volumeSource?: (name: string) => string; imageConfig?: { Entrypoint?: string[]; Cmd?: string[] } } = {},
): Record<string, unknown> {
  const [path = '', ...args] = r.process.args;
  const { entrypoint, cmd } = splitCommand(r, opts.imageConfig);
  const running = r.status === 'running';
  const state: Record<string, unknown> = {
    Status: stateOf(r),
    Running: running,
    Paused: false,
    Restarting: false,
    OOMKilled: r.oomKilled ?? false,
    Dead: false,
    Pid: running ? (r.pid ?? 0) : 0,
    ExitCode: r.exitCode ?? 0,
    Error: r.monitorLost ? 'the container monitor was lost: exit status unknown' : '',
    StartedAt: r.startedAt ?? '0001-01-01T00:00:00Z',
    FinishedAt: r.finishedAt ?? '0001-01-01T00:00:00Z',
  };
  if (r.health) {
    state['Health'] = {
      Status: r.health.status,
      FailingStreak: r.health.failingStreak,
      Log: r.health.log.map((p) => ({ Start: p.start, End: p.end, ExitCode: p.exitCode, Output: p.output })),
    };
  }
  const mounts = [
    ...(r.volumes ?? []).map((v) => ({
      Type: 'volume',
      Name: v.name,
      Source: opts.volumeSource?.(v.name) ?? '',
      Destination: v.target,
      Driver: 'local',
      Mode: v.readOnly ? 'ro' : 'z',
      RW: !v.readOnly,
      Propagation: '',
    })),
    ...r.binds.map((b) => ({
      Type: 'bind',
      Source: b.source,
      Destination: b.target,
      Mode: b.readOnly ? 'ro' : '',
      RW: !b.readOnly,
      Propagation: 'rprivate',
    })),
    ...r.tmpfs.map((m) => ({
      Type: 'tmpfs',
      Source: '',
      Destination: m.target,
      Mode: (m.options ?? []).join(','),
      RW: !(m.options ?? []).includes('ro'),
      Propagation: '',
    })),
  ];
  const policy = r.restartPolicy ?? { name: 'no' };
  const hc = r.healthcheck;
  return {
    Id: r.id,
    Created: r.created,
    Path: path,
    Args: args,
    State: state,
    Image: r.imageId,
    LogPath: r.logPath,
    Name: `/${r.name}`,
    RestartCount: r.restartCount ?? 0,
    HostConfig: {
      RestartPolicy: { Name: policy.name, MaximumRetryCount: policy.maximumRetryCount ?? 0 },
      AutoRemove: r.autoRemove,
      NetworkMode: networkName(r.network?.mode),
      ReadonlyRootfs: r.readOnly,
      Memory: r.limits.memoryBytes ?? 0,
      NanoCpus: r.limits.cpus === undefined ? 0 : Math.round(r.limits.cpus * 1e9),
      PidsLimit: r.limits.pidsLimit ?? null,
      Binds: r.binds.length ? r.binds.map((b) => `${b.source}:${b.target}${b.readOnly ? ':ro' : ''}`) : null,
      Tmpfs: r.tmpfs.length ? Object.fromEntries(r.tmpfs.map((m) => [m.target, (m.options ?? []).join(',')])) : null,
    },
    Mounts: mounts,
    Config: {
      Hostname: r.network?.hostname ?? r.id.slice(0, 12),
      User: r.process.user,
      Env: r.process.env,
      Cmd: cmd,
      Image: r.image,
      WorkingDir: r.process.cwd,
      Entrypoint: entrypoint,
      Labels: r.labels,
      StopSignal: r.stopSignal,
      StopTimeout: Math.round(r.stopTimeoutMs / 1000),
      ...(hc
        ? {
            Healthcheck: {
              Test: hc.test,
              ...(hc.intervalMs !== undefined ? { Interval: hc.intervalMs * 1e6 } : {}),
              ...(hc.timeoutMs !== undefined ? { Timeout: hc.timeoutMs * 1e6 } : {}),
              ...(hc.startPeriodMs !== undefined ? { StartPeriod: hc.startPeriodMs * 1e6 } : {}),
              ...(hc.retries !== undefined ? { Retries: hc.retries } : {}),
            },
          }
        : {}),
    },
  };
}

/**
 * The record keeps the argv the container runs (entrypoint then cmd); docker's Config keeps them
 * apart. The split comes from what `run` overrode, else from the image's config, else all is Cmd.
 */
function splitCommand(
  r: ContainerRecord,
  image: { Entrypoint?: string[]; Cmd?: string[] } | undefined,
): { entrypoint: string[] | null; cmd: string[] | null } {
  const argv = r.process.args;
  const o = r.createOptions;
  const split = (n: number): { entrypoint: string[] | null; cmd: string[] | null } => ({
    entrypoint: n > 0 ? argv.slice(0, n) : null,
    cmd: argv.length > n ? argv.slice(n) : null,
  });
  if (o?.entrypoint !== undefined) return split(Math.min(o.entrypoint.length, argv.length));
  if (o?.cmd !== undefined) return split(Math.max(0, argv.length - o.cmd.length));
  if (image?.Entrypoint?.length && argv.length >= image.Entrypoint.length) return split(image.Entrypoint.length);
  return split(0);
}
