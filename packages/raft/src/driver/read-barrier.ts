/**
 * Coalesced ReadIndex: all reads that arrive while a round is in flight share the next round,
 * so a burst of reads costs one heartbeat round. A round that gets no answer (lost messages,
 * leader change) is re-issued with a fresh context after `retryMs`.
 */
import { AbortedError } from '@shoal/common';
import { ProposalDroppedError } from '../errors.js';

interface ReadWaiter {
  resolve(): void;
  reject(e: Error): void;
  cleanup?: () => void;
}

interface Round {
  readonly ctx: Buffer;
  readonly waiters: ReadWaiter[];
  index: number;
  issuedAt: number;
  /** False when the core refused the request (no leader yet): retried on the next tick. */
  issued: boolean;
}

export interface ReadBarrierHooks {
  issue(ctx: Uint8Array): void;
  applied(): number;
  wake(): void;
  /** A request context unique in the cluster. */
  newContext(): Buffer;
  now(): number;
  retryMs: number;
}

export class ReadBarrier {
  private queued: ReadWaiter[] = [];
  private inflight: Round | undefined;
  private readonly ready: Round[] = [];

  constructor(private readonly hooks: ReadBarrierHooks) {}

  wait(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(new AbortedError());
    return new Promise<void>((resolve, reject) => {
      const w: ReadWaiter = { resolve, reject };
      if (signal !== undefined) {
        const onAbort = (): void => {
          w.resolve = () => undefined;
          w.reject = () => undefined;
          reject(new AbortedError());
        };
        signal.addEventListener('abort', onAbort, { once: true });
        w.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.queued.push(w);
      this.pump();
    });
  }

  private pump(): void {
    if (this.inflight !== undefined || this.queued.length === 0) return;
    const h = this.hooks;
    const round: Round = { ctx: h.newContext(), waiters: this.queued, index: -1, issuedAt: h.now(), issued: false };
    this.queued = [];
    this.inflight = round;
    try {
      h.issue(round.ctx);
      round.issued = true;
    } catch (err) {
      // No leader yet: the round is retried on the next tick.
      if (!(err instanceof ProposalDroppedError)) throw err;
    }
    h.wake();
  }

  onReadState(index: number, ctx: Uint8Array): void {
    const r = this.inflight;
    if (r === undefined || !r.ctx.equals(ctx)) return;
    r.index = index;
    this.inflight = undefined;
    this.ready.push(r);
    this.pump();
  }

  /** Resolves rounds whose index is applied. */
  release(): void {
    const applied = this.hooks.applied();
    while (this.ready.length > 0 && this.ready[0]!.index <= applied) {
      for (const w of this.ready.shift()!.waiters) {
        w.cleanup?.();
        w.resolve();
      }
    }
  }

  /** Re-issues a round that got no answer in time. */
  tick(): void {
    const r = this.inflight;
    if (r === undefined || (r.issued && this.hooks.now() - r.issuedAt < this.hooks.retryMs)) return;
    this.inflight = undefined;
    this.queued = [...r.waiters, ...this.queued];
    this.pump();
  }

  /** A new leader: the in-flight round's answer may never come; ask again now. */
  onLeaderChange(): void {
    const r = this.inflight;
    if (r === undefined) return;
    r.issuedAt = 0;
    this.tick();
  }

  failAll(err: Error): void {
    const all = [...this.queued, ...(this.inflight?.waiters ?? []), ...this.ready.flatMap((r) => r.waiters)];
    this.queued = [];
    this.inflight = undefined;
    this.ready.length = 0;
    for (const w of all) {
      w.cleanup?.();
      w.reject(err);
    }
  }
}
