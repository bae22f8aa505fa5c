/**
 * WAL record framing. A record starts at an 8-byte-aligned offset:
 *
 *   u32 body length | u8 type | u8 pad length | u16 reserved (0) | u32 CRC | body | zero pad to 8
 *
 * The 8-byte header cannot straddle a sector. The CRC is CRC-32 (zlib) of type‖body, seeded with
 * the previous record's CRC, so stale or misplaced data fails the check. An all-zero header marks
 * the end of the written part of a (preallocated) segment.
 */
import { crc32 } from 'node:zlib';

export const RECORD_HEADER = 12;
/** Largest body accepted when reading (a bigger length is damage). */
export const MAX_RECORD_BODY = 256 * 1024 * 1024;

export const RecordType = {
  segmentHeader: 1,
  entry: 2,
  hardState: 3,
  snapshotMarker: 4,
} as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

export function isRecordType(t: number): t is RecordTypeCode {
  return t >= 1 && t <= 4;
}

/**
 * Seam for encryption at rest: record bodies (entries, hard states, snapshot markers; not the
 * segment header) and snapshot data pass through `seal` on write and `open` on read. The default
 * is the identity. `open` throws when the bytes do not authenticate.
 */
export interface RecordCipher {
  seal(plain: Uint8Array): Uint8Array;
  open(sealed: Uint8Array): Uint8Array;
}

export const identityCipher: RecordCipher = {
  seal: (b) => b,
  open: (b) => b,
};

export function align8(n: number): number {
  return (n + 7) & ~7;
}

export function recordSize(bodyLength: number): number {
  return align8(RECORD_HEADER + bodyLength);
}

const typeByte = new Uint8Array(1);

export function recordCrc(type: number, body: Uint8Array, seed: number): number {
  typeByte[0] = type;
  return crc32(body, crc32(typeByte, seed));
}

/** Writes one framed record at `at` in `out` (zeroing the pad); returns its CRC. */
export function writeRecord(out: Buffer, at: number, type: RecordTypeCode, body: Uint8Array, seed: number): number {
  const crc = recordCrc(type, body, seed);
  out.writeUInt32LE(body.byteLength, at);
  out[at + 4] = type;
  out[at + 5] = recordSize(body.byteLength) - RECORD_HEADER - body.byteLength;
  out.writeUInt16LE(0, at + 6);
  out.writeUInt32LE(crc, at + 8);
  out.set(body, at + RECORD_HEADER);
  const end = at + recordSize(body.byteLength);
  out.fill(0, at + RECORD_HEADER + body.byteLength, end);
  return crc;
}

export type ParsedRecord =
  | { kind: 'ok'; type: RecordTypeCode; body: Buffer; crc: number; next: number }
  | { kind: 'end' }
  | { kind: 'bad'; reason: string };

/** Parses the record at `at` (8-aligned) in `buf` against the chain `seed`. */
export function parseRecord(buf: Buffer, at: number, seed: number): ParsedRecord {
  if (at + 8 > buf.length) return { kind: 'end' };
  const len = buf.readUInt32LE(at);
  const type = buf[at + 4]!;
  const reserved = buf.readUInt16LE(at + 6);
  if (len === 0 && type === 0 && buf[at + 5] === 0 && reserved === 0) return { kind: 'end' };
  if (!isRecordType(type)) return { kind: 'bad', reason: `unknown record type ${type}` };
  if (reserved !== 0) return { kind: 'bad', reason: 'non-zero reserved header bits' };
  if (buf[at + 5] !== recordSize(len) - RECORD_HEADER - len) return { kind: 'bad', reason: 'bad pad length' };
  if (len > MAX_RECORD_BODY || at + RECORD_HEADER + len > buf.length) {
    return { kind: 'bad', reason: `record length ${len} runs past the end of the file` };
  }
  const body = buf.subarray(at + RECORD_HEADER, at + RECORD_HEADER + len);
  const stored = buf.readUInt32LE(at + 8);
  const crc = recordCrc(type, body, seed);
  if (crc !== stored) return { kind: 'bad', reason: 'checksum mismatch' };
  return { kind: 'ok', type, body, crc, next: at + recordSize(len) };
}

/**
 * After a bad record at `bad` in the last segment: does any valid record follow it? A torn tail
 * has none; a damaged record in the middle does (its successor chains from the bad record's
 * stored CRC, or from the CRC its body should have had). The scan stops at a long zero run
 * (the preallocated, never-written part).
 */
export function validRecordFollows(buf: Buffer, bad: number, seed: number): number | undefined {
  const seeds = new Set<number>();
  if (bad + RECORD_HEADER <= buf.length) {
    seeds.add(buf.readUInt32LE(bad + 8));
    const len = buf.readUInt32LE(bad);
    const type = buf[bad + 4]!;
    if (bad + RECORD_HEADER + len <= buf.length) {
      seeds.add(recordCrc(type, buf.subarray(bad + RECORD_HEADER, bad + RECORD_HEADER + len), seed));
    }
  }
  let zeros = 0;
  for (let y = bad + 8; y + RECORD_HEADER <= buf.length; y += 8) {
    const w0 = buf.readUInt32LE(y);
    const w1 = buf.readUInt32LE(y + 4);
    if (w0 === 0 && w1 === 0) {
      zeros += 8;
      if (zeros >= 4096) return undefined;
      continue;
    }
    zeros = 0;
    for (const s of seeds) {
      const r = parseRecord(buf, y, s);
      if (r.kind === 'ok') return y;
    }
  }
  return undefined;
}
