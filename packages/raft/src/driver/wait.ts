/**
 * Waiters of pending proposals and conf changes, keyed by proposal id. A waiter is bound to the
 * log index and term its entry got when this node persisted it; it is settled when that entry is
 * applied, rejected when another entry takes its index (superseded), when the leader changes
 * (outcome unknown), when its signal aborts, or when the node stops.
 */
import { AbortedError } from '@shoal/common';
import { ProposalSupersededError } from '../errors.js';

interface Waiter {
  resolve(v: unknown): void;
  reject(e: Error): void;
  /** Log position of the entry once persisted here (0 before). */
  index: number;
  term: number;
  cleanup: (() => void) | undefined;
}

export class ProposalWaiters {
  private readonly byId = new Map<number, Waiter>();
  /** index -> proposal id, for the superseded check when that index is applied. */
  private readonly byIndex = new Map<number, number>();

  get size(): number {
    return this.byId.size;
  }

  /**
   * Registers a waiter for proposal `id`; `signal` rejects it with AbortedError. The caller starts
   * the proposal after this returns (and cancels the waiter if starting throws).
   */
  add<T>(id: number, signal: AbortSignal | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = { resolve: resolve, reject, index: 0, term: 0, cleanup: undefined };
      if (signal !== undefined) {
        const onAbort = (): void => {
          if (this.take(id) !== undefined) reject(new AbortedError());
        };
        signal.addEventListener('abort', onAbort, { once: true });
        w.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.byId.set(id, w);
    });
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  /** Rejects the waiter of `id` (if still pending) with `err`. */
  cancel(id: number, err: Error): void {
    this.take(id)?.reject(err);
  }

  /** Records that proposal `id` was persisted at (index, term). */
  bind(id: number, index: number, term: number): void {
    const w = this.byId.get(id);
    if (w === undefined) return;
    w.index = index;
    w.term = term;
    this.byIndex.set(index, id);
  }

  /** Called for each applied entry: a waiter bound to `index` with another term will never apply. */
  supersede(index: number, term: number): void {
    const id = this.byIndex.get(index);
    if (id === undefined) return;
    this.byIndex.delete(index);
    const w = this.byId.get(id);
    if (w !== undefined && w.term !== term) {
      this.take(id);
      w.reject(new ProposalSupersededError(index));
    }
  }

  /**
   * Proposal `id` was applied with `result`: removes its waiter and returns the resolution to run
   * once the core has advanced (undefined when nobody waits here).
   */
  settle(id: number, result: unknown): (() => void) | undefined {
    const w = this.take(id);
    if (w === undefined) return undefined;
    return () => w.resolve(result);
  }

  /** Rejects every waiter; `make` builds the error (one per waiter or shared). */
  rejectAll(make: () => Error): void {
    const all = [...this.byId.values()];
    this.byId.clear();
    this.byIndex.clear();
    for (const w of all) {
      w.cleanup?.();
      w.reject(make());
    }
  }

  private take(id: number): Waiter | undefined {
    const w = this.byId.get(id);
    if (w === undefined) return undefined;
    this.byId.delete(id);
    if (w.index > 0 && this.byIndex.get(w.index) === id) this.byIndex.delete(w.index);
    w.cleanup?.();
    return w;
  }
}
