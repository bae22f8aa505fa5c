/**
 * A leader-only loop driven by store changes: `run()` makes one pass over the store; any change
 * of the watched kinds (that `relevant` accepts) asks for another. Passes never overlap, and the
 * changes that arrive during a pass make exactly one more pass after it. A pass that throws is
 * logged and retried after `retryMs` (a version conflict with another writer, a store without
 * quorum for a moment).
 */
import { errorMessage, type Logger } from '@shoal/common';
import type { Change, ClusterStore, ObjectKind } from '@shoal/store';

export interface WatchLoopOptions {
  readonly name: string;
  readonly store: ClusterStore;
  readonly logger: Logger;
  readonly kinds: readonly ObjectKind[];
  readonly run: () => Promise<void>;
  readonly relevant?: (c: Change) => boolean;
  readonly retryMs?: number;
}

export class WatchLoop {
  private abort: AbortController | undefined;
  private running = false;
  private wanted = false;
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  /** Passes made so far (for tests and logs). */
  passes = 0;

  constructor(private readonly opts: WatchLoopOptions) {}

  get isRunning(): boolean {
    return this.abort !== undefined;
  }

  start(): void {
    if (this.abort !== undefined) return;
    const ac = new AbortController();
    this.abort = ac;
    void this.watch(ac.signal);
    this.kick();
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
    this.wanted = false;
    this.wakeIdle();
  }

  /** Asks for a pass (coalesced with any already asked for). */
  kick(): void {
    if (this.abort === undefined) return;
    this.wanted = true;
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.loop();
    });
  }

  /** True when no pass runs or is asked for. */
  get idle(): boolean {
    return !this.running && !this.wanted && !this.scheduled && this.retry === undefined;
  }

  /** Resolves when the loop is idle (or stopped). */
  whenIdle(): Promise<void> {
    if (this.idle || this.abort === undefined) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private async loop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.wanted && this.abort !== undefined) {
        this.wanted = false;
        this.passes++;
        try {
          await this.opts.run();
        } catch (err) {
          if (this.abort === undefined) break;
          this.opts.logger.warn({ loop: this.opts.name, err: errorMessage(err) }, 'pass failed; retrying');
          this.wanted = false;
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.kick();
          }, this.opts.retryMs ?? 200);
          this.retry.unref();
          break;
        }
      }
    } finally {
      this.running = false;
    }
    if (this.idle) this.wakeIdle();
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const { store, kinds, relevant } = this.opts;
    try {
      for await (const c of store.watch({ fromRevision: store.revision, kinds: [...kinds], signal })) {
        if (relevant === undefined || relevant(c)) this.kick();
      }
    } catch (err) {
      if (!signal.aborted) {
        this.opts.logger.warn({ loop: this.opts.name, err: errorMessage(err) }, 'watch ended; restarting');
        if (this.abort?.signal === signal) {
          this.abort = undefined;
          this.start();
        }
      }
    }
  }
}

/** Start, stop and idle of a leader loop whose passes run in a WatchLoop (allocator, scheduler). */
export abstract class WatchLoopDriven {
  protected abstract readonly loop: WatchLoop;

  get isRunning(): boolean {
    return this.loop.isRunning;
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  /** Resolves when no pass runs or is due (tests). */
  whenIdle(): Promise<void> {
    return this.loop.whenIdle();
  }

  get idle(): boolean {
    return this.loop.idle;
  }
}
