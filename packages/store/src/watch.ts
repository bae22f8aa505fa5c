/**
 * The change history and the watches on it. Every applied change is appended with its revision;
 * a watch from revision R first gets every kept change after R, then live ones, in order, each
 * once. Because revisions come from the replicated log, a client that moves to another manager
 * and watches from the last revision it saw misses nothing and sees nothing twice.
 */
import { AbortedError } from '@shoal/common';
import { StoreUnavailableError, WatchCompactedError } from './errors.js';
import type { ObjectKind } from './kinds.js';
import type { Change } from './state.js';

export interface WatchOptions {
  /** Deliver changes with a revision greater than this; default: only changes from now on. */
  readonly fromRevision?: number;
  /** Only these kinds (default all). */
  readonly kinds?: readonly ObjectKind[];
  /** Only changes this returns true for. */
  readonly filter?: (c: Change) => boolean;
  readonly signal?: AbortSignal;
}

interface Subscriber {
  readonly accepts: (c: Change) => boolean;
  readonly queue: Change[];
  wake: (() => void) | undefined;
  error: Error | undefined;
}

export interface WatchHubOptions {
  /** Changes kept for watches that start in the past (default 10,000). */
  readonly historyLimit?: number;
  /** A subscriber that falls this far behind is closed with an error (default 100,000). */
  readonly maxQueue?: number;
}

export class WatchHub {
  private history: Change[] = [];
  /** Every change with a revision above this is in `history`. */
  private floor = 0;
  private current = 0;
  private readonly subs = new Set<Subscriber>();
  private readonly historyLimit: number;
  private readonly maxQueue: number;

  constructor(opts: WatchHubOptions = {}) {
    this.historyLimit = opts.historyLimit ?? 10_000;
    this.maxQueue = opts.maxQueue ?? 100_000;
  }

  /** Forgets the history (after a snapshot restore): watches may start at `revision` or later. */
  reset(revision: number): void {
    this.history = [];
    this.floor = revision;
    this.current = revision;
    for (const s of this.subs) this.fail(s, new WatchCompactedError(revision - 1, revision));
  }

  publish(revision: number, changes: readonly Change[]): void {
    this.current = revision;
    for (const c of changes) this.history.push(c);
    if (this.history.length > this.historyLimit) {
      // Trim whole revisions so that `floor` stays exact.
      let cut = this.history.length - this.historyLimit;
      const last = this.history[cut - 1];
      while (cut < this.history.length && last !== undefined && this.history[cut]?.revision === last.revision) cut++;
      this.floor = this.history[cut - 1]?.revision ?? this.floor;
      this.history = this.history.slice(cut);
    }
    for (const s of this.subs) {
      for (const c of changes) if (s.accepts(c)) s.queue.push(c);
      if (s.queue.length > this.maxQueue) {
        this.fail(s, new StoreUnavailableError(`watch fell more than ${this.maxQueue} changes behind and was closed`));
      }
      s.wake?.();
    }
  }

  /** Closes every watch (the store is closing). */
  closeAll(err: Error): void {
    for (const s of this.subs) this.fail(s, err);
  }

  get revision(): number {
    return this.current;
  }

  watch(opts: WatchOptions = {}): AsyncIterableIterator<Change> {
    const kinds = opts.kinds === undefined ? undefined : new Set(opts.kinds);
    const accepts = (c: Change): boolean =>
      (kinds === undefined || kinds.has(c.kind)) && (opts.filter === undefined || opts.filter(c));
    const from = opts.fromRevision ?? this.current;
    if (from < this.floor) throw new WatchCompactedError(from, this.floor + 1);
    const sub: Subscriber = { accepts, queue: [], wake: undefined, error: undefined };
    for (const c of this.history) if (c.revision > from && accepts(c)) sub.queue.push(c);
    this.subs.add(sub);
    const signal = opts.signal;
    const onAbort = (): void => this.fail(sub, new AbortedError('watch cancelled'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      this.subs.delete(sub);
      signal?.removeEventListener('abort', onAbort);
    };
    const iterator: AsyncIterableIterator<Change> = {
      async next(): Promise<IteratorResult<Change>> {
        for (;;) {
          const c = sub.queue.shift();
          if (c !== undefined) return { value: c, done: false };
          if (sub.error !== undefined) {
            done();
            if (sub.error instanceof AbortedError) return { value: undefined, done: true };
            throw sub.error;
          }
          await new Promise<void>((resolve) => (sub.wake = resolve));
          sub.wake = undefined;
        }
      },
      return(): Promise<IteratorResult<Change>> {
        done();
        sub.queue.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  private fail(s: Subscriber, err: Error): void {
    if (s.error === undefined) s.error = err;
    s.wake?.();
  }
}
