/**
 * The replicated KV state machine: values with a per-key revision (the log index of the last
 * change) and client sessions for at-most-once writes. Deterministic: everything comes from the
 * command and the entry index, including time (the leader's `ts` in each command).
 *
 * Snapshots never stop applies: `beginSnapshot()` freezes the item map as it is (the base) and
 * sends later writes to an overlay until the snapshot source is closed, when the overlay is folded
 * back. The source encodes the frozen base lazily in chunks of about `chunkBytes`.
 *
 * Sessions expire: the machine's clock is the highest `ts` applied; a session not used for
 * `sessionTtlMs` of that clock is forgotten. A write from a forgotten session that is not the
 * start of a new one (firstUnacked > 1) is refused with revision SESSION_EXPIRED, since its
 * earlier results (needed to dedupe retries) are gone.
 */
import { BinaryReader, BinaryWriter } from '../codec/binary.js';
import { RaftDecodeError } from '../errors.js';
import type { AppliedEntry, StateMachine } from '../driver/raft-node.js';
import type { SnapshotSource, StreamingStateMachine } from '../driver/snapshot-stream.js';
import { decodeCommand, type KvCommand, type KvResult } from './command.js';

interface Item {
  value: Buffer;
  revision: number;
}

interface Session {
  /** Results of seqs >= floor, kept for retries. */
  results: Map<number, KvResult>;
  floor: number;
  /** Machine clock at the session's last write. */
  lastSeen: number;
}

/** Revision of a refused write whose seq is below what the session still remembers. */
export const STALE_REVISION = -1;
/** Revision of a refused write whose session expired. */
export const SESSION_EXPIRED_REVISION = -2;

const STALE: KvResult = Object.freeze({ ok: false, revision: STALE_REVISION, value: null });
const EXPIRED: KvResult = Object.freeze({ ok: false, revision: SESSION_EXPIRED_REVISION, value: null });

const FORMAT = 2;
const CHUNK_HEADER = 0;
const CHUNK_ITEMS = 1;

export interface KvStateMachineOptions {
  /** Sessions idle this long (by the log's clock) are forgotten (default 10 minutes). Same on every replica. */
  readonly sessionTtlMs?: number;
  /** Target size of a snapshot chunk (default 1 MiB). */
  readonly chunkBytes?: number;
}

/** A value copied into its own exact-size memory (a pooled small Buffer would pin an 8 KiB slab). */
function ownCopy(v: Uint8Array): Buffer {
  const b = Buffer.allocUnsafeSlow(v.byteLength);
  b.set(v);
  return b;
}

export class KvStateMachine implements StateMachine, StreamingStateMachine {
  private base = new Map<string, Item>();
  /** Writes made while a snapshot reads `base` (null = deleted). */
  private overlay: Map<string, Item | null> | undefined;
  private sessions = new Map<number, Session>();
  private clock = 0;
  private nextSweep = 0;
  private count = 0;
  private bytes = 0;
  private readonly ttl: number;
  private readonly chunkBytes: number;

  constructor(opts: KvStateMachineOptions = {}) {
    this.ttl = opts.sessionTtlMs ?? 10 * 60_000;
    this.chunkBytes = opts.chunkBytes ?? 1024 * 1024;
  }

  private item(key: string): Item | undefined {
    if (this.overlay !== undefined) {
      const o = this.overlay.get(key);
      if (o !== undefined) return o ?? undefined;
    }
    return this.base.get(key);
  }

  private setItem(key: string, it: Item): void {
    const cur = this.item(key);
    if (cur === undefined) {
      this.count++;
      this.bytes += key.length + it.value.byteLength;
    } else this.bytes += it.value.byteLength - cur.value.byteLength;
    if (this.overlay !== undefined) this.overlay.set(key, it);
    else this.base.set(key, it);
  }

  private deleteItem(key: string, cur: Item): void {
    this.count--;
    this.bytes -= key.length + cur.value.byteLength;
    if (this.overlay !== undefined) this.overlay.set(key, null);
    else this.base.delete(key);
  }

  get(key: string): KvResult {
    const it = this.item(key);
    return it === undefined
      ? { ok: true, revision: 0, value: null }
      : { ok: true, revision: it.revision, value: it.value };
  }

  size(): number {
    return this.count;
  }

  /** Bytes of keys and values held (the live state, for memory figures). */
  liveBytes(): number {
    return this.bytes;
  }

  /** Client ids with a live session, sorted (for tests and diagnostics). */
  sessionIds(): number[] {
    return [...this.sessions.keys()].sort((a, b) => a - b);
  }

  /** A canonical text of the whole state (sorted), for tests comparing replicas. */
  digest(): string {
    const keys = new Set<string>(this.base.keys());
    if (this.overlay !== undefined) for (const k of this.overlay.keys()) keys.add(k);
    const items: string[] = [];
    for (const k of [...keys].sort()) {
      const it = this.item(k);
      if (it !== undefined) items.push(`${k}=${it.revision}:${it.value.toString('hex')}`);
    }
    const sessions = [...this.sessions.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([id, s]) => {
        const res = [...s.results.entries()].sort((a, b) => a[0] - b[0]).map(([q, r]) => `${q}:${r.ok}:${r.revision}`);
        return `${id}/${s.floor}/${s.lastSeen}[${res.join(',')}]`;
      });
    return JSON.stringify({
      clock: this.clock,
      nextSweep: this.nextSweep,
      count: this.count,
      bytes: this.bytes,
      items,
      sessions,
    });
  }

  /** The log's clock: the highest `ts` applied. */
  now(): number {
    return this.clock;
  }

  apply(entries: readonly AppliedEntry[]): KvResult[] {
    const out: KvResult[] = [];
    for (const e of entries) {
      let cmd: KvCommand;
      try {
        cmd = decodeCommand(e.data);
      } catch (err) {
        if (!(err instanceof RaftDecodeError)) throw err;
        out.push(STALE);
        continue;
      }
      out.push(this.applyOne(cmd, e.index));
    }
    return out;
  }

  private tickClock(ts: number): void {
    if (ts > this.clock) this.clock = ts;
    if (this.clock < this.nextSweep) return;
    for (const [id, s] of this.sessions) if (s.lastSeen + this.ttl <= this.clock) this.sessions.delete(id);
    this.nextSweep = this.clock + Math.max(1, Math.floor(this.ttl / 8));
  }

  private applyOne(c: KvCommand, index: number): KvResult {
    this.tickClock(c.ts ?? 0);
    let s = this.sessions.get(c.clientId);
    if (s !== undefined && s.lastSeen + this.ttl <= this.clock) {
      this.sessions.delete(c.clientId);
      s = undefined;
    }
    if (s === undefined) {
      if (c.firstUnacked > 1) return EXPIRED;
      this.sessions.set(c.clientId, (s = { results: new Map(), floor: 0, lastSeen: this.clock }));
    }
    s.lastSeen = this.clock;
    if (c.firstUnacked > s.floor) {
      s.floor = c.firstUnacked;
      for (const seq of s.results.keys()) if (seq < s.floor) s.results.delete(seq);
    }
    const cached = s.results.get(c.seq);
    if (cached !== undefined) return cached;
    if (c.seq < s.floor) return STALE;
    let r: KvResult;
    const cur = this.item(c.key);
    switch (c.op) {
      case 'put':
        this.setItem(c.key, { value: ownCopy(c.value), revision: index });
        r = { ok: true, revision: index, value: null };
        break;
      case 'delete':
        if (cur !== undefined) this.deleteItem(c.key, cur);
        r = { ok: cur !== undefined, revision: index, value: null };
        break;
      case 'cas': {
        const matches = c.expected === null ? cur === undefined : cur !== undefined && cur.value.equals(c.expected);
        if (matches) {
          this.setItem(c.key, { value: ownCopy(c.value), revision: index });
          r = { ok: true, revision: index, value: null };
        } else r = { ok: false, revision: cur?.revision ?? 0, value: cur?.value ?? null };
        break;
      }
    }
    s.results.set(c.seq, r);
    return r;
  }

  private encodeHeader(sessions: Map<number, Session>): Uint8Array {
    const w = new BinaryWriter(64 + sessions.size * 64);
    w.u8(CHUNK_HEADER).u8(FORMAT).u64(this.clock).u64(this.nextSweep).u32(sessions.size);
    for (const [id, s] of sessions) {
      w.u64(id).u64(s.floor).u64(s.lastSeen).u32(s.results.size);
      for (const [seq, r] of s.results) {
        w.u64(seq)
          .bool(r.ok)
          .u64(Math.max(0, r.revision))
          .bool(r.value !== null);
        if (r.value !== null) w.bytes(r.value);
      }
    }
    return w.finish();
  }

  /**
   * Freezes the state: the header (clock, sessions) is encoded now (sessions are few: expiry
   * bounds them), the items are read from the frozen base as the chunks are pulled.
   */
  beginSnapshot(): SnapshotSource {
    if (this.overlay !== undefined) throw new Error('KvStateMachine: a snapshot is already open');
    const header = this.encodeHeader(this.sessions);
    const base = this.base;
    const overlay = new Map<string, Item | null>();
    this.overlay = overlay;
    const chunkBytes = this.chunkBytes;
    let closed = false;
    return {
      *chunks(): Generator<Uint8Array> {
        yield header;
        let w = new BinaryWriter(chunkBytes + 4096);
        let n = 0;
        w.u8(CHUNK_ITEMS);
        const countAt = w.skip(4);
        for (const [k, it] of base) {
          if (closed) throw new Error('KvStateMachine: snapshot source used after close');
          w.str(k).u64(it.revision).bytes(it.value);
          n++;
          if (w.length >= chunkBytes) {
            w.patchU32(countAt, n);
            yield w.finish();
            w = new BinaryWriter(chunkBytes + 4096);
            w.u8(CHUNK_ITEMS);
            w.skip(4);
            n = 0;
          }
        }
        if (n > 0) {
          w.patchU32(countAt, n);
          yield w.finish();
        }
      },
      close: () => {
        if (closed) return;
        closed = true;
        if (this.overlay !== overlay) return; // restored meanwhile: the base was replaced
        for (const [k, it] of overlay) {
          if (it === null) base.delete(k);
          else base.set(k, it);
        }
        this.overlay = undefined;
      },
    };
  }

  async restoreChunks(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    this.reset();
    let first = true;
    for await (const c of chunks) {
      this.restoreChunk(c, first);
      first = false;
    }
  }

  private reset(): void {
    this.base = new Map();
    this.overlay = undefined;
    this.sessions = new Map();
    this.clock = 0;
    this.nextSweep = 0;
    this.count = 0;
    this.bytes = 0;
  }

  private restoreChunk(c: Uint8Array, first: boolean): void {
    const r = new BinaryReader(c, 'kv snapshot chunk');
    const kind = r.u8();
    if (first !== (kind === CHUNK_HEADER)) throw new RaftDecodeError('kv snapshot', `unexpected chunk kind ${kind}`);
    if (kind === CHUNK_HEADER) {
      const format = r.u8();
      if (format !== FORMAT) throw new RaftDecodeError('kv snapshot', `unsupported format ${format}`);
      this.clock = r.u64();
      this.nextSweep = r.u64();
      for (let n = r.u32(); n > 0; n--) {
        const id = r.u64();
        const floor = r.u64();
        const lastSeen = r.u64();
        const results = new Map<number, KvResult>();
        for (let m = r.u32(); m > 0; m--) {
          const seq = r.u64();
          const ok = r.bool();
          const revision = r.u64();
          const value = r.bool() ? ownCopy(r.bytes()) : null;
          results.set(seq, { ok, revision, value });
        }
        this.sessions.set(id, { floor, lastSeen, results });
      }
    } else if (kind === CHUNK_ITEMS) {
      for (let n = r.u32(); n > 0; n--) {
        const k = r.str();
        const revision = r.u64();
        const value = ownCopy(r.bytes());
        this.base.set(k, { revision, value });
        this.count++;
        this.bytes += k.length + value.byteLength;
      }
    } else throw new RaftDecodeError('kv snapshot', `unknown chunk kind ${kind}`);
    r.done();
  }

  /** The whole state as one buffer: the chunks, each prefixed by its u32 length. */
  snapshot(): Uint8Array {
    const src = this.beginSnapshot();
    try {
      const parts: Buffer[] = [];
      for (const c of src.chunks()) {
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32LE(c.byteLength, 0);
        parts.push(len, Buffer.from(c.buffer, c.byteOffset, c.byteLength));
      }
      return Buffer.concat(parts);
    } finally {
      src.close();
    }
  }

  restore(data: Uint8Array): void {
    this.reset();
    const r = new BinaryReader(data, 'kv snapshot');
    let first = true;
    while (r.remaining > 0) {
      this.restoreChunk(r.bytes(), first);
      first = false;
    }
  }
}
