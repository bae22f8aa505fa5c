/**
 * Snapshot and log compaction: once enough entries were applied since the last snapshot, the
 * state machine's state is saved as a snapshot and the log before it (but a tail kept for slow
 * followers) is dropped from memory and from the store.
 */
import type { Logger } from '@shoal/common';
import type { ConfState } from '../core/types.js';
import type { MemoryStorage } from '../core/memory-storage.js';
import type { LogStore } from './log-store.js';
import type { StateMachine } from './options.js';

export interface CompactorDeps {
  readonly store: LogStore;
  readonly storage: MemoryStorage;
  readonly stateMachine: StateMachine;
  /** Applied entries between snapshots. */
  readonly snapshotEntries: number;
  /** Entries kept behind a snapshot. */
  readonly keepEntries: number;
  readonly logger: Logger;
}

export class Compactor {
  /** Index of the newest snapshot (taken here, installed, or booted from). */
  snapIndex: number;

  constructor(
    private readonly d: CompactorDeps,
    snapIndex: number,
  ) {
    this.snapIndex = snapIndex;
  }

  /** A snapshot installed from the leader counts as the newest one. */
  installed(index: number): void {
    this.snapIndex = index;
  }

  /** Takes a snapshot at `applied` when due. */
  async maybeCompact(applied: number, confState: ConfState): Promise<void> {
    if (applied - this.snapIndex < this.d.snapshotEntries) return;
    const d = this.d;
    const data = d.stateMachine.snapshot();
    const snap = d.storage.createSnapshot(applied, confState, data);
    await d.store.saveSnapshot(snap);
    this.snapIndex = applied;
    const upTo = applied - d.keepEntries;
    if (upTo > d.storage.firstIndex()) d.storage.compact(upTo);
    await d.store.releaseTo(Math.max(0, upTo));
    d.logger.debug({ index: applied }, 'snapshot taken, log compacted');
  }
}
