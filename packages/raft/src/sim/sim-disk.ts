/**
 * A simulated disk per node: writes land in a volatile layer; fsync promotes them to the durable
 * layer. A crash keeps the durable layer plus, optionally, a random prefix of the volatile writes
 * (as a real page cache may have flushed some of them), and loses the rest.
 */
import type { Entry, HardState, Snapshot } from '../core/types.js';
import { EMPTY_HARD_STATE, EMPTY_SNAPSHOT } from '../core/util.js';
import type { Prng } from './prng.js';

export type DiskRecord =
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  | { readonly kind: 'hard'; readonly hs: HardState }
  /** Entries after the snapshot survive only if the log has the snapshot's own entry (a local snapshot). */
  | { readonly kind: 'snap'; readonly snap: Snapshot };

export interface DiskImage {
  hard: HardState;
  snap: Snapshot;
  /** Entries after the snapshot index, contiguous. */
  entries: Entry[];
}

export class SimDisk {
  private durable: DiskImage = { hard: EMPTY_HARD_STATE, snap: EMPTY_SNAPSHOT, entries: [] };
  private volatile: DiskRecord[] = [];
  fsyncs = 0;

  constructor(initial?: Snapshot) {
    if (initial !== undefined) this.durable.snap = initial;
  }

  write(rec: DiskRecord): void {
    this.volatile.push(rec);
  }

  fsync(): void {
    for (const r of this.volatile) applyRecord(this.durable, r);
    this.volatile = [];
    this.fsyncs++;
  }

  /** Power loss: durable survives, plus a random prefix of the unsynced writes when `rng` says so. */
  crash(rng: Prng): number {
    const keep = rng.chance(0.5) ? rng.int(this.volatile.length + 1) : 0;
    for (let k = 0; k < keep; k++) applyRecord(this.durable, this.volatile[k]!);
    const lost = this.volatile.length - keep;
    this.volatile = [];
    return lost;
  }

  /** What a restarting node reads back (only durable data). */
  load(): DiskImage {
    return { hard: this.durable.hard, snap: this.durable.snap, entries: this.durable.entries.slice() };
  }
}

function applyRecord(img: DiskImage, r: DiskRecord): void {
  switch (r.kind) {
    case 'hard':
      img.hard = r.hs;
      return;
    case 'snap': {
      const idx = r.snap.metadata.index;
      if (idx <= img.snap.metadata.index) return;
      const own = img.entries.find((e) => e.index === idx);
      // A snapshot from the leader replaces a log that does not hold its last entry.
      if (own === undefined || own.term !== r.snap.metadata.term) img.entries = [];
      else img.entries = img.entries.filter((e) => e.index > idx);
      img.snap = r.snap;
      // Entries must stay contiguous after the snapshot.
      if (img.entries.length > 0 && img.entries[0]!.index !== idx + 1) img.entries = [];
      return;
    }
    case 'entries': {
      if (r.entries.length === 0) return;
      const base = img.snap.metadata.index;
      let ents = r.entries;
      if (ents[0]!.index <= base) ents = ents.filter((e) => e.index > base);
      if (ents.length === 0) return;
      const from = ents[0]!.index;
      const have = base + img.entries.length;
      if (from > have + 1) throw new Error(`sim disk: entries at ${from} leave a gap after ${have}`);
      img.entries.length = from - base - 1;
      for (const e of ents) img.entries.push(e);
      return;
    }
  }
}
