/**
 * The allocator step (leader only): tasks `new` -> `pending` once what they need from the
 * cluster is allocated, all of a pass in one transaction (up to MAX_WRITE_BYTES of tasks; the
 * rest waits for the next pass, which follows at once). With the manager's NetworkAllocation
 * (networks/network-allocation.ts) a pass first gives back what the store no longer holds, gives
 * services their VIPs (Endpoint.VirtualIPs), then each new task still wanted (desired state up to
 * complete) its NetworksAttachments and its service's Endpoint. A task that cannot be allocated
 * yet (its network is gone, no address is left) stays `new` with the reason in Status.Err, and
 * a later pass tries again.
 *
 * `allocate` is a further seam (tests): it returns the task to write, or undefined to leave it
 * `new` for a later pass.
 */
import { taskStateRank, type Task } from '@shoal/api';
import { errorMessage, ShoalError } from '@shoal/common';
import type { NetworkAllocator } from '@shoal/network';
import { type Change, VersionConflictError } from '@shoal/store';
import type { ManagerContext, StoredNode } from './context.js';
import { holdsAddresses, type NetworkAllocation } from './networks/network-allocation.js';
import type { StoredService } from './services/objects.js';
import type { StoredTask } from './scheduler/scheduler.js';
import { MAX_WRITE_BYTES, PENDING_MESSAGE } from './scheduler/scheduler.js';
import { WatchLoop, WatchLoopDriven } from './watch-loop.js';

const COMPLETE = taskStateRank('complete');

/** A further step before a task can be scheduled (network attachments come from NetworkAllocation). */
export type TaskAllocator = (t: StoredTask) => StoredTask | undefined;

export const allocateNothing: TaskAllocator = (t) => t;

/** True for a task the allocator moves on: new, and still wanted. */
export function needsAllocation(t: Task): boolean {
  return (t.Status?.State ?? 'new') === 'new' && taskStateRank(t.DesiredState ?? '') <= COMPLETE;
}

/**
 * Changes a pass may act on: new tasks, tasks gone or stopped (addresses), services, networks,
 * nodes joining or leaving (load-balancer addresses).
 */
function relevant(c: Change): boolean {
  if (c.kind === 'node') return c.action !== 'update' || (c.object as StoredNode).Attachments === undefined;
  if (c.kind !== 'task') return true;
  if (c.action === 'remove') return true;
  const t = c.object as Task;
  if (needsAllocation(t)) return true;
  return c.previous !== undefined && holdsAddresses(c.previous as Task) && !holdsAddresses(t);
}

export class Allocator extends WatchLoopDriven {
  protected readonly loop: WatchLoop;

  constructor(
    private readonly ctx: ManagerContext,
    private readonly allocate: TaskAllocator = allocateNothing,
    private readonly networks?: NetworkAllocation,
  ) {
    super();
    this.loop = new WatchLoop({
      name: 'allocator',
      store: ctx.store,
      logger: ctx.logger,
      kinds: ['task', 'service', 'network', 'node'],
      run: async () => {
        await this.pass();
      },
      relevant,
    });
  }

  /**
   * Moves every new task that is ready to pending, in one transaction of at most
   * MAX_WRITE_BYTES (the rest in the next pass); returns how many.
   */
  async pass(): Promise<number> {
    const net = this.networks;
    if (net === undefined) return this.passWith(undefined);
    return net.exclusive('network allocation', (a) => this.passWith({ net, a }));
  }

  private async passWith(n: { net: NetworkAllocation; a: NetworkAllocator } | undefined): Promise<number> {
    const now = new Date(this.ctx.clock.now()).toISOString();
    const services = new Map<string, StoredService>();
    let nodes: StoredNode[] = [];
    const serviceErr = new Map<string, string>();
    const updates: StoredTask[] = [];
    let pending = 0;
    let bytes = 0;
    try {
      if (n !== undefined) {
        n.net.releaseGone(n.a);
        nodes = n.net.nodeAttachments(n.a);
        for (const s of this.ctx.store.list<StoredService>('service')) {
          try {
            const u = n.net.serviceEndpoint(n.a, s);
            if (u !== undefined) services.set(s.ID, u);
          } catch (err) {
            if (!(err instanceof ShoalError)) throw err;
            serviceErr.set(s.ID, `service endpoint: ${errorMessage(err)}`);
          }
        }
      }
      for (const t of this.ctx.store.list<StoredTask>('task')) {
        if (!needsAllocation(t)) continue;
        // Checked before anything is allocated for `t`, so what the pass took is all written.
        if (bytes > MAX_WRITE_BYTES) {
          this.loop.kick();
          break;
        }
        bytes += JSON.stringify(t).length;
        let cur: StoredTask = t;
        if (n !== undefined) {
          const sid = t.ServiceID ?? '';
          const why = serviceErr.get(sid);
          const r =
            why !== undefined
              ? { hold: why }
              : n.net.allocateTask(n.a, t, services.get(sid) ?? this.ctx.store.get<StoredService>('service', sid));
          if ('hold' in r) {
            if (t.Status?.Err !== r.hold) updates.push({ ...t, Status: { ...t.Status, Err: r.hold } });
            continue;
          }
          cur = r.task;
        }
        const a = this.allocate(cur);
        if (a === undefined) {
          if (cur !== t) n?.net.invalidate();
          continue;
        }
        pending++;
        updates.push({
          ...a,
          Status: { ...a.Status, State: 'pending', Message: PENDING_MESSAGE, Err: '', Timestamp: now },
        });
      }
    } catch (err) {
      n?.net.invalidate();
      throw err;
    }
    if (updates.length === 0 && services.size === 0 && nodes.length === 0) return 0;
    try {
      await this.ctx.store.update((tx) => {
        for (const x of nodes) tx.update('node', x);
        for (const s of services.values()) tx.update('service', s);
        for (const u of updates) tx.update('task', u);
      });
    } catch (err) {
      // What this pass took is not in the store: rebuild from it before the next pass.
      n?.net.invalidate();
      // A task or service changed meanwhile (the orchestrator shut it down): decide again.
      if (!(err instanceof VersionConflictError)) throw err;
      this.loop.kick();
      return 0;
    }
    return pending;
  }
}
