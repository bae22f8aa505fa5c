/**
 * The allocator step (leader only): tasks `new` -> `pending` once what they need from the
 * cluster is allocated. Today a task needs nothing more, so every new task still wanted
 * (desired state up to complete) moves on in the next pass, all of a pass in one transaction
 * (up to MAX_WRITE_BYTES; more waits for the next pass, which follows at once).
 *
 * Seam for issue #10 (networks): `allocate` is where a task's network attachments get their
 * addresses (`NetworksAttachments`). It returns the task to write, or undefined to leave it
 * `new` for a later pass (say, a network whose subnet is not allocated yet).
 */
import { taskStateRank, type Task } from '@shoal/api';
import { type Change, VersionConflictError } from '@shoal/store';
import type { ManagerContext } from './context.js';
import type { StoredTask } from './scheduler/scheduler.js';
import { MAX_WRITE_BYTES, PENDING_MESSAGE } from './scheduler/scheduler.js';
import { WatchLoop, WatchLoopDriven } from './watch-loop.js';

const COMPLETE = taskStateRank('complete');

/** What a task needs before it can be scheduled: nothing yet; issue #10 adds network attachments. */
export type TaskAllocator = (t: StoredTask) => StoredTask | undefined;

export const allocateNothing: TaskAllocator = (t) => t;

/** True for a task the allocator moves on: new, and still wanted. */
export function needsAllocation(t: Task): boolean {
  return (t.Status?.State ?? 'new') === 'new' && taskStateRank(t.DesiredState ?? '') <= COMPLETE;
}

export class Allocator extends WatchLoopDriven {
  protected readonly loop: WatchLoop;

  constructor(
    private readonly ctx: ManagerContext,
    private readonly allocate: TaskAllocator = allocateNothing,
  ) {
    super();
    this.loop = new WatchLoop({
      name: 'allocator',
      store: ctx.store,
      logger: ctx.logger,
      kinds: ['task'],
      run: async () => {
        await this.pass();
      },
      relevant: (c: Change) => c.action !== 'remove' && needsAllocation(c.object as Task),
    });
  }

  /**
   * Moves every new task that is ready to pending, in one transaction of at most
   * MAX_WRITE_BYTES (the rest in the next pass); returns how many.
   */
  async pass(): Promise<number> {
    const now = new Date(this.ctx.clock.now()).toISOString();
    const updates: StoredTask[] = [];
    let bytes = 0;
    for (const t of this.ctx.store.list<StoredTask>('task')) {
      if (!needsAllocation(t)) continue;
      const a = this.allocate(t);
      if (a === undefined) continue;
      const next = { ...a, Status: { ...a.Status, State: 'pending', Message: PENDING_MESSAGE, Timestamp: now } };
      const size = JSON.stringify(next).length;
      if (updates.length > 0 && bytes + size > MAX_WRITE_BYTES) {
        this.loop.kick();
        break;
      }
      bytes += size;
      updates.push(next);
    }
    if (updates.length === 0) return 0;
    try {
      await this.ctx.store.update((tx) => {
        for (const u of updates) tx.update('task', u);
      });
    } catch (err) {
      // A task changed meanwhile (the orchestrator shut it down): decide again from the store.
      if (!(err instanceof VersionConflictError)) throw err;
      this.loop.kick();
      return 0;
    }
    return updates.length;
  }
}
