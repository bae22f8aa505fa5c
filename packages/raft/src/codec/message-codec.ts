/**
 * Compact binary codec for the raft wire and disk types: Entry, HardState, ConfState, Snapshot
 * and Message. Each Entry is encoded once and the bytes are cached on the (immutable) entry
 * object, so the WAL and every follower stream reuse them.
 */
import { RaftDecodeError } from '../errors.js';
import type { ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot } from '../core/types.js';
import { BinaryReader, BinaryWriter } from './binary.js';

const MESSAGE_VERSION = 1;

const MESSAGE_TYPES: readonly MessageType[] = [
  'app',
  'appResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'heartbeat',
  'heartbeatResp',
  'snap',
  'prop',
  'readIndex',
  'readIndexResp',
  'timeoutNow',
  'transferLeader',
];
const MESSAGE_CODE = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]));
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange'];

const EMPTY = new Uint8Array(0);
const entryCache = new WeakMap<Entry, Buffer>();

/** The encoded bytes of one entry (cached: encode once, write to WAL and all peers). */
export function encodeEntry(e: Entry): Buffer {
  let b = entryCache.get(e);
  if (b === undefined) {
    const w = new BinaryWriter(21 + e.data.byteLength);
    w.u64(e.term)
      .u64(e.index)
      .u8(e.type === 'normal' ? 0 : 1)
      .bytes(e.data);
    b = w.finish();
    entryCache.set(e, b);
  }
  return b;
}

export function readEntry(r: BinaryReader): Entry {
  const term = r.u64();
  const index = r.u64();
  const t = ENTRY_TYPES[r.u8()];
  if (t === undefined) throw new RaftDecodeError('entry', `unknown entry type at byte ${r.offset - 1}`);
  const data = r.bytes();
  return { term, index, type: t, data };
}

export function decodeEntry(b: Uint8Array): Entry {
  const r = new BinaryReader(b, 'entry');
  const e = readEntry(r);
  r.done();
  return e;
}

export function writeConfState(w: BinaryWriter, cs: ConfState): void {
  for (const list of [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext]) {
    w.u16(list.length);
    for (const id of list) w.str(id);
  }
  w.bool(cs.autoLeave);
}

export function readConfState(r: BinaryReader): ConfState {
  const lists: string[][] = [];
  for (let k = 0; k < 4; k++) {
    const n = r.u16();
    const l: string[] = [];
    for (let i = 0; i < n; i++) l.push(r.str());
    lists.push(l);
  }
  return {
    voters: lists[0]!,
    learners: lists[1]!,
    votersOutgoing: lists[2]!,
    learnersNext: lists[3]!,
    autoLeave: r.bool(),
  };
}

export function encodeHardState(hs: HardState): Buffer {
  return new BinaryWriter(32).u64(hs.term).str(hs.vote).u64(hs.commit).finish();
}

export function decodeHardState(b: Uint8Array): HardState {
  const r = new BinaryReader(b, 'hard state');
  const hs: HardState = { term: r.u64(), vote: r.str(), commit: r.u64() };
  r.done();
  return hs;
}

export function writeSnapshot(w: BinaryWriter, s: Snapshot): void {
  w.u64(s.metadata.index).u64(s.metadata.term);
  writeConfState(w, s.metadata.confState);
  w.bytes(s.data);
}

export function readSnapshot(r: BinaryReader): Snapshot {
  const index = r.u64();
  const term = r.u64();
  const confState = readConfState(r);
  const data = r.bytes();
  return { metadata: { index, term, confState }, data };
}

/** Encodes a message; entries reuse their cached encodings. */
export function encodeMessage(m: Message): Buffer {
  let size = 96 + m.context.byteLength;
  for (const e of m.entries) size += 21 + e.data.byteLength;
  if (m.snapshot !== undefined) size += 64 + m.snapshot.data.byteLength;
  const w = new BinaryWriter(size);
  const code = MESSAGE_CODE.get(m.type);
  if (code === undefined) throw new RaftDecodeError('message', `unknown message type ${m.type}`);
  w.u8(MESSAGE_VERSION)
    .u8(code)
    .str(m.from)
    .str(m.to)
    .u64(m.term)
    .u64(m.index)
    .u64(m.logTerm)
    .u64(m.commit)
    .u8((m.reject ? 1 : 0) | (m.snapshot !== undefined ? 2 : 0))
    .u64(m.rejectHint)
    .bytes(m.context)
    .u32(m.entries.length);
  for (const e of m.entries) w.raw(encodeEntry(e));
  if (m.snapshot !== undefined) writeSnapshot(w, m.snapshot);
  return w.finish();
}

export function decodeMessage(b: Uint8Array): Message {
  const r = new BinaryReader(b, 'raft message');
  const version = r.u8();
  if (version !== MESSAGE_VERSION) throw new RaftDecodeError('raft message', `unsupported version ${version}`);
  const type = MESSAGE_TYPES[r.u8()];
  if (type === undefined) throw new RaftDecodeError('raft message', 'unknown message type');
  const from = r.str();
  const to = r.str();
  const term = r.u64();
  const index = r.u64();
  const logTerm = r.u64();
  const commit = r.u64();
  const flags = r.u8();
  const rejectHint = r.u64();
  const ctx = r.bytes();
  const n = r.u32();
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) entries.push(readEntry(r));
  const snapshot = (flags & 2) !== 0 ? readSnapshot(r) : undefined;
  r.done();
  const m: Message = {
    type,
    from,
    to,
    term,
    index,
    logTerm,
    commit,
    entries,
    reject: (flags & 1) !== 0,
    rejectHint,
    context: ctx.byteLength === 0 ? EMPTY : ctx,
    ...(snapshot !== undefined ? { snapshot } : {}),
  };
  return m;
}
