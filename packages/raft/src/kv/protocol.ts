/**
 * The KV client protocol: length-prefixed frames over TCP, many requests in flight per
 * connection, matched by request id.
 *
 * Request:  u32 reqId | u8 op (1 put, 2 delete, 3 cas, 4 get) | u64 clientId | u64 seq |
 *           u64 firstUnacked | str key | bool hasValue [bytes value] | bool hasExpected [bytes]
 * Response: u32 reqId | u8 status (0 ok, 1 not leader, 2 retry, 3 error) | ...
 *           ok: bool ok | u64 revision | bool hasValue [bytes value]
 *           not leader: str leader client address ('' if unknown); retry/error: str message
 */
import { BinaryReader, BinaryWriter } from '../codec/binary.js';
import type { KvResult } from './command.js';

export type KvOp = 'put' | 'delete' | 'cas' | 'get';
const OP_CODES: Record<KvOp, number> = { put: 1, delete: 2, cas: 3, get: 4 };
const OP_NAMES: KvOp[] = ['put', 'put', 'delete', 'cas', 'get'];

export interface KvRequest {
  readonly reqId: number;
  readonly op: KvOp;
  readonly clientId: number;
  readonly seq: number;
  readonly firstUnacked: number;
  readonly key: string;
  readonly value: Uint8Array | null;
  /** cas: undefined = not a cas; null = expect absent. */
  readonly expected: Uint8Array | null | undefined;
}

export type KvResponse =
  | { readonly reqId: number; readonly status: 'ok'; readonly result: KvResult }
  | { readonly reqId: number; readonly status: 'notLeader'; readonly leader: string }
  | { readonly reqId: number; readonly status: 'retry' | 'error'; readonly message: string };

/** Encodes a request as a complete frame (length prefix included). */
export function encodeRequest(q: KvRequest): Buffer {
  const w = new BinaryWriter(64 + q.key.length + (q.value?.byteLength ?? 0) + (q.expected?.byteLength ?? 0));
  const at = w.skip(4);
  w.u32(q.reqId).u8(OP_CODES[q.op]).u64(q.clientId).u64(q.seq).u64(q.firstUnacked).str(q.key);
  w.bool(q.value !== null);
  if (q.value !== null) w.bytes(q.value);
  w.bool(q.expected !== undefined);
  if (q.expected !== undefined) {
    w.bool(q.expected !== null);
    if (q.expected !== null) w.bytes(q.expected);
  }
  w.patchU32(at, w.length - 4);
  return Buffer.from(w.finish());
}

export function decodeRequest(b: Buffer): KvRequest {
  const r = new BinaryReader(b, 'kv request');
  const reqId = r.u32();
  const op = OP_NAMES[r.u8()];
  if (op === undefined) throw new RangeError('unknown kv request op');
  const clientId = r.u64();
  const seq = r.u64();
  const firstUnacked = r.u64();
  const key = r.str();
  const value = r.bool() ? r.bytes() : null;
  const expected = r.bool() ? (r.bool() ? r.bytes() : null) : undefined;
  r.done();
  return { reqId, op, clientId, seq, firstUnacked, key, value, expected };
}

export function encodeResponse(w: BinaryWriter, p: KvResponse): void {
  const at = w.skip(4);
  const start = w.length;
  w.u32(p.reqId);
  switch (p.status) {
    case 'ok':
      w.u8(0)
        .bool(p.result.ok)
        .u64(Math.max(0, p.result.revision))
        .bool(p.result.value !== null);
      if (p.result.value !== null) w.bytes(p.result.value);
      break;
    case 'notLeader':
      w.u8(1).str(p.leader);
      break;
    case 'retry':
      w.u8(2).str(p.message);
      break;
    case 'error':
      w.u8(3).str(p.message);
      break;
  }
  w.patchU32(at, w.length - start);
}

export function decodeResponse(b: Buffer): KvResponse {
  const r = new BinaryReader(b, 'kv response');
  const reqId = r.u32();
  const s = r.u8();
  if (s === 0) {
    const ok = r.bool();
    const revision = r.u64();
    const value = r.bool() ? Buffer.from(r.bytes()) : null;
    return { reqId, status: 'ok', result: { ok, revision, value } };
  }
  if (s === 1) return { reqId, status: 'notLeader', leader: r.str() };
  return { reqId, status: s === 2 ? 'retry' : 'error', message: r.str() };
}
