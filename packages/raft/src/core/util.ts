/**
 * Small shared helpers of the core: entry sizes, size-limited slices, empty values.
 */
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { NONE } from './types.js';

/** Fixed per-entry overhead counted by size limits (framing: term, index, type, length). */
export const ENTRY_OVERHEAD = 16;

/** Bytes an entry counts for in MsgApp and storage size limits. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD;
}

/** Bytes of payload an entry counts for in the uncommitted-size cap (the leader's empty entry counts 0). */
export function payloadSize(e: Entry): number {
  return e.data.byteLength;
}

/**
 * The longest prefix of `ents` whose total size is at most `maxBytes`, but always at least one
 * entry. Returns `ents` itself when nothing is cut (no copy on the hot path).
 */
export function limitSize<T extends Entry>(ents: T[], maxBytes: number): T[] {
  if (ents.length <= 1) return ents;
  let size = 0;
  for (let i = 0; i < ents.length; i++) {
    size += entrySize(ents[i]!);
    if (size > maxBytes && i > 0) return ents.slice(0, i);
  }
  return ents;
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

export const EMPTY_CONF_STATE: ConfState = Object.freeze({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE },
  data: EMPTY_BYTES,
});

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
