/**
 * A create request against its image: the process through the one merge of spec/merge.ts
 * (Docker's rules: entrypoint/cmd, env per key, working dir, user), the stop signal and the
 * healthcheck field by field, and the validation of every option, so that bad input fails before
 * anything is made.
 */
import { checkVolumeName, checkVolumeOptions } from '../volume/volume-store.js';
import { validateRestartPolicy } from './restart-policy.js';
import type { ImageConfig } from '../image/types.js';
import { InvalidSpecError } from '../errors.js';
import { resolveCapabilities } from '../spec/capabilities.js';
import { checkDns, checkExtraHost, type EtcFilesInput } from '../spec/etc-files.js';
import { mergeProcess as mergeWithImage, type MergedProcess } from '../spec/merge.js';
import { buildRlimits } from '../spec/rlimits.js';
import { normaliseStopSignal } from '../spec/signal.js';
import { validateSysctls } from '../spec/sysctls.js';
import type { ContainerCreateOptions, HealthcheckConfig, RecordedNetwork } from './types.js';

export type { MergedProcess };

/** The container's process: the request merged with the image config (the same merge buildSpec makes). */
export function mergeProcess(opts: ContainerCreateOptions, image: ImageConfig, hostname: string): MergedProcess {
  return mergeWithImage(
    { entrypoint: opts.entrypoint, args: opts.cmd, env: opts.env, workdir: opts.workdir, user: opts.user },
    image,
    hostname,
  );
}

/** What the record keeps of the network settings. */
export function recordNetwork(opts: ContainerCreateOptions, hostname: string): RecordedNetwork {
  return {
    mode: opts.network ?? 'none',
    hostname,
    extraHosts: (opts.extraHosts ?? []).map((e) => ({ host: e.host, ip: e.ip })),
    dns: [...(opts.dns ?? [])],
    dnsSearch: [...(opts.dnsSearch ?? [])],
    dnsOptions: [...(opts.dnsOptions ?? [])],
  };
}

/**
 * What /etc/hostname, hosts and resolv.conf are written from, for a recorded container: the
 * networking code adds `addresses` (or replaces `dns`) and calls rewriteHosts/rewriteResolvConf
 * on the container's state dir.
 */
export function etcFilesInput(net: RecordedNetwork): EtcFilesInput {
  return {
    hostname: net.hostname,
    hostNetwork: net.mode === 'host',
    extraHosts: net.extraHosts,
    dns: net.dns,
    dnsSearch: net.dnsSearch,
    dnsOptions: net.dnsOptions,
  };
}

/** The signal name (SIGTERM, or the number of a real-time signal); throws on an unknown one. */
export function normaliseSignal(sig: string | number, field = 'signal'): string {
  return normaliseStopSignal(sig, field);
}

const NS = 1_000_000;

/** Healthcheck from the request, else from the image (durations in ns there), field by field. */
export function mergeHealthcheck(
  opts: HealthcheckConfig | undefined,
  image: ImageConfig['Healthcheck'],
): HealthcheckConfig | undefined {
  const test = opts?.test ?? image?.Test;
  if (!test || test.length === 0 || test[0] === 'NONE') return undefined;
  const kind = test[0];
  if (kind !== 'CMD' && kind !== 'CMD-SHELL') {
    throw new InvalidSpecError('healthcheck', `test must start with CMD, CMD-SHELL or NONE, got ${kind}`);
  }
  if (test.length < 2) throw new InvalidSpecError('healthcheck', `${kind} needs a command`);
  const pick = (mine: number | undefined, img: number | undefined, def: number): number => {
    const v = mine ?? (img ? img / NS : undefined) ?? def;
    if (!Number.isFinite(v) || v < 0) throw new InvalidSpecError('healthcheck', `bad duration ${v}`);
    return v || def;
  };
  return {
    test,
    intervalMs: pick(opts?.intervalMs, image?.Interval, 30_000),
    timeoutMs: pick(opts?.timeoutMs, image?.Timeout, 30_000),
    retries: opts?.retries ?? (image?.Retries || 3),
    startPeriodMs: opts?.startPeriodMs ?? (image?.StartPeriod ? image.StartPeriod / NS : 0),
    startIntervalMs: pick(opts?.startIntervalMs, image?.StartInterval, 5_000),
  };
}

/** argv of one health probe. */
export function healthArgv(hc: HealthcheckConfig): string[] {
  if (hc.test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', hc.test.slice(1).join(' ')];
  return hc.test.slice(1);
}

/** Checks limits and mounts of a request. */
export function validateCreate(opts: ContainerCreateOptions): void {
  if (!opts.image) throw new InvalidSpecError('image', 'missing');
  if (opts.name !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(opts.name)) {
    throw new InvalidSpecError('name', `${JSON.stringify(opts.name)} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  }
  if (opts.memoryBytes !== undefined && (!Number.isInteger(opts.memoryBytes) || opts.memoryBytes < 6 * 1024 * 1024)) {
    throw new InvalidSpecError('memory', 'must be at least 6 MiB');
  }
  if (opts.cpus !== undefined && !(opts.cpus > 0)) throw new InvalidSpecError('cpus', 'must be > 0');
  for (const b of opts.binds ?? []) {
    if (!b.source.startsWith('/') || !b.target.startsWith('/')) {
      throw new InvalidSpecError('volume', `${b.source}:${b.target}: both paths must be absolute`);
    }
  }
  for (const t of opts.tmpfs ?? []) {
    if (!t.target.startsWith('/')) throw new InvalidSpecError('tmpfs', `${t.target} is not absolute`);
  }
  for (const v of opts.volumes ?? []) {
    const what = `${v.source ?? ''}:${v.target}`;
    if (typeof v.target !== 'string' || !v.target.startsWith('/')) {
      throw new InvalidSpecError('volume', `${what}: the target must be an absolute path`);
    }
    if (v.source !== undefined) checkVolumeName(v.source);
    checkVolumeOptions({ labels: v.labels, driverOpts: v.driverOpts }, `volume ${v.source ?? v.target}`);
  }
  if (opts.restartPolicy !== undefined) {
    validateRestartPolicy(opts.restartPolicy, opts.autoRemove ?? false);
    if (opts.restartPolicy.name !== 'no' && opts.secrets?.length) {
      throw new InvalidSpecError(
        'restart',
        'a restart policy cannot be combined with secrets: their bytes are not kept',
      );
    }
  }
  const net = opts.network;
  if (net !== undefined && net !== 'none' && net !== 'host' && net !== 'private') {
    if (typeof net !== 'object' || typeof net.path !== 'string' || !net.path.startsWith('/')) {
      throw new InvalidSpecError('network', `${JSON.stringify(net)} is not none, host or {path: /absolute/netns}`);
    }
  }
  if (opts.ulimits !== undefined) buildRlimits(opts.ulimits);
  if (opts.sysctls !== undefined) validateSysctls(opts.sysctls, net !== 'host');
  if (opts.capAdd !== undefined || opts.capDrop !== undefined) resolveCapabilities(opts.capAdd, opts.capDrop);
  for (const e of opts.extraHosts ?? []) checkExtraHost(e);
  checkDns(opts.dns, opts.dnsSearch, opts.dnsOptions);
}
