/**
 * The flow-control window of one follower in Replicate state: the last index of every MsgApp
 * sent and not yet acknowledged, as a ring buffer, bounded by a count and optionally by bytes.
 */
export class Inflights {
  private readonly size: number;
  private readonly maxBytes: number;
  private readonly idx: number[];
  private readonly bytes: number[];
  private start = 0;
  count = 0;
  totalBytes = 0;

  constructor(size: number, maxBytes = 0) {
    this.size = size;
    this.maxBytes = maxBytes;
    this.idx = new Array<number>(size).fill(0);
    this.bytes = new Array<number>(size).fill(0);
  }

  clone(): Inflights {
    const c = new Inflights(this.size, this.maxBytes);
    for (let k = 0; k < this.count; k++)
      c.add(this.idx[(this.start + k) % this.size]!, this.bytes[(this.start + k) % this.size]!);
    return c;
  }

  /** Records a MsgApp whose last entry is `index`, carrying `bytes` of entries. */
  add(index: number, bytes: number): void {
    if (this.count >= this.size) return; // callers check full() first; never overflow the ring
    const at = (this.start + this.count) % this.size;
    this.idx[at] = index;
    this.bytes[at] = bytes;
    this.count++;
    this.totalBytes += bytes;
  }

  /** Frees every in-flight message whose last index is <= `to` (they were acknowledged). */
  freeLE(to: number): void {
    while (this.count > 0 && this.idx[this.start]! <= to) {
      this.totalBytes -= this.bytes[this.start]!;
      this.start = (this.start + 1) % this.size;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  full(): boolean {
    return this.count >= this.size || (this.maxBytes > 0 && this.totalBytes >= this.maxBytes);
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
    this.totalBytes = 0;
  }
}
