/**
 * An in-memory Storage: the log since the last snapshot, the snapshot itself and the hard state.
 * The driver keeps one as its in-memory view (rebuilt from the WAL at boot) and appends to it
 * after each persisted Ready; tests and the simulator use it directly.
 */
import { CompactedError, SnapshotOutOfDateError, UnavailableError, RaftInvariantError } from '../errors.js';
import type { ConfState, Entry, HardState, Snapshot, Storage } from './types.js';
import { EMPTY_HARD_STATE, EMPTY_SNAPSHOT, limitSize } from './util.js';

export class MemoryStorage implements Storage {
  private hard: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = EMPTY_SNAPSHOT;
  /** Index and term of the last compacted entry (the entry just before ents[0]). */
  private offset = 0;
  private offsetTerm = 0;
  /** Entries after the compaction point: ents[k] has index offset + 1 + k. */
  private ents: Entry[] = [];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hard, confState: this.snap.metadata.confState };
  }

  hardState(): HardState {
    return this.hard;
  }

  setHardState(hs: HardState): void {
    this.hard = hs;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.offset;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    const last = this.lastIndex();
    if (hi > last + 1) throw new UnavailableError(hi - 1, last);
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - offset - 1, hi - offset - 1), maxBytes);
  }

  term(i: number): number {
    const offset = this.offset;
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i === offset) return this.offsetTerm;
    const e = this.ents[i - offset - 1];
    if (e === undefined) throw new UnavailableError(i, this.lastIndex());
    return e.term;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces everything with `snap` (a snapshot received from the leader, or loaded at boot). */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) {
      throw new SnapshotOutOfDateError(snap.metadata.index, this.snap.metadata.index);
    }
    this.snap = snap;
    this.offset = snap.metadata.index;
    this.offsetTerm = snap.metadata.term;
    this.ents = [];
  }

  /**
   * Records a snapshot of the state machine at applied index `i` (offset < i <= lastIndex).
   * `confState` must be the configuration in effect at `i`. Entries stay: compact() drops them.
   */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new SnapshotOutOfDateError(i, this.snap.metadata.index);
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    this.snap = { metadata: { index: i, term: this.term(i), confState }, data };
    return this.snap;
  }

  /**
   * Discards entries up to and including `i`, which must not pass the snapshot index (so that a
   * follower needing them can get the snapshot instead). Compacting below the offset is a no-op.
   */
  compact(i: number): void {
    if (i <= this.offset) return;
    if (i > this.snap.metadata.index) {
      throw new RaftInvariantError(`compact(${i}) beyond the snapshot index ${this.snap.metadata.index}`);
    }
    this.offsetTerm = this.term(i);
    this.ents = this.ents.slice(i - this.offset);
    this.offset = i;
  }

  /**
   * Appends entries coming from a persisted Ready. An entry at index i replaces the stored entries
   * at >= i. Entries at or below the compaction point are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.offset + 1;
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    let start = 0;
    if (entries[0]!.index < first) start = first - entries[0]!.index;
    const at = entries[start]!.index;
    if (at > this.lastIndex() + 1) {
      throw new RaftInvariantError(`append at ${at} leaves a gap after last index ${this.lastIndex()}`);
    }
    this.ents.length = at - first;
    for (let k = start; k < entries.length; k++) this.ents.push(entries[k]!);
  }
}
