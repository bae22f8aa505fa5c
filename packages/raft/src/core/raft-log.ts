/**
 * The core's view of the log: the caller's Storage (persisted, possibly compacted) followed by the
 * Unstable part (accepted, not yet persisted), plus the commit and applied indexes.
 */
import { CompactedError, RaftInvariantError, UnavailableError } from '../errors.js';
import type { Entry, Snapshot, Storage } from './types.js';
import { Unstable } from './unstable.js';
import { limitSize } from './util.js';

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index handed to the application in a Ready (applied once that Ready is advanced). */
  applying: number;
  /** Highest index the application has applied. */
  applied: number;

  constructor(storage: Storage) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    const i = this.unstable.maybeFirstIndex();
    return i !== -1 ? i : this.storage.firstIndex();
  }

  lastIndex(): number {
    const i = this.unstable.maybeLastIndex();
    return i !== -1 ? i : this.storage.lastIndex();
  }

  /** Term of entry i; throws CompactedError/UnavailableError when out of range. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== -1) return t;
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(i, dummy + 1);
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    return this.storage.term(i);
  }

  /** Term of entry i, or 0 when it is compacted or beyond the log. */
  termOr0(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== -1) return t;
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return 0;
    try {
      return this.storage.term(i);
    } catch (err) {
      if (err instanceof CompactedError || err instanceof UnavailableError) return 0;
      throw err;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, t: number): boolean {
    if (i > this.lastIndex()) return false;
    const dummy = this.firstIndex() - 1;
    if (i < dummy) return false;
    return this.termOr0(i) === t;
  }

  /** Raft's "at least as up to date" comparison for votes. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of MsgApp: if the entry at `index` has `logTerm`, append the new part of `ents`
   * (cutting a conflicting suffix, never a matching one) and advance commit. Returns the last new
   * index, or -1 when the log does not match.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new RaftInvariantError(`entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      }
      const off = index + 1;
      this.append(ci === off ? ents : ents.slice(ci - off));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new RaftInvariantError(`append after ${after} is below committed ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry of `ents` whose term differs from ours at that index, or the first
   * new entry; 0 when all of them are already present with matching terms.
   */
  findConflict(ents: readonly Entry[]): number {
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (used to skip a whole term of
   * mismatching entries in one rejection round trip), and that entry's term.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    const dummy = this.firstIndex() - 1;
    for (; index > dummy; index--) {
      const t = this.termOr0(index);
      if (t <= term) return [index, t];
    }
    return [index, this.termOr0(index)];
  }

  /** Entries in [lo, hi) with at most maxBytes (at least one). Throws CompactedError below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    const last = this.lastIndex();
    if (hi > last + 1) throw new RaftInvariantError(`slice [${lo}, ${hi}) beyond last index ${last}`);
    const uoff = this.unstable.offset;
    let ents: Entry[];
    if (hi <= uoff) {
      ents = this.storage.entries(lo, hi, maxBytes);
      return ents;
    }
    if (lo >= uoff) return limitSize(this.unstable.slice(lo, hi), maxBytes);
    ents = this.storage.entries(lo, uoff, maxBytes);
    // Storage cut the batch short because of maxBytes: do not add unstable entries.
    if (ents.length < uoff - lo) return ents;
    const all = ents.concat(this.unstable.slice(uoff, hi));
    return limitSize(all, maxBytes);
  }

  /** Entries in [from, lastIndex] with at most maxBytes. */
  entriesFrom(from: number, maxBytes: number): Entry[] {
    const last = this.lastIndex();
    if (from > last) return [];
    return this.slice(from, last + 1, maxBytes);
  }

  commitTo(i: number): void {
    if (i <= this.committed) return;
    if (i > this.lastIndex()) {
      throw new RaftInvariantError(`commit ${i} is beyond the last index ${this.lastIndex()}`);
    }
    this.committed = i;
  }

  /**
   * Leader side: commit `maxIndex` (the quorum's match index) only if its entry is from `term`,
   * the leader's current term (Raft §5.4.2, the figure-8 rule).
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOr0(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed) throw new RaftInvariantError(`applied ${i} is beyond committed ${this.committed}`);
    if (i > this.applied) this.applied = i;
    if (i > this.applying) this.applying = i;
  }

  /**
   * True when committed entries wait to be handed to the application. At most one Ready is
   * outstanding, so every unstable entry is persisted (by the Ready being built) before the
   * committed entries of that Ready are applied.
   */
  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot !== undefined) return false;
    return Math.min(this.committed, this.lastIndex()) > this.applying;
  }

  /** Committed entries not yet handed out, at most maxBytes (at least one). */
  nextCommittedEnts(maxBytes: number): Entry[] {
    if (this.unstable.snapshot !== undefined) return [];
    const hi = Math.min(this.committed, this.lastIndex());
    const lo = this.applying + 1;
    if (hi < lo) return [];
    return this.slice(lo, hi + 1, maxBytes);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
