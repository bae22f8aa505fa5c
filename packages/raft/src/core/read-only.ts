/**
 * ReadIndex bookkeeping on the leader (thesis §6.4): each read notes the commit index when it
 * arrived and waits until a quorum has answered a heartbeat carrying its context; then it and
 * every read queued before it may be served at their noted index.
 */
import type { Message, NodeId } from './types.js';

export interface ReadIndexStatus {
  readonly req: Message;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

/** A context as a map key (latin1 keeps every byte). */
export function ctxKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('latin1');
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  /** Keys in arrival order. */
  private queue: string[] = [];

  /**
   * Queues a read at commit index `index`. A retried request with the same context replaces the
   * pending one and moves to the back, so it resolves to an index at least the current commit.
   */
  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.context);
    if (this.pending.has(key)) this.queue = this.queue.filter((k) => k !== key);
    this.pending.set(key, { req: m, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records a heartbeat ack for the read `ctx`; returns the acks so far (undefined if unknown). */
  recvAck(id: NodeId, ctx: Uint8Array): Set<NodeId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Dequeues the read `ctx` and every read queued before it. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const at = this.queue.indexOf(key);
    if (at === -1) return [];
    const keys = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of keys) {
      const rs = this.pending.get(k);
      if (rs !== undefined) out.push(rs);
      this.pending.delete(k);
    }
    return out;
  }

  /** Context of the newest pending read (sent with heartbeats), if any. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)?.req.context;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
