/**
 * Durable storage seen by the driver: one durable batch per Ready, snapshots, and release of what
 * a snapshot covers. `DiskLogStore` (WAL + snapshot files) is the production implementation; the
 * simulator implements the same interface over its simulated disk.
 */
import type { Entry, HardState, Snapshot } from '../core/types.js';

/** Durable state found at boot. */
export interface BootState {
  readonly hardState: HardState;
  /** The newest usable snapshot, if any. */
  readonly snapshot: Snapshot | undefined;
  /** Entries after the snapshot index, contiguous. */
  readonly entries: Entry[];
}

export interface LogStore {
  /** State recovered when the store was opened. */
  readonly boot: BootState;
  /**
   * Appends `entries` (an entry at i voids stored entries at >= i) and `hardState` as one batch;
   * durable when the promise resolves if `mustSync`. Rejects with StorageFatalError on I/O error.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void>;
  /** Durably stores a snapshot (file first, then the log marker). */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** Drops log segments and old snapshot files that the snapshot at `index` makes unnecessary. */
  releaseTo(index: number): Promise<void>;
  close(): Promise<void>;
}
