/**
 * Apply: installs snapshots into the state machine and applies committed entries in log order,
 * normal ones in batches, conf changes one by one to the core (and the transport's peer table).
 * Each applied proposal's waiter is settled; the resolutions are returned to run after advance().
 */
import type { ConfChange, ConfState, Entry, NodeId, RawNodeApi, Snapshot } from '../core/types.js';
import type { Logger } from '@shoal/common';
import type { Transport } from '../transport/transport.js';
import type { LogStore } from './log-store.js';
import { restoreStateMachine } from './compaction.js';
import { decodeConfContext, unwrapProposal } from './envelope.js';
import type { AppliedEntry, StateMachine } from './options.js';
import type { ProposalWaiters } from './wait.js';

export interface ApplierDeps {
  readonly id: NodeId;
  readonly stateMachine: StateMachine;
  readonly store: LogStore;
  readonly transport: Transport;
  readonly decodeConfChange: (data: Uint8Array) => ConfChange;
  readonly waiters: ProposalWaiters;
  readonly logger: Logger;
}

export class Applier {
  /** Index of the last entry applied (or snapshot installed). */
  applied: number;
  /** The configuration in effect at `applied`. */
  confState: ConfState;
  /** Bytes of entry data applied in this life (drives snapshots by size). */
  appliedBytes = 0;

  constructor(
    private readonly d: ApplierDeps,
    applied: number,
    confState: ConfState,
  ) {
    this.applied = applied;
    this.confState = confState;
  }

  /** Replaces the state machine's state with a snapshot from the leader. */
  async installSnapshot(s: Snapshot): Promise<void> {
    await restoreStateMachine(this.d.store, this.d.stateMachine, s);
    this.applied = s.metadata.index;
    this.confState = s.metadata.confState;
    this.d.logger.info({ index: s.metadata.index, term: s.metadata.term }, 'installed snapshot from leader');
  }

  /** Applies committed entries; returns the resolutions of the proposals they settle. */
  apply(entries: readonly Entry[], raw: RawNodeApi): (() => void)[] {
    const settlements: (() => void)[] = [];
    const settle = (id: number, result: unknown): void => {
      const done = this.d.waiters.settle(id, result);
      if (done !== undefined) settlements.push(done);
    };
    let batch: AppliedEntry[] = [];
    let ids: number[] = [];
    const flush = (): void => {
      if (batch.length === 0) return;
      const results = this.d.stateMachine.apply(batch);
      for (let k = 0; k < batch.length; k++) settle(ids[k]!, results[k]);
      batch = [];
      ids = [];
    };
    for (const e of entries) {
      if (e.index <= this.applied) continue;
      this.appliedBytes += e.data.byteLength;
      this.d.waiters.supersede(e.index, e.term);
      if (e.type === 'normal') {
        const u = unwrapProposal(e.data);
        if (u !== undefined) {
          batch.push({ index: e.index, term: e.term, data: u.payload });
          ids.push(u.id);
        }
      } else {
        flush();
        const cc = this.d.decodeConfChange(e.data);
        this.confState = raw.applyConfChange(cc);
        const ctx = decodeConfContext(cc.context);
        if (ctx !== undefined) {
          this.updatePeers(cc, ctx.address);
          settle(ctx.id, this.confState);
        }
      }
      this.applied = e.index;
    }
    flush();
    return settlements;
  }

  private updatePeers(cc: ConfChange, address: string): void {
    for (const ch of cc.changes) {
      if (ch.nodeId === this.d.id) continue;
      if (ch.type === 'removeNode') this.d.transport.removePeer(ch.nodeId);
      else if (address !== '') this.d.transport.setPeer(ch.nodeId, address);
    }
  }
}
