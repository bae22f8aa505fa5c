/**
 * One slot of a service (a replicated slot number, or a node for global services) in one pass:
 * at most one active task; a task that ended while wanted is shut down and replaced per the
 * restart policy; a task whose node can no longer keep it is shut down (and replaced elsewhere
 * for replicated services); a held-back (`ready`) task starts once the task before it has
 * stopped and its restart delay has passed (stop-first).
 */
import type { StoredNode } from '../context.js';
import type { StoredService, StoredTask } from '../services/objects.js';
import type { Plan } from './plan.js';
import { releaseAt, restartDelayMs, shouldRestart } from './restart.js';
import {
  endedOnItsOwn,
  isActive,
  isCurrent,
  isEnded,
  isJob,
  mayRun,
  newestFirst,
  newTask,
  observed,
  runState,
} from './tasks.js';

export interface PassView {
  readonly service: StoredService;
  readonly nodes: ReadonlyMap<string, StoredNode>;
  readonly plan: Plan;
}

/**
 * - live: an active task (`active`; `outdated` when it is of an older spec version);
 * - dead: the restart policy gave the slot up;
 * - done: a job slot that completed;
 * - empty: nothing active and nothing that stops a new task (no history of this spec version,
 *   or the task was shut down because its node can no longer run it).
 */
export interface SlotResult {
  readonly state: 'live' | 'dead' | 'done' | 'empty';
  readonly active?: StoredTask;
  readonly outdated?: StoredTask;
}

export interface SlotOptions {
  readonly slot: number;
  /** The node a replacement is bound to ('' = the scheduler picks one). */
  readonly nodeId: string;
  /** Whether the active task may stay where it is. */
  readonly nodeOk: (t: StoredTask) => boolean;
  /** Global: a task that had to leave its node is not replaced elsewhere. */
  readonly global: boolean;
}

export function reconcileSlot(v: PassView, tasks: readonly StoredTask[], o: SlotOptions): SlotResult {
  const { service: s, plan } = v;
  const run = runState(s);
  const active = tasks.filter((t) => isActive(t)).sort(newestFirst);
  const a = active.find((t) => !isEnded(t)) ?? active[0];
  for (const t of active) if (t !== a) plan.setDesired(t, 'shutdown');
  if (a === undefined) {
    const current = tasks.filter((t) => isCurrent(t, s)).sort(newestFirst);
    if (isJob(s) && current.some((t) => observed(t) === 'complete')) return { state: 'done' };
    const latest = current[0];
    if (latest === undefined) return { state: 'empty' };
    if (o.global) return endedOnItsOwn(latest) ? { state: 'dead' } : { state: 'empty' };
    return { state: 'dead' };
  }
  const replace = (desired: 'ready' | 'running' | 'complete'): void => {
    plan.create(newTask(s, { slot: o.slot, nodeId: o.global ? (a.NodeID ?? '') : '' }, desired, plan.nowIso));
  };
  if (isEnded(a)) {
    if (isJob(s) && observed(a) === 'complete') return { state: 'done', active: a };
    plan.setDesired(a, 'shutdown');
    if (o.global && !o.nodeOk(a)) return { state: 'empty' };
    if (!shouldRestart(s, tasks, a, plan.now)) return { state: 'dead' };
    replace(restartDelayMs(s) > 0 ? 'ready' : run);
    return { state: 'live' };
  }
  if (!o.nodeOk(a)) {
    plan.setDesired(a, 'shutdown');
    if (o.global) return { state: 'empty' };
    replace(run);
    return { state: 'live' };
  }
  if (a.DesiredState === 'ready') {
    const blocked = tasks.some((t) => t.ID !== a.ID && mayRun(plan.view(t), v.nodes));
    if (!blocked) {
      const at = releaseAt(s, tasks, a);
      if (at <= plan.now) plan.setDesired(a, run);
      else plan.wake(at);
    }
  }
  return isCurrent(a, s) ? { state: 'live', active: a } : { state: 'live', active: a, outdated: a };
}
