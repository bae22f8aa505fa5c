/**
 * A machine-wide lock for benchmark parts that use fixed names (the Swarm side's `sbw-*`
 * namespaces and links, /var/lib/shoal-bench-swarm, /run/shoal-bench-swarm): two runs at once
 * would remove or reuse each other's daemons and namespaces. It is an flock(2) on a lock file
 * (the engine's state lock): the kernel drops it when the holder exits or is killed, so there is
 * no stale lock to recover, and the file itself is never removed (a new file would be a new lock).
 * The holder's pid is written into it for the messages of those who wait.
 *
 * A second run waits, saying so on its progress output, for up to `timeoutMs` (default
 * BENCH_SWARM_LOCK_WAIT_S seconds, 1800), then fails with BenchLockedError naming the holder.
 */
import { readFileSync } from 'node:fs';
import { errnoCode } from '@shoal/common';
import { StateLockedError } from '@shoal/engine';
import { acquireStateLock, type LockHandle } from '@shoal/engine/internal';
import { BenchLockedError } from '../errors.js';

export type { LockHandle };

/** The Swarm side's lock (outside SWARM_RUN, which `down()` removes). */
export const SWARM_LOCK = '/run/shoal-bench-swarm.lock';

function waitDefaultMs(): number {
  const s = Number(process.env['BENCH_SWARM_LOCK_WAIT_S'] ?? 1800);
  return Number.isFinite(s) && s >= 0 ? s * 1000 : 1_800_000;
}

/** Who holds the lock at `path`, as far as its file says. */
export function lockHolder(path: string): string {
  try {
    const pid = readFileSync(path, 'utf8').trim();
    return /^\d+$/.test(pid) ? `pid ${pid}` : 'another process';
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'another process';
    throw err;
  }
}

/** Takes the lock if it is free right now; undefined when another run holds it. */
export async function tryMachineLock(path: string): Promise<LockHandle | undefined> {
  try {
    return await acquireStateLock(path, 'exclusive', { timeoutMs: 0 });
  } catch (err) {
    if (err instanceof StateLockedError) return undefined;
    throw err;
  }
}

/**
 * Takes the lock at `path` for `what` (e.g. "the Swarm side"): at once when it is free, else
 * after saying on `progress` that it waits and for whom, until `timeoutMs`.
 */
export async function acquireMachineLock(
  path: string,
  what: string,
  progress: (msg: string) => void,
  timeoutMs = waitDefaultMs(),
): Promise<LockHandle> {
  const now = await tryMachineLock(path);
  if (now) return now;
  const holder = lockHolder(path);
  if (timeoutMs <= 0) throw new BenchLockedError(what, path, holder);
  progress(
    `${what}: waiting for another benchmark run (${holder}, lock ${path}) to end, up to ${Math.round(timeoutMs / 1000)} s`,
  );
  try {
    const lock = await acquireStateLock(path, 'exclusive', { timeoutMs });
    progress(`${what}: the other run ended, going on`);
    return lock;
  } catch (err) {
    if (err instanceof StateLockedError) throw new BenchLockedError(what, path, lockHolder(path));
    throw err;
  }
}
