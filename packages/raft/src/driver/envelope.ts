/**
 * Proposal envelopes. Every normal entry proposed through RaftNode carries a small header with a
 * proposal id, so the proposing node can match the applied entry to its waiting promise (also
 * when the proposal was forwarded to the leader). Conf change contexts carry the id and the new
 * member's address.
 */
import { BinaryReader, BinaryWriter } from '../codec/binary.js';
import type { ConfChange, Entry } from '../core/types.js';
import { RaftDecodeError } from '../errors.js';

const ENVELOPE_V1 = 1;
export const ENVELOPE_HEADER = 9;

/** Allocates proposal ids: a random 20-bit node tag and a 32-bit counter (a safe integer). */
export class IdAllocator {
  private readonly tag: number;
  private counter: number;

  /** `random`: uniform in [0, 1) (Math.random, or the simulator's seeded source). */
  constructor(random: () => number) {
    this.tag = 1 + Math.floor(random() * ((1 << 20) - 1));
    this.counter = Math.floor(random() * (1 << 30));
  }

  next(): number {
    this.counter = (this.counter + 1) >>> 0;
    return this.tag * 0x100000000 + this.counter;
  }
}

export function wrapProposal(id: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(ENVELOPE_HEADER + payload.byteLength);
  out[0] = ENVELOPE_V1;
  out.writeUInt32LE(id % 0x100000000, 1);
  out.writeUInt32LE(Math.floor(id / 0x100000000), 5);
  out.set(payload, ENVELOPE_HEADER);
  return out;
}

/** The proposal id and payload of an entry's data; undefined for the leader's empty entry. */
export function unwrapProposal(data: Uint8Array): { id: number; payload: Uint8Array } | undefined {
  if (data.byteLength < ENVELOPE_HEADER || data[0] !== ENVELOPE_V1) return undefined;
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const id = b.readUInt32LE(5) * 0x100000000 + b.readUInt32LE(1);
  return { id, payload: b.subarray(ENVELOPE_HEADER) };
}

export function encodeConfContext(id: number, address: string): Buffer {
  return new BinaryWriter(32).u64(id).str(address).finish();
}

export function decodeConfContext(ctx: Uint8Array): { id: number; address: string } | undefined {
  if (ctx.byteLength === 0) return undefined;
  try {
    const r = new BinaryReader(ctx, 'conf change context');
    return { id: r.u64(), address: r.str() };
  } catch (err) {
    // A context not written by RaftNode (another writer of conf changes): no waiter to settle.
    if (err instanceof RaftDecodeError) return undefined;
    throw err;
  }
}

/** The proposal id an entry carries (normal: envelope; conf change: context), if any. */
export function proposalIdOf(e: Entry, decodeConfChange: (data: Uint8Array) => ConfChange): number | undefined {
  if (e.type === 'normal') return unwrapProposal(e.data)?.id;
  let context: Uint8Array;
  try {
    context = decodeConfChange(e.data).context;
  } catch (err) {
    if (err instanceof RaftDecodeError) return undefined;
    throw err;
  }
  return decodeConfContext(context)?.id;
}
