/**
 * The unstable part of the log: entries (and possibly a snapshot) that the core has accepted but
 * the caller has not yet persisted. Entries handed out in a Ready are "in progress" until the
 * caller acknowledges them with advance(); they are not handed out again.
 */
import { RaftInvariantError } from '../errors.js';
import type { Entry, Snapshot } from './types.js';

export class Unstable {
  /** A snapshot received from the leader, not yet persisted. */
  snapshot: Snapshot | undefined = undefined;
  /** Entries not yet persisted: entries[k] has index offset + k. */
  entries: Entry[] = [];
  offset: number;
  /** Entries with index < offsetInProgress were handed out in a Ready (being persisted). */
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** First index if there is an unstable snapshot. */
  maybeFirstIndex(): number {
    return this.snapshot === undefined ? -1 : this.snapshot.metadata.index + 1;
  }

  /** Last index if there are unstable entries or an unstable snapshot, else -1. */
  maybeLastIndex(): number {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined) return this.snapshot.metadata.index;
    return -1;
  }

  /** Term of entry i if the unstable part knows it, else -1. */
  maybeTerm(i: number): number {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return -1;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? -1 : e.term;
  }

  /** Entries not yet handed out in a Ready. */
  nextEntries(): Entry[] {
    const k = this.offsetInProgress - this.offset;
    if (k >= this.entries.length) return [];
    return k === 0 ? this.entries.slice() : this.entries.slice(k);
  }

  nextSnapshot(): Snapshot | undefined {
    if (this.snapshot === undefined || this.snapshotInProgress) return undefined;
    return this.snapshot;
  }

  /** Marks everything currently unstable as handed out. */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== undefined) this.snapshotInProgress = true;
  }

  /**
   * Entries up to (index, term) are now persisted. The term check guards against the ABA case:
   * the same indexes rewritten by a newer term while the old write was in flight.
   */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    if (t === -1 || t !== term || index < this.offset) return;
    const n = index + 1 - this.offset;
    this.entries = n >= this.entries.length ? [] : this.entries.slice(n);
    this.offset = index + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const from = ents[0]!.index;
    const end = this.offset + this.entries.length;
    if (from === end) {
      for (let k = 0; k < ents.length; k++) this.entries.push(ents[k]!);
    } else if (from <= this.offset) {
      // Replace everything: the new entries start at or before the unstable part.
      this.offset = from;
      this.entries = ents.slice();
    } else if (from < end) {
      this.entries.length = from - this.offset;
      for (let k = 0; k < ents.length; k++) this.entries.push(ents[k]!);
    } else {
      throw new RaftInvariantError(`unstable append at ${from} leaves a gap after ${end - 1}`);
    }
    if (this.offsetInProgress > from) this.offsetInProgress = from;
  }

  /** Entries in [lo, hi) from the unstable part (caller checks bounds). */
  slice(lo: number, hi: number): Entry[] {
    if (lo < this.offset || hi > this.offset + this.entries.length || lo > hi) {
      throw new RaftInvariantError(
        `unstable slice [${lo}, ${hi}) out of bounds [${this.offset}, ${this.offset + this.entries.length})`,
      );
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
