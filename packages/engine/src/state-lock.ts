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
 * Within one process, exclusive holders of one path also queue in order before they touch the
 * flock, so a waiter in this process takes over at once when the holder releases.
 *
 * Rules of use: hold a lock briefly, around a read-modify-write of state files; never across a
 * network download. Long operations that only need "don't garbage-collect under me" take
 * `shared` on a separate lock file.
 */
import { mkdirSync, openSync, closeSync, ftruncateSync, writeSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoCode, sleep, throwIfAborted } from '@shoal/common';
import { StateLockedError } from './errors.js';
import { flockNb, LOCK_EX, LOCK_SH, LOCK_UN } from './libc.js';

export type LockMode = 'exclusive' | 'shared';

export interface LockOptions {
  /** Give up after this long (default 60 000 ms); 0 tries once. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Create the lock file's directory when it is missing (default true). False for a lock inside a
   * directory whose removal means "gone" (a container's): the open then fails with ENOENT.
   */
  createDir?: boolean;
}

/** A held lock; `release()` is idempotent. */
export interface LockHandle {
  readonly path: string;
  readonly mode: LockMode;
  release(): void;
}

/**
 * Exclusive holders within this process queue per path before they touch the flock, so that a
 * waiter in this process takes over the moment the holder releases instead of polling for it:
 * many concurrent operations of one process on one lock do not pay the poll interval each.
 */
const queues = new Map<string, Promise<void>>();

/** Waits for this process's earlier exclusive holders of `path`; returns the function that leaves the queue. */
async function queueTurn(path: string, deadline: number, signal: AbortSignal | undefined): Promise<() => void> {
  const prev = queues.get(path);
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  const tail = prev ? prev.then(() => mine) : mine;
  queues.set(path, tail);
  let left = false;
  const leave = (): void => {
    if (left) return;
    left = true;
    done();
    if (queues.get(path) === tail) queues.delete(path);
  };
  if (!prev) return leave;
  try {
    await untilDeadline(prev, deadline, signal, path);
  } catch (err) {
    // give our place up only once the holders before us are done: the queue stays in order
    void prev.then(leave);
    throw err;
  }
  return leave;
}

function untilDeadline(
  p: Promise<void>,
  deadline: number,
  signal: AbortSignal | undefined,
  path: string,
): Promise<void> {
  throwIfAborted(signal);
  return new Promise<void>((resolve, reject) => {
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = (): void => {
      try {
        throwIfAborted(signal);
      } catch (err) {
        finish(err as Error); // throwIfAborted throws an AbortedError
      }
    };
    const timer = setTimeout(
      () => finish(new StateLockedError(path, holderOf(path))),
      Math.max(0, deadline - Date.now()),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    void p.then(() => finish());
  });
}

/** Takes the lock at `path` (created if missing) in `mode`. */
export async function acquireStateLock(path: string, mode: LockMode, opts: LockOptions = {}): Promise<LockHandle> {
  if (opts.createDir !== false) mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const leave = mode === 'exclusive' ? await queueTurn(path, deadline, opts.signal) : undefined;
  let fd: number;
  try {
    fd = openSync(path, 'a+', 0o644);
  } catch (err) {
    leave?.();
    throw err;
  }
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
    leave?.();
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
        leave?.();
      }
    },
  };
}

/** Takes the lock if it is free right now; undefined when another holder has it. */
export async function tryStateLock(
  path: string,
  mode: LockMode,
  opts: Omit<LockOptions, 'timeoutMs'> = {},
): Promise<LockHandle | undefined> {
  try {
    return await acquireStateLock(path, mode, { ...opts, timeoutMs: 0 });
  } catch (err) {
    if (err instanceof StateLockedError) return undefined;
    throw err;
  }
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
  let pid = '';
  try {
    pid = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  return pid ? `pid ${pid}` : 'another process';
}
