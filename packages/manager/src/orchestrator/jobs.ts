/**
 * Jobs run to completion (desired state `complete`). Each update of the service is a new
 * iteration (SpecVersion, stamped as JobIteration): tasks of an earlier one still running are
 * shut down. Replicated jobs: slots 1..TotalCompletions, at most MaxConcurrent active at once,
 * a slot done once a task of it completed; a failed task is replaced per the restart policy
 * (`any` counts as `on-failure`). Global jobs: one completed task per eligible node, also on
 * nodes that join later.
 */
import type { StoredTask } from '../services/objects.js';
import { reconcileGlobal } from './global.js';
import { keepsTasks } from './replicated.js';
import { parseConstraints } from '../services/constraint.js';
import { type PassView, reconcileSlot } from './slot.js';
import { isActive, isCurrent, isEnded, newTask } from './tasks.js';

function currentIteration(v: PassView, tasks: readonly StoredTask[]): StoredTask[] {
  const cur: StoredTask[] = [];
  for (const t of tasks) {
    if (isCurrent(t, v.service)) cur.push(t);
    else if (isActive(t) && !isEnded(t)) v.plan.setDesired(t, 'shutdown');
  }
  return cur;
}

export function reconcileReplicatedJob(v: PassView, tasks: readonly StoredTask[]): void {
  const { service: s, plan, nodes } = v;
  const mode = s.Spec?.Mode?.ReplicatedJob ?? {};
  const max = mode.MaxConcurrent ?? 1;
  const total = mode.TotalCompletions ?? max;
  const cs = parseConstraints(s.Spec?.TaskTemplate?.Placement?.Constraints);
  const bySlot = new Map<number, StoredTask[]>();
  for (const t of currentIteration(v, tasks)) {
    if (t.DesiredState === 'remove') continue;
    const list = bySlot.get(t.Slot ?? 0) ?? [];
    list.push(t);
    bySlot.set(t.Slot ?? 0, list);
  }
  const nodeOk = (t: StoredTask): boolean => (t.NodeID ?? '') === '' || keepsTasks(nodes.get(t.NodeID ?? ''), cs);
  let running = 0;
  const free: number[] = [];
  for (let slot = 1; slot <= total; slot++) {
    const list = bySlot.get(slot);
    const r =
      list === undefined
        ? { state: 'empty' as const }
        : reconcileSlot(v, list, { slot, nodeId: '', nodeOk, global: false });
    if (r.state === 'live') running++;
    else if (r.state === 'empty') free.push(slot);
  }
  for (const slot of free) {
    if (running >= max) break;
    plan.create(newTask(s, { slot, nodeId: '' }, 'complete', plan.nowIso));
    running++;
  }
}

export function reconcileGlobalJob(v: PassView, tasks: readonly StoredTask[]): void {
  reconcileGlobal(v, currentIteration(v, tasks));
}
