/**
 * The simulated network: per-message loss, duplication and random delay (hence reordering), and
 * directed link cuts for symmetric, one-way, bridge and isolated-leader partitions.
 */
import type { Message, NodeId } from '../core/types.js';
import type { EventQueue } from './event-queue.js';
import type { Prng } from './prng.js';

export class SimNet {
  loss = 0;
  dup = 0;
  delayMin = 0.5;
  delayMax = 3;
  /** Probability of a long delay (ten times delayMax): strong reordering. */
  longTail = 0;
  private readonly blocked = new Set<string>();
  sent = 0;
  dropped = 0;

  constructor(
    private readonly q: EventQueue,
    private readonly rng: Prng,
    private readonly deliver: (m: Message) => void,
    /** Transport feedback to the sender: a snapshot was delivered or lost, a peer is unreachable. */
    private readonly feedback: (m: Message, delivered: boolean, cut: boolean) => void = () => {},
  ) {}

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  send(m: Message): void {
    this.sent++;
    const cut = this.isBlocked(m.from, m.to);
    if (cut || this.rng.chance(this.loss)) {
      this.dropped++;
      this.feedback(m, false, cut);
      return;
    }
    const copies = this.rng.chance(this.dup) ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      let d = this.delayMin + this.rng.float() * (this.delayMax - this.delayMin);
      if (this.rng.chance(this.longTail)) d *= 10;
      this.q.after(d, 'deliver', () => {
        // A link cut while the message was in flight loses it too.
        if (this.isBlocked(m.from, m.to)) {
          this.dropped++;
          if (k === 0) this.feedback(m, false, true);
          return;
        }
        this.deliver(m);
        if (k === 0) this.feedback(m, true, false);
      });
    }
  }

  cut(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  cutBoth(a: NodeId, b: NodeId): void {
    this.cut(a, b);
    this.cut(b, a);
  }

  /** Symmetric partition between two groups. */
  split(left: readonly NodeId[], right: readonly NodeId[]): void {
    for (const a of left) for (const b of right) this.cutBoth(a, b);
  }

  /** Cuts every link of `id`. */
  isolate(id: NodeId, all: readonly NodeId[]): void {
    for (const b of all) if (b !== id) this.cutBoth(id, b);
  }

  /** Restores every link (loss, duplication and delays stay). */
  clearCuts(): void {
    this.blocked.clear();
  }

  /** Restores every link and removes loss, duplication and long delays. */
  heal(): void {
    this.blocked.clear();
    this.loss = 0;
    this.dup = 0;
    this.longTail = 0;
    this.delayMin = 0.5;
    this.delayMax = 3;
  }

  describe(): string {
    return `loss=${this.loss.toFixed(2)} dup=${this.dup.toFixed(2)} delay=${this.delayMin.toFixed(1)}-${this.delayMax.toFixed(1)} tail=${this.longTail.toFixed(2)} cuts=[${[...this.blocked].join(',')}]`;
  }
}
