/**
 * What this node knows of leadership: the leader, its own role and term, subscribers to leader
 * changes, and pending leadership transfers (resolved when the target is seen leading).
 */
import { AbortedError, type Clock } from '@shoal/common';
import type { NodeId, Role } from '../core/types.js';
import { ProposalOutcomeUnknownError } from '../errors.js';

export interface LeaderInfo {
  readonly leader: NodeId;
  readonly term: number;
  readonly isLeader: boolean;
}

interface Transfer {
  readonly to: NodeId;
  resolve(): void;
}

export class Leadership {
  leader: NodeId = '';
  role: Role = 'follower';
  term = 0;
  private readonly listeners = new Set<(info: LeaderInfo) => void>();
  private readonly transfers = new Set<Transfer>();

  constructor(private readonly clock: Clock) {}

  get isLeader(): boolean {
    return this.role === 'leader';
  }

  info(): LeaderInfo {
    return { leader: this.leader, term: this.term, isLeader: this.isLeader };
  }

  /**
   * Records a new soft state. Returns the previous leader when the leader or this node's
   * leadership changed (the caller then calls announce()), else undefined.
   */
  update(leader: NodeId, role: Role): { previous: NodeId } | undefined {
    const was = this.leader;
    const wasLeader = this.isLeader;
    this.leader = leader;
    this.role = role;
    if (was === leader && wasLeader === this.isLeader) return undefined;
    return { previous: was };
  }

  /** Tells subscribers of the current leader and resolves transfers to it. */
  announce(): void {
    const info = this.info();
    for (const l of this.listeners) l(info);
    for (const t of this.transfers) if (t.to === this.leader) t.resolve();
  }

  subscribe(fn: (info: LeaderInfo) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Waits until `to` leads, after `start()` asked the core for the transfer. Rejects with
   * ProposalOutcomeUnknownError after `timeoutMs`, AbortedError on abort, or what start throws.
   */
  awaitTransfer(to: NodeId, timeoutMs: number, signal: AbortSignal | undefined, start: () => void): Promise<void> {
    if (this.leader === to) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const end = (err: Error | undefined): void => {
        timer.cancel();
        this.transfers.delete(entry);
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      const entry: Transfer = { to, resolve: () => end(undefined) };
      const timer = this.clock.setTimeout(
        () => end(new ProposalOutcomeUnknownError(`leadership transfer to ${to} timed out`)),
        timeoutMs,
      );
      const onAbort = (): void => end(new AbortedError());
      signal?.addEventListener('abort', onAbort, { once: true });
      this.transfers.add(entry);
      try {
        start();
      } catch (err) {
        end(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Resolves every pending transfer (the node is closing). */
  releaseTransfers(): void {
    for (const t of this.transfers) t.resolve();
  }
}
