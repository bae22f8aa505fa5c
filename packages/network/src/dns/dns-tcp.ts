/**
 * DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message is preceded by its length in two bytes,
 * and one connection may carry several queries. Here: splitting a byte stream into messages,
 * framing a message, and asking an upstream resolver one query over TCP (for queries that came
 * over TCP, or whose UDP answer was truncated). Pure apart from `askOverTcp`.
 */
import { connect } from 'node:net';
import { messageId } from './dns-message.js';

/** The largest DNS message (the length prefix is 16 bits). */
export const TCP_MESSAGE_MAX = 65535;

/** Frames a message for TCP: its length in two bytes, then the message. */
export function frame(msg: Uint8Array): Buffer {
  if (msg.length > TCP_MESSAGE_MAX) throw new RangeError(`DNS message of ${msg.length} bytes is too long for TCP`);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length, 0);
  return Buffer.concat([len, msg]);
}

/** Splits what arrives on a TCP stream into whole messages, whatever the chunking. */
export class TcpFramer {
  private pending: Buffer = Buffer.alloc(0);

  /** Adds a chunk; the messages it completes, in order. */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (this.pending.length >= 2) {
      const len = this.pending.readUInt16BE(0);
      if (this.pending.length < 2 + len) break;
      out.push(this.pending.subarray(2, 2 + len));
      this.pending = this.pending.subarray(2 + len);
    }
    return out;
  }

  /** Bytes of an unfinished message. */
  get buffered(): number {
    return this.pending.length;
  }
}

export interface TcpUpstream {
  address: string;
  port: number;
}

/**
 * Sends `msg` to an upstream over TCP and resolves to the reply with the same id, or undefined
 * when it does not come within `timeoutMs` or the connection fails. `track` receives a function
 * that aborts the exchange (the server's close).
 */
export function askOverTcp(
  up: TcpUpstream,
  msg: Buffer,
  timeoutMs: number,
  track?: (abort: () => void) => () => void,
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const id = messageId(msg);
    const framer = new TcpFramer();
    const s = connect({ host: up.address, port: up.port });
    let settled = false;
    const done = (reply: Buffer | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      untrack?.();
      s.destroy();
      resolve(reply);
    };
    const untrack = track?.(() => done(undefined));
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on('error', () => done(undefined));
    s.on('close', () => done(undefined));
    s.on('data', (chunk: Buffer) => {
      for (const reply of framer.push(chunk)) if (messageId(reply) === id) return done(reply);
    });
    s.write(frame(msg));
  });
}
