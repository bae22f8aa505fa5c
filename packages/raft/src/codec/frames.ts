/**
 * Length-prefixed framing over byte streams: `u32 length | payload`. The decoder accumulates
 * chunks without re-copying everything on each read and hands out whole frames.
 */
import { RaftDecodeError } from '../errors.js';

export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

/** Prefixes `payload` with its u32 length (one buffer, ready for socket.write). */
export function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.byteLength);
  out.writeUInt32LE(payload.byteLength, 0);
  out.set(payload, 4);
  return out;
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly onFrame: (payload: Buffer) => void,
    private readonly maxFrame = DEFAULT_MAX_FRAME,
  ) {}

  /** Feeds bytes; calls onFrame for each complete frame. Throws RaftDecodeError on an oversized frame. */
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      let head = this.chunks[0]!;
      if (head.length < 4) {
        head = Buffer.concat(this.chunks);
        this.chunks = [head];
      }
      const len = head.readUInt32LE(0);
      if (len > this.maxFrame) throw new RaftDecodeError('frame', `frame of ${len} bytes exceeds ${this.maxFrame}`);
      if (this.buffered < 4 + len) return;
      if (head.length < 4 + len) {
        head = Buffer.concat(this.chunks);
        this.chunks = [head];
      }
      const payload = head.subarray(4, 4 + len);
      const rest = head.subarray(4 + len);
      if (rest.length > 0) this.chunks[0] = rest;
      else this.chunks.shift();
      this.buffered -= 4 + len;
      this.onFrame(payload);
    }
  }
}
