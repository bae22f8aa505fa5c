/**
 * The replicated KV state machine: values with a per-key revision (the log index of the last
 * change) and client sessions for at-most-once writes. Deterministic: everything comes from the
 * command and the entry index.
 */
import { BinaryReader, BinaryWriter } from '../codec/binary.js';
import type { AppliedEntry, StateMachine } from '../driver/raft-node.js';
import { decodeCommand, type KvCommand, type KvResult } from './command.js';

interface Item {
  value: Buffer;
  revision: number;
}

interface Session {
  /** Results of seqs >= floor, kept for retries. */
  results: Map<number, KvResult>;
  floor: number;
}

const STALE: KvResult = Object.freeze({ ok: false, revision: -1, value: null });

export class KvStateMachine implements StateMachine {
  private items = new Map<string, Item>();
  private sessions = new Map<number, Session>();

  get(key: string): KvResult {
    const it = this.items.get(key);
    return it === undefined
      ? { ok: true, revision: 0, value: null }
      : { ok: true, revision: it.revision, value: it.value };
  }

  size(): number {
    return this.items.size;
  }

  apply(entries: readonly AppliedEntry[]): KvResult[] {
    const out: KvResult[] = [];
    for (const e of entries) {
      let cmd: KvCommand;
      try {
        cmd = decodeCommand(e.data);
      } catch {
        out.push(STALE);
        continue;
      }
      out.push(this.applyOne(cmd, e.index));
    }
    return out;
  }

  private applyOne(c: KvCommand, index: number): KvResult {
    let s = this.sessions.get(c.clientId);
    if (s === undefined) this.sessions.set(c.clientId, (s = { results: new Map(), floor: 0 }));
    if (c.firstUnacked > s.floor) {
      s.floor = c.firstUnacked;
      for (const seq of s.results.keys()) if (seq < s.floor) s.results.delete(seq);
    }
    const cached = s.results.get(c.seq);
    if (cached !== undefined) return cached;
    if (c.seq < s.floor) return STALE;
    let r: KvResult;
    const cur = this.items.get(c.key);
    switch (c.op) {
      case 'put':
        this.items.set(c.key, { value: Buffer.from(c.value), revision: index });
        r = { ok: true, revision: index, value: null };
        break;
      case 'delete':
        this.items.delete(c.key);
        r = { ok: cur !== undefined, revision: index, value: null };
        break;
      case 'cas': {
        const matches = c.expected === null ? cur === undefined : cur !== undefined && cur.value.equals(c.expected);
        if (matches) {
          this.items.set(c.key, { value: Buffer.from(c.value), revision: index });
          r = { ok: true, revision: index, value: null };
        } else r = { ok: false, revision: cur?.revision ?? 0, value: cur?.value ?? null };
        break;
      }
    }
    s.results.set(c.seq, r);
    return r;
  }

  snapshot(): Uint8Array {
    const w = new BinaryWriter(1024);
    w.u32(this.items.size);
    for (const [k, it] of this.items) w.str(k).u64(it.revision).bytes(it.value);
    w.u32(this.sessions.size);
    for (const [id, s] of this.sessions) {
      w.u64(id).u64(s.floor).u32(s.results.size);
      for (const [seq, r] of s.results) {
        w.u64(seq)
          .bool(r.ok)
          .u64(Math.max(0, r.revision))
          .bool(r.value !== null);
        if (r.value !== null) w.bytes(r.value);
      }
    }
    return Buffer.from(w.finish());
  }

  restore(data: Uint8Array): void {
    this.items = new Map();
    this.sessions = new Map();
    if (data.byteLength === 0) return;
    const r = new BinaryReader(data, 'kv snapshot');
    for (let n = r.u32(); n > 0; n--) {
      const k = r.str();
      const revision = r.u64();
      this.items.set(k, { revision, value: Buffer.from(r.bytes()) });
    }
    for (let n = r.u32(); n > 0; n--) {
      const id = r.u64();
      const floor = r.u64();
      const results = new Map<number, KvResult>();
      for (let m = r.u32(); m > 0; m--) {
        const seq = r.u64();
        const ok = r.bool();
        const revision = r.u64();
        const value = r.bool() ? Buffer.from(r.bytes()) : null;
        results.set(seq, { ok, revision, value });
      }
      this.sessions.set(id, { floor, results });
    }
    r.done();
  }
}
