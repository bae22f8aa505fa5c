/**
 * Merging a create request with its image's config (Docker's rules, daemon/commit.go): the
 * entrypoint/cmd pair, env per key, working dir, user, stop signal and healthcheck field by field.
 * Also validates and normalises the request so that bad input fails before anything is made.
 */
import type { ImageConfig } from '../image/types.js';
import { InvalidSpecError } from '../errors.js';
import { normaliseStopSignal } from '../spec/signal.js';
import type { ContainerCreateOptions, HealthcheckConfig } from './types.js';

export interface MergedProcess {
  args: string[];
  env: string[];
  cwd: string;
  user: string;
}

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function mergeProcess(opts: ContainerCreateOptions, image: ImageConfig): MergedProcess {
  const entrypoint = opts.entrypoint ?? image.Entrypoint ?? [];
  const cmd = opts.cmd ?? (opts.entrypoint ? [] : (image.Cmd ?? []));
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new InvalidSpecError('cmd', 'no command given and the image has none');
  const env = new Map<string, string>();
  for (const e of image.Env ?? []) env.set(e.split('=')[0] ?? e, e);
  for (const e of opts.env ?? []) {
    const key = e.split('=')[0] ?? '';
    if (!key) throw new InvalidSpecError('env', `${JSON.stringify(e)} has no name`);
    env.set(key, e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`);
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  const cwd = opts.workdir ?? (image.WorkingDir || '/');
  if (!cwd.startsWith('/')) throw new InvalidSpecError('workdir', `${cwd} is not absolute`);
  return { args, env: [...env.values()], cwd, user: opts.user ?? (image.User || '') };
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
}
