/**
 * Cross-process locking of engine state, shared by the image and runtime halves of the engine
 * and by every process that opens the same data root (`shoald`, a daemonless `shoal image ...`).
 *
 * Mechanism: flock(2) on a lock file (one per store, e.g. `<root>/images.lock`). The kernel drops
 * the lock when the holder's file is closed or the process dies, so there is no stale lock to
 * detect or break. Locks are per open file description: two holders in one process exclude each
 * other just as two processes do. `exclusive` excludes everyone, `shared` only `exclusive`. A
 * waiter polls with LOCK_NB (the event loop is never blocked) until `timeoutMs` (default 60 s),
 * then throws StateLockedError naming the pid written by the last exclusive holder.
 *
 * Rules of use: hold a lock briefly, around a read-modify-write of state files; never across a
 * network download. Long operations that only need "don't garbage-collect under me" take
 * `shared` on a separate lock file.
 */
import { mkdirSync, openSync, closeSync, ftruncateSync, writeSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { sleep, throwIfAborted } from '@shoal/common';
import { StateLockedError } from './errors.js';
import { flockNb, LOCK_EX, LOCK_SH, LOCK_UN } from './libc.js';

export type LockMode = 'exclusive' | 'shared';

export interface LockOptions {
  /** Give up after this long (default 60 000 ms). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A held lock; `release()` is idempotent. */
export interface LockHandle {
  readonly path: string;
  readonly mode: LockMode;
  release(): void;
}

/** Takes the lock at `path` (created if missing) in `mode`. */
export async function acquireStateLock(path: string, mode: LockMode, opts: LockOptions = {}): Promise<LockHandle> {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'a+', 0o644);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let wait = 2;
  try {
    for (;;) {
      throwIfAborted(opts.signal);
      if (flockNb(fd, mode === 'exclusive' ? LOCK_EX : LOCK_SH)) break;
      if (Date.now() >= deadline) throw new StateLockedError(path, holderOf(path));
      await sleep(wait, opts.signal);
      wait = Math.min(wait * 2, 50);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (mode === 'exclusive') {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`);
  }
  let held = true;
  return {
    path,
    mode,
    release() {
      if (!held) return;
      held = false;
      try {
        flockNb(fd, LOCK_UN);
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** Runs `fn` while holding the lock at `path`. */
export async function withStateLock<T>(
  path: string,
  mode: LockMode,
  fn: () => Promise<T> | T,
  opts: LockOptions = {},
): Promise<T> {
  const lock = await acquireStateLock(path, mode, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

function holderOf(path: string): string {
  try {
    const pid = readFileSync(path, 'utf8').trim();
    return pid ? `pid ${pid}` : 'another process';
  } catch {
    return 'another process';
  }
}
