/**
 * A task's ContainerSpec as engine create options: the mapping of every field the engine
 * supports, with the `com.docker.swarm.*` labels, hostname/env/mount templates, secrets and
 * configs as files for the engine's per-container tmpfs, and mounts (bind, tmpfs, and volume as
 * the engine's own named/anonymous volumes, so Docker's copy-up and in-use tracking apply). Pure;
 * throws TaskSpecError (or SecretMissingError) with a message naming the field.
 */
import type { Config, ContainerSpec, Mount, Secret, Task } from '@shoal/api';
import type {
  BindMount,
  ContainerCreateOptions,
  ExtraHost,
  HealthcheckConfig,
  ImageHealthcheck,
  SecretFile,
  TmpfsMount,
  VolumeMount,
} from '@shoal/engine';
import { SecretMissingError, TaskSpecError } from './errors.js';
import {
  LABEL_NODE_ID,
  LABEL_SERVICE_ID,
  LABEL_SERVICE_NAME,
  LABEL_TASK,
  LABEL_TASK_ID,
  LABEL_TASK_NAME,
} from './labels.js';
import { containerName, expandTemplate, templateValues, type NodeInfo } from './template.js';

export interface TaskContainerInput {
  task: Task;
  node: NodeInfo;
  secret(id: string): Secret | undefined;
  config(id: string): Config | undefined;
  /** The image's own healthcheck, to complete a spec that sets only durations. */
  imageHealthcheck?: ImageHealthcheck | undefined;
}

const NS_PER_MS = 1e6;
export const DEFAULT_STOP_GRACE_MS = 10_000;

/** The engine create options for the task's container. */
export function taskContainerOptions(input: TaskContainerInput): ContainerCreateOptions {
  const { task, node } = input;
  const spec: ContainerSpec = task.Spec?.ContainerSpec ?? {};
  const image = spec.Image ?? '';
  if (image === '') throw new TaskSpecError('ContainerSpec.Image is empty');
  const values = templateValues(task, node);
  const name = containerName(task);
  const opts: ContainerCreateOptions = {
    image,
    name,
    labels: {
      ...(spec.Labels ?? {}),
      [LABEL_SERVICE_ID]: task.ServiceID ?? '',
      [LABEL_SERVICE_NAME]: task.ServiceName ?? '',
      [LABEL_TASK]: '',
      [LABEL_TASK_ID]: task.ID ?? '',
      [LABEL_TASK_NAME]: name,
      [LABEL_NODE_ID]: node.id,
    },
    stopTimeoutMs: graceMs(spec),
  };
  if (spec.Command?.length) opts.entrypoint = [...spec.Command];
  if (spec.Args?.length) opts.cmd = [...spec.Args];
  if (spec.Env?.length) opts.env = spec.Env.map((e, i) => expandTemplate(e, values, `Env[${i}]`));
  if (spec.Dir) opts.workdir = spec.Dir;
  if (spec.User) opts.user = spec.User;
  if (spec.Hostname) opts.hostname = expandTemplate(spec.Hostname, values, 'Hostname');
  if (spec.StopSignal) opts.stopSignal = spec.StopSignal;
  if (spec.Init !== undefined) opts.init = spec.Init;
  if (spec.ReadOnly) opts.readOnly = true;
  if (spec.Sysctls && Object.keys(spec.Sysctls).length > 0) opts.sysctls = { ...spec.Sysctls };
  if (spec.CapabilityAdd?.length) opts.capAdd = [...spec.CapabilityAdd];
  if (spec.CapabilityDrop?.length) opts.capDrop = [...spec.CapabilityDrop];
  if (spec.Ulimits?.length) {
    opts.ulimits = spec.Ulimits.map((u) => ({ name: u.Name ?? '', soft: u.Soft ?? 0, hard: u.Hard ?? 0 }));
  }
  if (spec.Hosts?.length) opts.extraHosts = spec.Hosts.flatMap((h, i) => hostsLine(h, i));
  const dns = spec.DNSConfig;
  if (dns?.Nameservers?.length) opts.dns = [...dns.Nameservers];
  if (dns?.Search?.length) opts.dnsSearch = [...dns.Search];
  if (dns?.Options?.length) opts.dnsOptions = [...dns.Options];

  const limits = task.Spec?.Resources?.Limits;
  if (limits?.MemoryBytes) opts.memoryBytes = limits.MemoryBytes;
  if (limits?.NanoCPUs) opts.cpus = limits.NanoCPUs / 1e9;
  if (limits?.Pids) opts.pidsLimit = limits.Pids;

  const hc = healthcheck(spec, input.imageHealthcheck);
  if (hc) opts.healthcheck = hc;

  const binds: BindMount[] = [];
  const tmpfs: TmpfsMount[] = [];
  const volumes: VolumeMount[] = [];
  for (const [i, m] of (spec.Mounts ?? []).entries()) addMount(m, i, values, { binds, tmpfs, volumes });
  if (binds.length) opts.binds = binds;
  if (tmpfs.length) opts.tmpfs = tmpfs;
  if (volumes.length) opts.volumes = volumes;

  const files = secretFiles(input, spec);
  if (files.length) opts.secrets = files;
  return opts;
}

function graceMs(spec: ContainerSpec): number {
  const ns = spec.StopGracePeriod;
  if (ns === undefined) return DEFAULT_STOP_GRACE_MS;
  if (!Number.isFinite(ns) || ns < 0) throw new TaskSpecError(`StopGracePeriod ${ns} is not a duration`);
  return Math.round(ns / NS_PER_MS);
}

/** "IP hostname [aliases...]" -> one engine entry per name. */
function hostsLine(line: string, i: number): ExtraHost[] {
  const [ip, ...names] = line.trim().split(/\s+/);
  if (!ip || names.length === 0) throw new TaskSpecError(`Hosts[${i}] ${JSON.stringify(line)}: want "IP hostname"`);
  return names.map((host) => ({ host, ip }));
}

function healthcheck(spec: ContainerSpec, image: ImageHealthcheck | undefined): HealthcheckConfig | undefined {
  const h = spec.Healthcheck;
  if (!h) return undefined;
  const test = h.Test?.length ? [...h.Test] : image?.Test;
  const ms = (ns: number | undefined): number | undefined => (ns ? ns / NS_PER_MS : undefined);
  const durations = {
    ...(ms(h.Interval) !== undefined ? { intervalMs: ms(h.Interval) } : {}),
    ...(ms(h.Timeout) !== undefined ? { timeoutMs: ms(h.Timeout) } : {}),
    ...(ms(h.StartPeriod) !== undefined ? { startPeriodMs: ms(h.StartPeriod) } : {}),
    ...(ms(h.StartInterval) !== undefined ? { startIntervalMs: ms(h.StartInterval) } : {}),
    ...(h.Retries ? { retries: h.Retries } : {}),
  };
  if (!test?.length) return undefined; // nothing to run: the image has none either
  return { test, ...durations };
}

interface Mounts {
  binds: BindMount[];
  tmpfs: TmpfsMount[];
  volumes: VolumeMount[];
}

function addMount(m: Mount, i: number, values: Record<string, string>, out: Mounts): void {
  const what = `Mounts[${i}]`;
  const target = m.Target ?? '';
  if (target === '') throw new TaskSpecError(`${what}: Target is empty`);
  const source = expandTemplate(m.Source ?? '', values, `${what}.Source`);
  switch (m.Type ?? 'volume') {
    case 'bind':
      if (source === '') throw new TaskSpecError(`${what}: a bind mount needs a Source`);
      out.binds.push({ source, target, ...(m.ReadOnly ? { readOnly: true } : {}) });
      return;
    case 'tmpfs': {
      if (source !== '') throw new TaskSpecError(`${what}: a tmpfs mount takes no Source`);
      const o: string[] = [];
      const size = m.TmpfsOptions?.SizeBytes ?? 0;
      if (size < 0) throw new TaskSpecError(`${what}: TmpfsOptions.SizeBytes ${size} is negative`);
      if (size > 0) o.push(`size=${size}`);
      if (m.TmpfsOptions?.Mode) o.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
      if (m.ReadOnly) o.push('ro');
      out.tmpfs.push({ target, ...(o.length ? { options: o } : {}) });
      return;
    }
    case 'volume':
      out.volumes.push(volumeMount(m, what, source, target));
      return;
    default:
      throw new TaskSpecError(`${what}: mount type ${JSON.stringify(m.Type)} is not supported (bind, volume, tmpfs)`);
  }
}

/** A `volume` mount as the engine's VolumeMount (local driver only; no Source = anonymous). */
function volumeMount(m: Mount, what: string, source: string, target: string): VolumeMount {
  const vo = m.VolumeOptions;
  const driver = vo?.DriverConfig?.Name ?? '';
  if (driver !== '' && driver !== 'local') {
    throw new TaskSpecError(`${what}: volume driver ${JSON.stringify(driver)} is not supported (only local)`);
  }
  if (vo?.Subpath) throw new TaskSpecError(`${what}: VolumeOptions.Subpath is not supported`);
  const labels = vo?.Labels ?? {};
  const driverOpts = vo?.DriverConfig?.Options ?? {};
  return {
    ...(source !== '' ? { source } : {}),
    target,
    ...(m.ReadOnly ? { readOnly: true } : {}),
    ...(vo?.NoCopy ? { noCopy: true } : {}),
    ...(Object.keys(labels).length ? { labels: { ...labels } } : {}),
    ...(Object.keys(driverOpts).length ? { driverOpts: { ...driverOpts } } : {}),
  };
}

/** uid/gid strings of a FileTarget ("" = 0). */
function id(text: string | undefined, what: string): number {
  if (text === undefined || text === '') return 0;
  if (!/^\d+$/.test(text)) throw new TaskSpecError(`${what} ${JSON.stringify(text)} is not a numeric id`);
  return Number(text);
}

/** The task's secrets and configs as files for the engine (copies: the engine zeroes them). */
function secretFiles(input: TaskContainerInput, spec: ContainerSpec): SecretFile[] {
  const out: SecretFile[] = [];
  for (const [i, ref] of (spec.Secrets ?? []).entries()) {
    const sid = ref.SecretID ?? '';
    const s = input.secret(sid);
    if (!s) throw new SecretMissingError('secret', sid, ref.SecretName ?? '');
    const name = ref.SecretName || s.Spec?.Name || sid;
    const f = ref.File;
    out.push({
      name,
      kind: 'secret',
      target: f?.Name || name,
      data: Buffer.from(s.Spec?.Data ?? new Uint8Array()),
      uid: id(f?.UID, `Secrets[${i}].File.UID`),
      gid: id(f?.GID, `Secrets[${i}].File.GID`),
      mode: f?.Mode || 0o444,
    });
  }
  for (const [i, ref] of (spec.Configs ?? []).entries()) {
    if (ref.Runtime) continue; // a credential spec for the runtime: nothing to mount on Linux
    const cid = ref.ConfigID ?? '';
    const c = input.config(cid);
    if (!c) throw new SecretMissingError('config', cid, ref.ConfigName ?? '');
    const name = ref.ConfigName || c.Spec?.Name || cid;
    const f = ref.File;
    out.push({
      name,
      kind: 'config',
      target: f?.Name || `/${name}`,
      data: Buffer.from(c.Spec?.Data ?? new Uint8Array()),
      uid: id(f?.UID, `Configs[${i}].File.UID`),
      gid: id(f?.GID, `Configs[${i}].File.GID`),
      mode: f?.Mode || 0o444,
    });
  }
  return out;
}
