/**
 * A binary min-heap over an array with a caller's order. The scheduler keeps one per branch of
 * its placement tree: the top is the candidate that gets the next task; after a placement the
 * top's key only grows, so `siftTop()` restores the order in O(log n).
 */
export class Heap<T> {
  private readonly items: T[];

  constructor(
    items: Iterable<T>,
    private readonly less: (a: T, b: T) => boolean,
  ) {
    this.items = [...items];
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  pop(): T | undefined {
    const top = this.items[0];
    const last = this.items.pop();
    if (this.items.length > 0 && last !== undefined) {
      this.items[0] = last;
      this.down(0);
    }
    return top;
  }

  /** Restores the order after the top's key grew. */
  siftTop(): void {
    this.down(0);
  }

  private down(i: number): void {
    const a = this.items;
    const n = a.length;
    const x = a[i];
    if (x === undefined) return;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.less(a[r] as T, a[l] as T)) c = r;
      if (!this.less(a[c] as T, x)) break;
      a[i] = a[c] as T;
      i = c;
    }
    a[i] = x;
  }
}
