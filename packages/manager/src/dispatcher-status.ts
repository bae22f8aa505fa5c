/**
 * Task status from the nodes (`UpdateTaskStatus`), batched into store transactions: updates that
 * arrive within `windowMs` of the first one queued (by default: in the same turn of the event
 * loop), or 10,000 of them, are written together, in
 * one transaction (several of at most MAX_WRITE_BYTES for a large batch), and every caller's
 * call returns once its batch is stored. One batch is written at a time; the updates that arrive
 * during its commit form the next batch, written as soon as it ends. Per task only the furthest state
 * counts, and only a move forward (TASK_STATES order) is written; an update for a task that is
 * gone is dropped. A node may update only tasks assigned to it: one update for another node's
 * task refuses the whole call (permission denied) and queues nothing.
 */
import { type TaskStatus, type TaskStatusUpdate, taskStateRank, type Task } from '@shoal/api';
import { type StoredObject, VersionConflictError } from '@shoal/store';
import type { ManagerContext } from './context.js';
import { CallerNotAllowedError, InvalidRequestError, NotLeaderError } from './errors.js';
import { MAX_WRITE_BYTES } from './scheduler/scheduler.js';

type StoredTask = Task & StoredObject;

/**
 * How long the first update of a batch waits for others. 0: only to the end of the event loop's
 * turn (setImmediate), so every update already read joins it and none waits on a timer (a
 * RUNNING goes to the store at once: the peers' DNS and VIPs follow it). Batching comes from the
 * commits: updates that arrive while one is written go together in the next. SwarmKit waits 100 ms.
 */
export const STATUS_BATCH_MS = 0;
/** A batch this large is written at once. */
export const STATUS_BATCH_MAX = 10_000;

interface Queued {
  readonly nodeId: string;
  readonly status: TaskStatus;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class StatusBatcher {
  private queue = new Map<string, Queued>();
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** A drain() runs: new updates wait in the queue for it, with no timer of their own. */
  private writing = false;
  /** Transactions written so far (tests and logs). */
  transactions = 0;

  constructor(
    private readonly ctx: ManagerContext,
    private readonly windowMs = STATUS_BATCH_MS,
  ) {}

  /** Checks and queues `updates` from `nodeId`; resolves when they are stored (or dropped). */
  submit(nodeId: string, updates: readonly TaskStatusUpdate[]): Promise<void> {
    for (const u of updates) {
      const id = u.TaskID ?? '';
      if (id === '') throw new InvalidRequestError('a task status update without TaskID');
      const state = u.Status?.State ?? '';
      if (taskStateRank(state) < 0) throw new InvalidRequestError(`task ${id}: unknown task state '${state}'`);
      const t = this.ctx.store.get<StoredTask>('task', id);
      if (t !== undefined && t.NodeID !== nodeId) {
        throw new CallerNotAllowedError(`task ${id} is not assigned to node ${nodeId}: it cannot update its status`);
      }
    }
    if (updates.length === 0) return Promise.resolve();
    for (const u of updates) {
      const id = u.TaskID ?? '';
      const status = u.Status ?? {};
      const cur = this.queue.get(id);
      if (cur === undefined || taskStateRank(status.State ?? '') > taskStateRank(cur.status.State ?? '')) {
        this.queue.set(id, { nodeId, status });
      }
    }
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.writing) return done; // taken by the running writer as soon as its commit ends
    if (this.queue.size >= STATUS_BATCH_MAX) this.flushNow();
    else if (this.timer === undefined) {
      this.timer =
        this.windowMs > 0 ? setTimeout(() => this.flushNow(), this.windowMs) : setImmediate(() => this.flushNow());
    }
    return done;
  }

  /** Step-down: queued updates fail (the node sends them again to the new leader). */
  stop(): void {
    this.cancelTimer();
    this.timer = undefined;
    const err = new NotLeaderError('a task status update', this.ctx.raft.leaderInfo().leader);
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
    this.queue.clear();
  }

  private cancelTimer(): void {
    const t = this.timer;
    this.timer = undefined;
    if (t === undefined) return;
    if ('refresh' in t)
      clearTimeout(t); // a Timeout; an Immediate has no refresh()
    else clearImmediate(t);
  }

  private flushNow(): void {
    this.cancelTimer();
    if (this.writing) return; // the running writer takes everything queued when its write ends
    this.writing = true;
    void this.drain();
  }

  /**
   * Writes what is queued, then what queued up meanwhile, until nothing is left. Updates that
   * arrive while a transaction is being committed all go into the next one, so a slow commit
   * (a busy disk under Raft) costs one more commit, not one per window that passed.
   */
  private async drain(): Promise<void> {
    try {
      while (this.queue.size > 0) {
        const batch = this.queue;
        const waiters = this.waiters;
        this.queue = new Map();
        this.waiters = [];
        try {
          await this.write(batch);
          for (const w of waiters) w.resolve();
        } catch (err) {
          const e = err instanceof Error ? err : new Error(String(err));
          for (const w of waiters) w.reject(e);
        }
      }
    } finally {
      // in the same turn as the last look at the queue: no update can slip in between
      this.writing = false;
    }
  }

  /** Writes a batch: one transaction, or several of at most MAX_WRITE_BYTES each. */
  private async write(batch: ReadonlyMap<string, Queued>): Promise<void> {
    let chunk = new Map<string, Queued>();
    let bytes = 0;
    for (const [id, q] of batch) {
      const size = taskBytes(this.ctx, id) + 256;
      if (chunk.size > 0 && bytes + size > MAX_WRITE_BYTES) {
        await this.writeChunk(chunk);
        chunk = new Map();
        bytes = 0;
      }
      chunk.set(id, q);
      bytes += size;
    }
    if (chunk.size > 0) await this.writeChunk(chunk);
  }

  private async writeChunk(batch: ReadonlyMap<string, Queued>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const now = new Date(this.ctx.clock.now()).toISOString();
      const committed = await this.ctx.store
        .update((tx) => {
          for (const [id, q] of batch) {
            const t = tx.get<StoredTask>('task', id);
            if (t === undefined || t.NodeID !== q.nodeId) continue;
            if (taskStateRank(q.status.State ?? '') <= taskStateRank(t.Status?.State ?? '')) continue;
            const status: TaskStatus = { ...q.status };
            if ((status.Timestamp ?? '') === '') status.Timestamp = now;
            tx.update('task', { ...t, Status: status } as StoredTask);
          }
        })
        .then(
          (c) => c,
          (err: unknown) => {
            // Another writer (the orchestrator) changed one of the tasks: read again and retry.
            if (err instanceof VersionConflictError && attempt < 5) return undefined;
            throw err;
          },
        );
      if (committed === undefined) continue;
      if (committed.changes.length > 0) this.transactions++;
      return;
    }
  }
}

/** The JSON size of a stored task (what its update adds to a transaction). */
function taskBytes(ctx: ManagerContext, id: string): number {
  const t = ctx.store.get('task', id);
  return t === undefined ? 0 : JSON.stringify(t).length;
}
