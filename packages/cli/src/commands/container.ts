/**
 * `shoal container ...`: a docker-like local CLI on the embedded engine, daemonless (as podman):
 * every call opens the engine on the data root, acts and exits. Container state is in files the
 * engine updates under an flock, so this CLI and a running shoald never corrupt each other's
 * state; containers are watched by their own monitor (shoal-shim), not by this process.
 * Health checks run only while an engine process runs (shoald, or `container run` without -d).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, errorMessage, hasCode } from '@shoal/common';
import {
  DEFAULT_ENGINE_ROOT,
  Engine,
  validateCreateOptions,
  type BindMount,
  type ContainerCreateOptions,
  type ExtraHost,
  type HealthcheckConfig,
  type ImageResolver,
  type NetworkMode,
  type SecretFile,
  type TmpfsMount,
  type VolumeMount,
  parseRestartPolicy,
} from '@shoal/engine';
import { ignoreCodes } from '../ignore.js';
import { hostFlag } from '../daemon/action.js';
import {
  attachToSwarmNetwork,
  attachmentOf,
  detachFromSwarmNetwork,
  isSwarmNetwork,
  reattach,
  type SwarmAttachment,
} from './container-attach.js';
import { registerInspect, registerPs } from './container-ps.js';

export interface GlobalOpts {
  dataRoot?: string;
  runRoot?: string;
  cgroupParent?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const parseSysctlFlag = (v: string, prev: Record<string, string>): Record<string, string> =>
  parseSysctl(v, { ...prev });

/** `30s`, `1m30s`, `500ms`, `2h`, or plain seconds → milliseconds. */
export function parseDuration(s: string, what: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let used = 0;
  for (const m of s.matchAll(re)) {
    const n = Number(m[1]);
    total += n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    used += m[0].length;
  }
  if (used !== s.length || used === 0) throw new InvalidArgumentError(`${what}: invalid duration ${JSON.stringify(s)}`);
  return total;
}

/** `64m`, `1g`, `512k`, `100b` or bytes → bytes. */
export function parseBytes(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(s.trim());
  if (!m) throw new InvalidArgumentError(`${what}: invalid size ${JSON.stringify(s)}`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
    (m[2] ?? '').toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'
  ];
  return Math.round(Number(m[1]) * mult);
}

/**
 * `-v` as docker's: `/host:/ctr[:ro|rw]` is a bind, `NAME:/ctr[:ro|rw|nocopy]` a named volume
 * (created on first use), `/ctr` an anonymous volume.
 */
export function parseVolume(v: string): { bind: BindMount } | { volume: VolumeMount } {
  const parts = v.split(':');
  if (parts.length === 1) {
    if (!v.startsWith('/'))
      throw new InvalidArgumentError(`--volume ${v}: an anonymous volume needs an absolute container path`);
    return { volume: { target: v } };
  }
  if (parts.length > 3 || !parts[0] || !parts[1]) {
    throw new InvalidArgumentError(
      `--volume ${v}: expected /host/path:/container/path[:ro|rw] or NAME:/container/path`,
    );
  }
  const modes = parts[2] ? parts[2].split(',') : [];
  for (const m of modes) {
    if (!['ro', 'rw', 'nocopy'].includes(m))
      throw new InvalidArgumentError(`--volume ${v}: mode must be ro, rw or nocopy`);
  }
  const readOnly = modes.includes('ro');
  if (parts[0].startsWith('/')) {
    if (modes.includes('nocopy')) throw new InvalidArgumentError(`--volume ${v}: nocopy is for volumes, not binds`);
    return { bind: { source: parts[0], target: parts[1], readOnly } };
  }
  const vol: VolumeMount = { source: parts[0], target: parts[1] };
  if (readOnly) vol.readOnly = true;
  if (modes.includes('nocopy')) vol.noCopy = true;
  return { volume: vol };
}

/** `k=v` into a map; throws naming the flag. */
function keyValue(kv: string, what: string, into: Record<string, string>): void {
  const eq = kv.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`${what}: ${JSON.stringify(kv)} is not key=value`);
  into[kv.slice(0, eq)] = kv.slice(eq + 1);
}

/**
 * `--mount type=volume|bind|tmpfs,source=..,target=..[,readonly][,volume-opt=k=v][,volume-label=k=v]
 * [,volume-nocopy][,volume-driver=local][,tmpfs-size=..][,tmpfs-mode=..]`, as docker's.
 */
export function parseMount(spec: string): { bind: BindMount } | { volume: VolumeMount } | { tmpfs: TmpfsMount } {
  const what = `--mount ${spec}`;
  let type = 'volume';
  let source: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  let noCopy = false;
  const opts: Record<string, string> = {};
  const labels: Record<string, string> = {};
  const tmpfs: string[] = [];
  for (const field of spec.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    const bool = (): boolean => {
      if (value === undefined || value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw new InvalidArgumentError(`${what}: ${key} takes true or false, not ${JSON.stringify(value)}`);
    };
    switch (key) {
      case 'type':
        type = value ?? '';
        break;
      case 'source':
      case 'src':
        source = value;
        break;
      case 'target':
      case 'destination':
      case 'dst':
        target = value;
        break;
      case 'readonly':
      case 'ro':
        readOnly = bool();
        break;
      case 'volume-nocopy':
        noCopy = bool();
        break;
      case 'volume-opt':
        keyValue(value ?? '', what, opts);
        break;
      case 'volume-label':
        keyValue(value ?? '', what, labels);
        break;
      case 'volume-driver':
        if (value !== 'local')
          throw new InvalidArgumentError(
            `${what}: volume driver ${JSON.stringify(value)} is not supported (only "local")`,
          );
        break;
      case 'tmpfs-size':
        tmpfs.push(`size=${value ?? ''}`);
        break;
      case 'tmpfs-mode':
        tmpfs.push(`mode=${value ?? ''}`);
        break;
      default:
        throw new InvalidArgumentError(`${what}: unexpected key ${JSON.stringify(key)}`);
    }
  }
  if (!target) throw new InvalidArgumentError(`${what}: target is required`);
  const volumeOnly = noCopy || Object.keys(opts).length > 0 || Object.keys(labels).length > 0;
  if (type !== 'volume' && volumeOnly) throw new InvalidArgumentError(`${what}: volume-* options need type=volume`);
  if (type !== 'tmpfs' && tmpfs.length) throw new InvalidArgumentError(`${what}: tmpfs-* options need type=tmpfs`);
  switch (type) {
    case 'bind':
      if (!source) throw new InvalidArgumentError(`${what}: source is required for a bind`);
      return { bind: { source, target, readOnly } };
    case 'tmpfs':
      if (source) throw new InvalidArgumentError(`${what}: a tmpfs has no source`);
      return { tmpfs: { target, options: [...tmpfs, ...(readOnly ? ['ro'] : [])] } };
    case 'volume': {
      const v: VolumeMount = { target };
      if (source) v.source = source;
      if (readOnly) v.readOnly = true;
      if (noCopy) v.noCopy = true;
      if (Object.keys(opts).length) v.driverOpts = opts;
      if (Object.keys(labels).length) v.labels = labels;
      return { volume: v };
    }
    default:
      throw new InvalidArgumentError(`${what}: type ${JSON.stringify(type)} is not volume, bind or tmpfs`);
  }
}

function parseTmpfs(v: string): TmpfsMount {
  const [target, opts] = [v.split(':')[0] ?? '', v.split(':').slice(1).join(':')];
  return { target, options: opts ? opts.split(',') : [] };
}

/** `-e KEY=value` as given; a bare `-e KEY` takes the value of KEY here, or stays bare (unset) when KEY is not set. */
export function parseEnv(v: string, env: NodeJS.ProcessEnv = process.env): string {
  if (v.startsWith('=') || v === '') throw new InvalidArgumentError(`--env ${JSON.stringify(v)}: no variable name`);
  if (v.includes('=')) return v;
  const value = env[v];
  return value === undefined ? v : `${v}=${value}`;
}

/** `--network none|host|ns:PATH` (a swarm network's name is attached through shoald instead). */
export function parseNetwork(v: string): NetworkMode {
  if (v === 'none' || v === 'host') return v;
  if (v.startsWith('ns:')) {
    const path = v.slice(3);
    if (!path.startsWith('/')) throw new InvalidArgumentError(`--network ${v}: ns: needs an absolute path`);
    return { path };
  }
  throw new InvalidArgumentError(
    `--network ${JSON.stringify(v)}: expected none, host or ns:PATH (a network namespace), or the name of an attachable swarm network`,
  );
}

/** `--add-host name:ip`, `name=ip` or `name:[ipv6]`, as the docker CLI. */
export function parseAddHost(v: string): ExtraHost {
  const sep = v.includes('=') ? v.indexOf('=') : v.indexOf(':');
  if (sep <= 0 || sep === v.length - 1) {
    throw new InvalidArgumentError(`--add-host ${JSON.stringify(v)}: expected host:ip (e.g. db:198.18.0.5)`);
  }
  return { host: v.slice(0, sep), ip: v.slice(sep + 1).replace(/^\[(.*)\]$/, '$1') };
}

/** `--sysctl key=value`. */
export function parseSysctl(v: string, into: Record<string, string>): Record<string, string> {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--sysctl ${JSON.stringify(v)}: expected key=value`);
  into[v.slice(0, eq)] = v.slice(eq + 1);
  return into;
}

/**
 * `--secret FILE` or `--secret src=FILE[,name=NAME][,target=PATH][,uid=N][,gid=N][,mode=0400]`:
 * the file's bytes become a secret at /run/secrets/NAME (default the file's base name).
 */
export function parseSecret(v: string, read: (path: string) => Buffer = readFileSync): SecretFile {
  const fields = new Map<string, string>();
  if (!v.includes('=')) fields.set('src', v);
  else {
    for (const part of v.split(',')) {
      const eq = part.indexOf('=');
      const key = eq > 0 ? part.slice(0, eq) : '';
      if (!['src', 'source', 'name', 'target', 'uid', 'gid', 'mode'].includes(key)) {
        throw new InvalidArgumentError(
          `--secret ${JSON.stringify(v)}: unknown field ${JSON.stringify(part)} (src, name, target, uid, gid, mode)`,
        );
      }
      fields.set(key === 'source' ? 'src' : key, part.slice(eq + 1));
    }
  }
  const src = fields.get('src');
  if (!src) throw new InvalidArgumentError(`--secret ${JSON.stringify(v)}: src=FILE is required`);
  const num = (key: string, radix: number): number | undefined => {
    const raw = fields.get(key);
    if (raw === undefined) return undefined;
    const ok = radix === 8 ? /^0?[0-7]{1,4}$/.test(raw) : /^\d+$/.test(raw);
    if (!ok)
      throw new InvalidArgumentError(`--secret ${JSON.stringify(v)}: ${key} ${JSON.stringify(raw)} is not valid`);
    return parseInt(raw, radix);
  };
  let data: Buffer;
  try {
    data = read(src);
  } catch (err) {
    throw new InvalidArgumentError(`--secret ${JSON.stringify(v)}: cannot read ${src}: ${(err as Error).message}`);
  }
  const f: SecretFile = { name: fields.get('name') ?? basename(src), data };
  const target = fields.get('target');
  if (target) f.target = target;
  const uid = num('uid', 10);
  const gid = num('gid', 10);
  const mode = num('mode', 8);
  if (uid !== undefined) f.uid = uid;
  if (gid !== undefined) f.gid = gid;
  if (mode !== undefined) f.mode = mode;
  return f;
}

let images: ImageResolver | undefined;

/**
 * Sets where `container run/create` get images from. Default: the engine's image service on the
 * same data root. Tests and embedders pass their own.
 */
export function useImages(resolver: ImageResolver | undefined): void {
  images = resolver;
}

/**
 * Opens the engine. `collector`: `run` in the foreground collects exits and runs health checks
 * (unless shoald holds that role). `recover: false` for commands that only look (ls, inspect,
 * logs, stats): they change nothing, not even what crashed processes left.
 */
export function openEngine(o: GlobalOpts, collector = false, recover = true): Promise<Engine> {
  return Engine.open({
    dataRoot: o.dataRoot ?? process.env['SHOAL_DATA_ROOT'] ?? DEFAULT_ENGINE_ROOT,
    runRoot: o.runRoot ?? process.env['SHOAL_RUN_ROOT'] ?? '/run/shoal/engine',
    collector,
    recover,
    ...(o.cgroupParent ? { cgroupParent: o.cgroupParent } : {}),
    ...(images ? { images } : {}),
  });
}

export function withRoots(cmd: Command): Command {
  return cmd
    .option(
      '--data-root <dir>',
      `engine state: images and containers (default $SHOAL_DATA_ROOT or ${DEFAULT_ENGINE_ROOT})`,
    )
    .option('--run-root <dir>', 'runtime directory on tmpfs (default /run/shoal/engine)')
    .option('--cgroup-parent <path>', 'parent cgroup of the containers (default /shoal)');
}

interface RunFlags extends GlobalOpts {
  detach?: boolean;
  insecureRegistry: string[];
  name?: string;
  env: string[];
  rm?: boolean;
  volume: string[];
  mount: string[];
  restart?: string;
  tmpfs: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  readOnly?: boolean;
  entrypoint?: string;
  workdir?: string;
  user?: string;
  hostname?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthcheck?: boolean;
  stopSignal?: string;
  stopTimeout?: string;
  label: string[];
  ulimit: string[];
  sysctl: Record<string, string>;
  init?: boolean;
  capAdd: string[];
  capDrop: string[];
  secret: string[];
  network?: string;
  networkAlias: string[];
  addHost: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOption: string[];
}

function createOptions(image: string, cmd: string[], f: RunFlags): ContainerCreateOptions {
  const o: ContainerCreateOptions = { image };
  if (cmd.length) o.cmd = cmd;
  if (f.name) o.name = f.name;
  if (f.env.length) o.env = f.env.map((e) => parseEnv(e));
  if (f.rm) o.autoRemove = true;
  const binds: BindMount[] = [];
  const volumes: VolumeMount[] = [];
  const tmpfs: TmpfsMount[] = f.tmpfs.map(parseTmpfs);
  for (const m of [...f.volume.map(parseVolume), ...f.mount.map(parseMount)]) {
    if ('bind' in m) binds.push(m.bind);
    else if ('volume' in m) volumes.push(m.volume);
    else tmpfs.push(m.tmpfs);
  }
  if (binds.length) o.binds = binds;
  if (volumes.length) o.volumes = volumes;
  if (tmpfs.length) o.tmpfs = tmpfs;
  if (f.restart !== undefined) {
    try {
      o.restartPolicy = parseRestartPolicy(f.restart);
    } catch (err) {
      throw new InvalidArgumentError(flagMessage(err));
    }
    if (f.rm && o.restartPolicy.name !== 'no')
      throw new InvalidArgumentError('Conflicting options: --restart and --rm');
  }
  if (f.memory) o.memoryBytes = parseBytes(f.memory, '--memory');
  if (f.cpus) {
    o.cpus = Number(f.cpus);
    if (!(o.cpus > 0)) throw new InvalidArgumentError(`--cpus ${f.cpus}: must be a number > 0`);
  }
  if (f.pidsLimit) o.pidsLimit = Number(f.pidsLimit);
  if (f.readOnly) o.readOnly = true;
  if (f.entrypoint !== undefined) o.entrypoint = f.entrypoint ? [f.entrypoint] : [];
  if (f.workdir) o.workdir = f.workdir;
  if (f.user) o.user = f.user;
  if (f.hostname) o.hostname = f.hostname;
  if (f.stopSignal) o.stopSignal = f.stopSignal;
  if (f.stopTimeout) o.stopTimeoutMs = Number(f.stopTimeout) * 1000;
  if (f.label.length)
    o.labels = Object.fromEntries(f.label.map((l) => [l.split('=')[0] ?? l, l.split('=').slice(1).join('=')]));
  if (f.ulimit.length) o.ulimits = f.ulimit;
  if (Object.keys(f.sysctl).length) o.sysctls = f.sysctl;
  if (f.init) o.init = true;
  if (f.capAdd.length) o.capAdd = f.capAdd;
  if (f.capDrop.length) o.capDrop = f.capDrop;
  if (f.network && !isSwarmNetwork(f.network)) o.network = parseNetwork(f.network);
  if (f.networkAlias.length && !isSwarmNetwork(f.network))
    throw new InvalidArgumentError('--network-alias: network-scoped aliases are only supported for swarm networks');
  if (f.addHost.length) o.extraHosts = f.addHost.map(parseAddHost);
  if (f.dns.length) o.dns = f.dns;
  if (f.dnsSearch.length) o.dnsSearch = f.dnsSearch;
  if (f.dnsOption.length) o.dnsOptions = f.dnsOption;
  if (f.secret.length) o.secrets = f.secret.map((v) => parseSecret(v));
  if (f.healthcheck === false) o.healthcheck = { test: ['NONE'] };
  else if (f.healthCmd) {
    const hc: HealthcheckConfig = { test: ['CMD-SHELL', f.healthCmd] };
    if (f.healthInterval) hc.intervalMs = parseDuration(f.healthInterval, '--health-interval');
    if (f.healthTimeout) hc.timeoutMs = parseDuration(f.healthTimeout, '--health-timeout');
    if (f.healthRetries) hc.retries = Number(f.healthRetries);
    if (f.healthStartPeriod) hc.startPeriodMs = parseDuration(f.healthStartPeriod, '--health-start-period');
    o.healthcheck = hc;
  }
  // every value checked as the engine will, before anything is pulled or made
  try {
    validateCreateOptions(o);
  } catch (err) {
    throw new InvalidArgumentError(flagMessage(err));
  }
  return o;
}

/** The engine's field names as the flags that set them. */
const FLAG_OF: Record<string, string> = {
  ulimits: '--ulimit',
  capAdd: '--cap-add',
  capDrop: '--cap-drop',
  network: '--network',
  'add-host': '--add-host',
  dns: '--dns',
  'dns-search': '--dns-search',
  'dns-option': '--dns-option',
  env: '--env',
  name: '--name',
  memory: '--memory',
  cpus: '--cpus',
  volume: '--volume',
  restart: '--restart',
  tmpfs: '--tmpfs',
  image: 'IMAGE',
};

/** An engine validation error as one line naming the flag: `--ulimit: "x" is not name=soft[:hard]`. */
function flagMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const e = err as { field?: unknown; key?: unknown };
  if (typeof e.key === 'string') return `--sysctl ${msg.replace(/^sysctl /, '')}`;
  const flag = typeof e.field === 'string' ? FLAG_OF[e.field] : undefined;
  if (!flag || typeof e.field !== 'string') return msg;
  const prefix = [`invalid spec: ${e.field}: `, `${e.field}: `].find((p) => msg.startsWith(p));
  return `${flag}: ${prefix ? msg.slice(prefix.length) : msg}`;
}

function runFlags(cmd: Command): Command {
  return withRoots(cmd)
    .option('--name <name>', 'container name')
    .option(
      '--insecure-registry <host[:port]>',
      'allow plain HTTP for this registry when pulling the image (repeatable)',
      collect,
      [],
    )
    .option('-e, --env <KEY=value>', 'environment variable (repeatable)', collect, [])
    .option('-l, --label <k=v>', 'label (repeatable)', collect, [])
    .option(
      '-v, --volume <src:dst[:ro]>',
      'bind (/host:/ctr), named volume (NAME:/ctr) or anonymous volume (/ctr) (repeatable)',
      collect,
      [],
    )
    .option(
      '--mount <type=..,source=..,target=..>',
      'volume, bind or tmpfs mount, as docker --mount (repeatable)',
      collect,
      [],
    )
    .option('--restart <policy>', 'no, always, unless-stopped or on-failure[:max-retries] (carried out by shoald)')
    .option('--tmpfs <path[:opts]>', 'tmpfs mount (repeatable)', collect, [])
    .option('-m, --memory <size>', 'memory limit (e.g. 64m)')
    .option('--cpus <n>', 'CPU limit (e.g. 0.5)')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--entrypoint <prog>', 'override the image entrypoint')
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <uid[:gid]>', 'user')
    .option('-h, --hostname <name>', 'hostname')
    .option('--health-cmd <cmd>', 'health check command (run with /bin/sh -c)')
    .option('--health-interval <d>', 'time between checks (e.g. 30s)')
    .option('--health-timeout <d>', 'time a check may take')
    .option('--health-retries <n>', 'failures in a row before unhealthy')
    .option('--health-start-period <d>', 'grace period at start')
    .option('--no-healthcheck', 'disable the image health check')
    .option('--stop-signal <sig>', 'signal for stop (default SIGTERM)')
    .option('--stop-timeout <secs>', 'grace period of stop before SIGKILL')
    .option('--rm', 'remove the container when it exits')
    .option('--ulimit <name=soft[:hard]>', 'resource limit, e.g. nofile=1024:2048 (repeatable)', collect, [])
    .option('--sysctl <key=value>', 'namespaced kernel parameter (repeatable)', parseSysctlFlag, {})
    .option('--init', 'run an init (tini) as PID 1 that reaps zombies and forwards signals')
    .option('--cap-add <cap>', 'add a Linux capability, e.g. NET_ADMIN or ALL (repeatable)', collect, [])
    .option('--cap-drop <cap>', 'drop a Linux capability, e.g. CHOWN or ALL (repeatable)', collect, [])
    .option(
      '--secret <src=FILE,...>',
      'secret from a file at /run/secrets/NAME: FILE or src=FILE[,name=,target=,uid=,gid=,mode=] (repeatable)',
      collect,
      [],
    )
    .option(
      '--network <mode>',
      'none (default: loopback only), host, ns:PATH to join a network namespace, or an attachable swarm network (through shoald)',
    )
    .option('--network-alias <alias>', 'another name of the container on the swarm network (repeatable)', collect, [])
    .option('--add-host <host:ip>', 'add an /etc/hosts entry (repeatable)', collect, [])
    .option('--dns <ip>', 'nameserver for /etc/resolv.conf (repeatable)', collect, [])
    .option('--dns-search <domain>', 'search domain for /etc/resolv.conf (repeatable)', collect, [])
    .option('--dns-option <opt>', 'resolv.conf option, e.g. ndots:2 (repeatable)', collect, [])
    .argument('<image>', 'image reference')
    .argument('[cmd...]', 'command and arguments')
    .passThroughOptions();
}

async function streamLogs(
  engine: Engine,
  id: string,
  opts: { follow?: boolean; tail?: number; since?: string; timestamps?: boolean },
): Promise<void> {
  for await (const e of engine.logs(id, { follow: opts.follow, tail: opts.tail, since: opts.since })) {
    const out = e.stream === 'stderr' ? process.stderr : process.stdout;
    const text = Buffer.concat([
      opts.timestamps ? Buffer.from(`${e.time} `) : Buffer.alloc(0),
      e.line,
      Buffer.from(e.partial ? '' : '\n'),
    ]);
    if (!out.write(text)) await new Promise((r) => out.once('drain', r));
  }
}

/**
 * Like `docker run`: pull the image when the local store lacks it (only with the local image
 * service), allowing plain HTTP for the registries named with --insecure-registry.
 */
async function pullIfMissing(engine: Engine, ref: string, insecureRegistries: string[]): Promise<void> {
  if (images) return;
  try {
    await engine.images().resolve(ref);
  } catch (err) {
    if (!hasCode(err, 'ENGINE_IMAGE_NOT_FOUND')) throw err;
    process.stderr.write(`Unable to find image '${ref}' locally; pulling\n`);
    await engine.localImages().pull(ref, { insecureRegistries });
  }
}

export function registerContainer(program: Command): void {
  const c = program
    .command('container')
    .description('Run and manage containers on this host (no cluster needed)')
    .enablePositionalOptions();

  runFlags(
    c.command('run').description('Create and start a container; without -d stream its output and exit with its code'),
  )
    .option('-d, --detach', 'run in the background and print the id')
    .action(async (image: string, cmd: string[], f: RunFlags, command: Command) => {
      const opts = createOptions(image, cmd, f);
      const engine = await openEngine(f, !f.detach);
      let attachment: SwarmAttachment | undefined;
      try {
        await pullIfMissing(engine, image, f.insecureRegistry);
        attachment = await attachToSwarmNetwork(opts, f, hostFlag(command));
        let id: string;
        try {
          // in the foreground, --rm is ours to do after the exit (see below): no collector
          // (shoald) may remove the container first and its exit status with it
          id = await engine.run(opts, { waiter: !f.detach });
        } catch (err) {
          await attachment?.release();
          throw err;
        }
        if (f.detach) {
          process.stdout.write(`${id}\n`);
          return;
        }
        // The container may have exited (or been removed) in between: nothing to forward to.
        const forward = (sig: NodeJS.Signals): void =>
          void engine
            .kill(id, sig)
            .catch(ignoreCodes('ENGINE_CONTAINER_STATE', 'ENGINE_CONTAINER_NOT_FOUND'))
            .catch((err: unknown) => process.stderr.write(`shoal: forwarding ${sig}: ${errorMessage(err)}\n`));
        process.on('SIGINT', forward);
        process.on('SIGTERM', forward);
        try {
          await streamLogs(engine, id, { follow: true });
          // --rm: removed before this resolves (Docker's wait condition "removed")
          const exit = await engine.wait(id, { removed: f.rm === true });
          process.exitCode = exit.exitCode;
          if (exit.oomKilled) process.stderr.write(`shoal: container ${id.slice(0, 12)} was OOM-killed\n`);
        } finally {
          process.off('SIGINT', forward);
          process.off('SIGTERM', forward);
        }
        if (f.rm) await attachment?.release();
      } finally {
        attachment?.close();
        await engine.close();
      }
    });

  runFlags(c.command('create').description('Create a container without starting it')).action(
    async (image: string, cmd: string[], f: RunFlags, command: Command) => {
      const opts = createOptions(image, cmd, f); // bad flags fail before anything is pulled
      const engine = await openEngine(f);
      let attachment: SwarmAttachment | undefined;
      try {
        await pullIfMissing(engine, image, f.insecureRegistry);
        attachment = await attachToSwarmNetwork(opts, f, hostFlag(command));
        let id: string;
        try {
          id = await engine.create(opts);
        } catch (err) {
          await attachment?.release();
          throw err;
        }
        process.stdout.write(`${id}\n`);
      } finally {
        attachment?.close();
        await engine.close();
      }
    },
  );

  withRoots(c.command('start').description('Start created or stopped containers').argument('<container...>')).action(
    async (refs: string[], f: GlobalOpts, command: Command) => {
      const engine = await openEngine(f);
      try {
        for (const r of refs) {
          // a stopped container on a swarm network gave its attachment back: attach again
          const again = await reattach(engine, r, hostFlag(command));
          try {
            await engine.start(r, again?.start);
          } catch (err) {
            await again?.attachment.release();
            throw err;
          } finally {
            again?.attachment.close();
          }
          process.stdout.write(`${r}\n`);
        }
      } finally {
        await engine.close();
      }
    },
  );

  registerPs(c);

  withRoots(c.command('logs').description("Show a container's output").argument('<container>'))
    .option('-f, --follow', 'follow until the container exits')
    .option('-n, --tail <n>', 'only the last n lines')
    .option('--since <time>', 'only lines since a time (RFC3339 or unix seconds) or a duration ago (10m)')
    .option('-t, --timestamps', 'show timestamps')
    .action(
      async (
        ref: string,
        f: GlobalOpts & { follow?: boolean; tail?: string; since?: string; timestamps?: boolean },
      ) => {
        const engine = await openEngine(f, false, false);
        let since = f.since;
        if (since && /^\d+(\.\d+)?(ms|s|m|h)+/.test(since) && !/^\d+(\.\d+)?$/.test(since)) {
          since = new Date(Date.now() - parseDuration(since, '--since')).toISOString();
        }
        const tail = f.tail === undefined || f.tail === 'all' ? undefined : Number(f.tail);
        await streamLogs(engine, ref, { follow: f.follow, tail, since, timestamps: f.timestamps });
      },
    );

  withRoots(
    c
      .command('stop')
      .description('Stop containers (stop signal, grace period, then SIGKILL)')
      .argument('<container...>'),
  )
    .option('-t, --time <secs>', 'grace period in seconds')
    .option('-s, --signal <sig>', 'signal to send first')
    .action(async (refs: string[], f: GlobalOpts & { time?: string; signal?: string }) => {
      const engine = await openEngine(f);
      await Promise.all(
        refs.map(async (r) => {
          await engine.stop(r, {
            timeoutMs: f.time === undefined ? undefined : Number(f.time) * 1000,
            signal: f.signal,
          });
          process.stdout.write(`${r}\n`);
        }),
      );
    });

  withRoots(c.command('kill').description('Send a signal to containers').argument('<container...>'))
    .option('-s, --signal <sig>', 'signal (default SIGKILL)', 'SIGKILL')
    .action(async (refs: string[], f: GlobalOpts & { signal: string }) => {
      const engine = await openEngine(f);
      for (const r of refs) {
        await engine.kill(r, f.signal);
        process.stdout.write(`${r}\n`);
      }
    });

  withRoots(c.command('rm').description('Remove containers').argument('<container...>'))
    .option('-f, --force', 'kill running containers first')
    .option('-v, --volumes', 'also remove its anonymous volumes')
    .action(async (refs: string[], f: GlobalOpts & { force?: boolean; volumes?: boolean }, command: Command) => {
      const engine = await openEngine(f);
      try {
        for (const r of refs) {
          const attachmentId = await attachmentOf(engine, r);
          await engine.remove(r, { force: f.force, volumes: f.volumes });
          if (attachmentId !== undefined) await detachFromSwarmNetwork(attachmentId, hostFlag(command));
          process.stdout.write(`${r}\n`);
        }
      } finally {
        await engine.close();
      }
    });

  withRoots(
    c.command('wait').description('Wait for containers to exit and print their exit codes').argument('<container...>'),
  ).action(async (refs: string[], f: GlobalOpts) => {
    const engine = await openEngine(f);
    for (const r of refs) process.stdout.write(`${(await engine.wait(r)).exitCode}\n`);
  });

  registerInspect(c);

  withRoots(c.command('stats').description('CPU and memory of running containers').argument('<container...>')).action(
    async (refs: string[], f: GlobalOpts) => {
      const engine = await openEngine(f, false, false);
      for (const r of refs) process.stdout.write(`${JSON.stringify({ container: r, ...(await engine.stats(r)) })}\n`);
    },
  );

  withRoots(
    c.command('exec').description('Run a command in a running container').argument('<container>').argument('<cmd...>'),
  )
    .option('-e, --env <KEY=value>', 'environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <uid[:gid]>', 'user')
    .passThroughOptions()
    .action(async (ref: string, cmd: string[], f: GlobalOpts & { env: string[]; workdir?: string; user?: string }) => {
      const engine = await openEngine(f);
      const r = await engine.exec(ref, cmd, { inheritStdio: true, env: f.env, cwd: f.workdir, user: f.user });
      process.exitCode = r.exitCode;
    });
}
