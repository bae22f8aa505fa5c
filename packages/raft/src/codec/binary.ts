/**
 * Little-endian binary writer and reader used by every raft codec (messages, entries, WAL and
 * snapshot records, KV commands). Numbers are JS safe integers written as u32 low + u32 high;
 * strings are length-prefixed UTF-8. No BigInt on the hot path.
 */
import { RaftDecodeError } from '../errors.js';

const MAX_SAFE_HIGH = 0x1fffff; // 2^53 = high word < 2^21

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** A growable little-endian byte writer. */
export class BinaryWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** A non-negative safe integer as 8 bytes. */
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a non-negative safe integer: ${v}`);
    this.ensure(8);
    this.buf.writeUInt32LE(v % 0x100000000, this.pos);
    this.buf.writeUInt32LE(Math.floor(v / 0x100000000), this.pos + 4);
    this.pos += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** u32 length + bytes. */
  bytes(v: Uint8Array): this {
    this.u32(v.byteLength);
    return this.raw(v);
  }

  /** Bytes without a length. */
  raw(v: Uint8Array): this {
    this.ensure(v.byteLength);
    this.buf.set(v, this.pos);
    this.pos += v.byteLength;
    return this;
  }

  /** u16 length + UTF-8. */
  str(v: string): this {
    const b = textEncoder.encode(v);
    if (b.byteLength > 0xffff) throw new RangeError('string longer than 65535 bytes');
    this.u16(b.byteLength);
    return this.raw(b);
  }

  /** Reserves `n` bytes and returns their offset (for lengths patched later). */
  skip(n: number): number {
    this.ensure(n);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  patchU32(at: number, v: number): void {
    this.buf.writeUInt32LE(v >>> 0, at);
  }

  /** The written bytes (a view: copy if the writer is reused). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Reads what BinaryWriter wrote; every read is bounds-checked and throws RaftDecodeError. */
export class BinaryReader {
  private pos: number;
  private readonly end: number;
  private readonly buf: Buffer;

  constructor(
    data: Uint8Array,
    private readonly what: string,
    start = 0,
    end = data.byteLength,
  ) {
    this.buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) {
      throw new RaftDecodeError(this.what, `truncated at byte ${this.pos} (need ${n}, have ${this.end - this.pos})`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    if (hi > MAX_SAFE_HIGH) throw new RaftDecodeError(this.what, `integer at byte ${this.pos} exceeds 2^53`);
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }

  bool(): boolean {
    const v = this.u8();
    if (v > 1) throw new RaftDecodeError(this.what, `bad boolean ${v} at byte ${this.pos - 1}`);
    return v === 1;
  }

  /** u32 length + bytes; returns a view into the input (no copy). */
  bytes(): Buffer {
    const n = this.u32();
    return this.raw(n);
  }

  raw(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  str(): string {
    const n = this.u16();
    const b = this.raw(n);
    try {
      return textDecoder.decode(b);
    } catch (err) {
      throw new RaftDecodeError(this.what, `invalid UTF-8 at byte ${this.pos - n}: ${String(err)}`);
    }
  }

  /** Throws unless every byte was consumed. */
  done(): void {
    if (this.pos !== this.end) {
      throw new RaftDecodeError(this.what, `${this.end - this.pos} trailing bytes at byte ${this.pos}`);
    }
  }
}
