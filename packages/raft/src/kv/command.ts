/**
 * KV commands as replicated in the log, and their results. Writes carry a client session
 * (clientId, seq, firstUnacked) so that retries apply at most once (thesis §6.3).
 */
import { BinaryReader, BinaryWriter } from '../codec/binary.js';
import { RaftDecodeError } from '../errors.js';

export type KvWrite =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'cas'; readonly key: string; readonly expected: Uint8Array | null; readonly value: Uint8Array };

export interface KvSession {
  readonly clientId: number;
  readonly seq: number;
  /** The lowest seq this client still waits for: results below it can be forgotten. */
  readonly firstUnacked: number;
}

/**
 * A write as logged. `ts` is the proposing leader's wall clock (ms): the state machine's clock is
 * the highest ts applied so far, so session expiry depends on the log only and every replica
 * expires the same sessions at the same entry.
 */
export type KvCommand = KvWrite & KvSession & { readonly ts?: number };

/** Outcome of a write (or a read). `revision` is the log index of the key's last change. */
export interface KvResult {
  readonly ok: boolean;
  readonly revision: number;
  /** get: the value; cas failure: the current value; null = absent. */
  readonly value: Uint8Array | null;
}

const OPS = { put: 1, delete: 2, cas: 3 } as const;

export function encodeCommand(c: KvCommand): Buffer {
  const w = new BinaryWriter(48 + c.key.length + (c.op === 'delete' ? 0 : c.value.byteLength));
  w.u8(OPS[c.op])
    .u64(c.clientId)
    .u64(c.seq)
    .u64(c.firstUnacked)
    .u64(c.ts ?? 0)
    .str(c.key);
  if (c.op === 'put') w.bytes(c.value);
  else if (c.op === 'cas') {
    w.bool(c.expected !== null);
    if (c.expected !== null) w.bytes(c.expected);
    w.bytes(c.value);
  }
  return w.finish();
}

/** Decodes a logged command; any malformed input throws RaftDecodeError. */
export function decodeCommand(b: Uint8Array): KvCommand {
  const r = new BinaryReader(b, 'kv command');
  const op = r.u8();
  const clientId = r.u64();
  const seq = r.u64();
  const firstUnacked = r.u64();
  const ts = r.u64();
  const key = r.str();
  let c: KvCommand;
  if (op === OPS.put) c = { op: 'put', key, value: r.bytes(), clientId, seq, firstUnacked, ts };
  else if (op === OPS.delete) c = { op: 'delete', key, clientId, seq, firstUnacked, ts };
  else if (op === OPS.cas) {
    const expected = r.bool() ? r.bytes() : null;
    c = { op: 'cas', key, expected, value: r.bytes(), clientId, seq, firstUnacked, ts };
  } else throw new RaftDecodeError('kv command', `unknown kv op ${op}`);
  r.done();
  return c;
}
