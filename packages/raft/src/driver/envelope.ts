/**
 * Proposal envelopes. Every normal entry proposed through RaftNode carries a small header with a
 * proposal id, so the proposing node can match the applied entry to its waiting promise (also
 * when the proposal was forwarded to the leader). Conf change contexts carry the id and the new
 * member's address.
 */
import { randomInt } from 'node:crypto';
import { BinaryReader, BinaryWriter } from '../codec/binary.js';

const ENVELOPE_V1 = 1;
export const ENVELOPE_HEADER = 9;

/** Allocates proposal ids: a random 20-bit node tag and a 32-bit counter (a safe integer). */
export class IdAllocator {
  private readonly tag = randomInt(1, 1 << 20);
  private counter = randomInt(0, 1 << 30);

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
  } catch {
    return undefined;
  }
}
