/**
 * Per-item locks across processes, so that two processes pulling the same blob (or unpacking the
 * same layer) on one data root do the work once: the second waits, then finds it done. Only an
 * optimisation: correctness comes from verify-then-rename, so when the lock cannot be had in time
 * the work is simply done again. Lock files live in `<root>/locks/` and are unlinked after use
 * (the unlink race can at worst let two workers in, which is the same harmless duplicate).
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ignoreErrno } from '@shoal/common';
import { StateLockedError } from '../errors.js';
import { acquireStateLock, type LockHandle } from '../state-lock.js';

/** Waits at most this long for another process working on the same item. */
export const CONTENT_LOCK_TIMEOUT_MS = 10 * 60_000;

export function contentLockPath(root: string, kind: 'blob' | 'layer', id: string): string {
  return join(root, 'locks', `${kind}-${id}.lock`);
}

export async function withContentLock<T>(
  path: string,
  fn: () => Promise<T>,
  timeoutMs = CONTENT_LOCK_TIMEOUT_MS,
): Promise<T> {
  let lock: LockHandle | undefined;
  try {
    lock = await acquireStateLock(path, 'exclusive', { timeoutMs });
  } catch (err) {
    if (!(err instanceof StateLockedError)) throw err;
  }
  try {
    return await fn();
  } finally {
    if (lock) {
      await rm(path, { force: true });
      lock.release();
    }
  }
}

/**
 * Unlinks per-item lock files that nobody holds (left by a process killed between taking and
 * unlinking one). A file someone holds is kept.
 */
export async function sweepContentLocks(root: string): Promise<void> {
  const dir = join(root, 'locks');
  for (const name of (await readdir(dir).catch(ignoreErrno('ENOENT'))) ?? []) {
    if (!/^(blob|layer)-[0-9a-f]+\.lock$/.test(name)) continue;
    let lock: LockHandle;
    try {
      lock = await acquireStateLock(join(dir, name), 'exclusive', { timeoutMs: 0 });
    } catch (err) {
      if (err instanceof StateLockedError) continue; // in use
      throw err;
    }
    try {
      await rm(join(dir, name), { force: true });
    } finally {
      lock.release();
    }
  }
}
