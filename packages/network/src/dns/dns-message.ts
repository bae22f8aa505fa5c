/**
 * DNS messages (RFC 1035) as the embedded server needs them: parsing a query (header, one
 * question, an EDNS OPT record's UDP size), building a response with A and PTR answers (names
 * compressed against the question), and parsing a response (for forwarding checks and tests).
 * Pure.
 */
import { DnsFormatError } from '../errors.js';

export const RR_TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;
export const RR_CLASS_IN = 1;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** The classic UDP message limit without EDNS. */
export const UDP_LIMIT = 512;
const EDNS_MAX = 4096;
const HEADER = 12;

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;

export interface DnsQuestion {
  /** Lower case, without the trailing dot. */
  name: string;
  type: number;
  class: number;
}

export interface DnsQuery {
  id: number;
  opcode: number;
  rd: boolean;
  question: DnsQuestion;
  /** The UDP payload size the client accepts (512 without EDNS). */
  udpSize: number;
}

export interface DnsAnswer {
  name: string;
  type: number;
  ttl: number;
  /** A: the IPv4 address; PTR: the name pointed to. */
  data: string;
}

export interface DnsResponse {
  id: number;
  rcode: number;
  truncated: boolean;
  authoritative: boolean;
  question?: DnsQuestion;
  answers: DnsAnswer[];
}

/** The 16-bit id of a message, or undefined when it is shorter than a header. */
export function messageId(buf: Uint8Array): number | undefined {
  return buf.length >= 2 ? ((buf[0] ?? 0) << 8) | (buf[1] ?? 0) : undefined;
}

/** The RCODE of a message (the low 4 bits of its fourth byte), undefined when it is too short. */
export function responseCode(buf: Uint8Array): number | undefined {
  return buf.length >= 4 ? (buf[3] ?? 0) & 0x0f : undefined;
}

class Reader {
  off = 0;
  constructor(readonly buf: Buffer) {}

  need(n: number): void {
    if (this.off + n > this.buf.length) throw new DnsFormatError(`message ends early (offset ${this.off}, need ${n})`);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  /** A possibly compressed name; moves past it. */
  name(): string {
    const labels: string[] = [];
    let off = this.off;
    let jumped = false;
    for (let hops = 0; ; hops++) {
      if (hops > 127) throw new DnsFormatError('name compression loop');
      if (off >= this.buf.length) throw new DnsFormatError('name runs past the end');
      const len = this.buf[off] ?? 0;
      if ((len & 0xc0) === 0xc0) {
        if (off + 1 >= this.buf.length) throw new DnsFormatError('truncated name pointer');
        const target = ((len & 0x3f) << 8) | (this.buf[off + 1] ?? 0);
        if (!jumped) this.off = off + 2;
        jumped = true;
        off = target;
        continue;
      }
      if ((len & 0xc0) !== 0) throw new DnsFormatError(`bad label length byte 0x${len.toString(16)}`);
      if (len === 0) {
        if (!jumped) this.off = off + 1;
        break;
      }
      if (off + 1 + len > this.buf.length) throw new DnsFormatError('label runs past the end');
      labels.push(this.buf.toString('latin1', off + 1, off + 1 + len));
      off += 1 + len;
    }
    const name = labels.join('.').toLowerCase();
    if (name.length > 253) throw new DnsFormatError('name longer than 253 characters');
    return name;
  }
  skip(n: number): void {
    this.need(n);
    this.off += n;
  }
}

/** Parses a query: exactly one question; the OPT record, if any, gives the UDP size. */
export function parseQuery(buf: Buffer): DnsQuery {
  if (buf.length < HEADER) throw new DnsFormatError(`shorter than a header (${buf.length} bytes)`);
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  if (flags & QR) throw new DnsFormatError('a response, not a query');
  const qd = r.u16();
  const an = r.u16();
  const ns = r.u16();
  const ar = r.u16();
  if (qd !== 1) throw new DnsFormatError(`${qd} questions (one expected)`);
  const question = { name: r.name(), type: r.u16(), class: r.u16() };
  let udpSize = UDP_LIMIT;
  for (let i = 0; i < an + ns + ar; i++) {
    r.name();
    const type = r.u16();
    const cls = r.u16();
    r.u32();
    const len = r.u16();
    r.skip(len);
    if (type === RR_TYPE.OPT && i >= an + ns) udpSize = Math.min(Math.max(cls, UDP_LIMIT), EDNS_MAX);
  }
  return { id, opcode: (flags >> 11) & 0xf, rd: (flags & RD) !== 0, question, udpSize };
}

function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name === '' ? [] : name.split('.')) {
    const b = Buffer.from(label, 'latin1');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function header(id: number, flags: number, qd: number, an: number): Buffer {
  const h = Buffer.alloc(HEADER);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  return h;
}

/** A query for `name` (for tests and tools). */
export function encodeQuery(id: number, name: string, type: number, rd = true): Buffer {
  const q = Buffer.alloc(4);
  q.writeUInt16BE(type, 0);
  q.writeUInt16BE(RR_CLASS_IN, 2);
  return Buffer.concat([header(id, rd ? RD : 0, 1, 0), encodeName(name), q]);
}

function encodeAnswer(a: DnsAnswer, questionName: string): Buffer {
  // The owner name is the question's in every answer we give: a pointer to offset 12.
  const owner = a.name === questionName ? Buffer.from([0xc0, HEADER]) : encodeName(a.name);
  let rdata: Buffer;
  if (a.type === RR_TYPE.A) rdata = Buffer.from(a.data.split('.').map(Number));
  else rdata = encodeName(a.data);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(a.type, 0);
  fixed.writeUInt16BE(RR_CLASS_IN, 2);
  fixed.writeUInt32BE(a.ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner, fixed, rdata]);
}

/**
 * A response to `q`: the question echoed, `answers` as many as fit in the client's UDP size (the
 * TC bit set when some did not), recursion available, authoritative when `authoritative`.
 */
export function encodeResponse(
  q: DnsQuery,
  rcode: number,
  answers: readonly DnsAnswer[],
  authoritative: boolean,
): Buffer {
  const qfixed = Buffer.alloc(4);
  qfixed.writeUInt16BE(q.question.type, 0);
  qfixed.writeUInt16BE(q.question.class, 2);
  const question = Buffer.concat([encodeName(q.question.name), qfixed]);
  const parts: Buffer[] = [];
  let size = HEADER + question.length;
  let truncated = false;
  for (const a of answers) {
    const b = encodeAnswer(a, q.question.name);
    if (size + b.length > q.udpSize) {
      truncated = true;
      break;
    }
    parts.push(b);
    size += b.length;
  }
  const flags =
    QR |
    ((q.opcode & 0xf) << 11) |
    (authoritative ? AA : 0) |
    (truncated ? TC : 0) |
    (q.rd ? RD : 0) |
    RA |
    (rcode & 0xf);
  return Buffer.concat([header(q.id, flags, 1, parts.length), question, ...parts]);
}

/** An error response echoing what could be read of a bad query (at least its id). */
export function encodeError(buf: Buffer, rcode: number): Buffer | undefined {
  const id = messageId(buf);
  if (id === undefined) return undefined;
  return header(id, QR | RA | (rcode & 0xf), 0, 0);
}

/** Parses a response: header, question and the A/PTR answers (other types kept as raw hex). */
export function parseResponse(buf: Buffer): DnsResponse {
  if (buf.length < HEADER) throw new DnsFormatError(`shorter than a header (${buf.length} bytes)`);
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  if (!(flags & QR)) throw new DnsFormatError('a query, not a response');
  const qd = r.u16();
  const an = r.u16();
  r.u16();
  r.u16();
  let question: DnsQuestion | undefined;
  for (let i = 0; i < qd; i++) question = { name: r.name(), type: r.u16(), class: r.u16() };
  const answers: DnsAnswer[] = [];
  for (let i = 0; i < an; i++) {
    const name = r.name();
    const type = r.u16();
    r.u16();
    const ttl = r.u32();
    const len = r.u16();
    const start = r.off;
    r.need(len);
    let data: string;
    if (type === RR_TYPE.A && len === 4) data = [...buf.subarray(start, start + 4)].join('.');
    else if (type === RR_TYPE.PTR || type === RR_TYPE.CNAME) data = r.name();
    else data = buf.subarray(start, start + len).toString('hex');
    r.off = start + len;
    answers.push({ name, type, ttl, data });
  }
  return {
    id,
    rcode: flags & 0xf,
    truncated: (flags & TC) !== 0,
    authoritative: (flags & AA) !== 0,
    ...(question ? { question } : {}),
    answers,
  };
}
