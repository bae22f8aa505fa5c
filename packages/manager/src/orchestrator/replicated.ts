/**
 * Replicated services: slots 1..Replicas, one active task each. Scale up adds the lowest free
 * slot numbers; scale down gives desired state `remove` to the tasks of the surplus slots,
 * chosen as SwarmKit does: slots given up or not running first, then those on the nodes with
 * the most tasks of the service, then the highest slot numbers.
 */
import { taskStateRank } from '@shoal/api';
import type { StoredNode } from '../context.js';
import type { StoredTask } from '../services/objects.js';
import { constraintsMatch, parseConstraints } from '../services/constraint.js';
import { type PassView, reconcileSlot, type SlotResult } from './slot.js';
import { isActive, mayRun, newTask, observed } from './tasks.js';
import { updateOutdated } from './updater.js';

/** A node that may keep a replicated task: up, not drained, matching the constraints. */
export function keepsTasks(n: StoredNode | undefined, constraints: ReturnType<typeof parseConstraints>): boolean {
  return (
    n !== undefined &&
    n.Status?.State !== 'down' &&
    n.Spec?.Availability !== 'drain' &&
    constraintsMatch(constraints, n)
  );
}

/**
 * Most new slots one pass creates: a scale to many thousands is written as several transactions
 * of this size (each pass's commit starts the next), keeping Raft entries reasonable.
 */
export const MAX_NEW_SLOTS_PER_PASS = 2000;

export function reconcileReplicated(v: PassView, tasks: readonly StoredTask[]): void {
  const { service: s, plan, nodes } = v;
  const want = s.Spec?.Mode?.Replicated?.Replicas ?? 1;
  const constraints = parseConstraints(s.Spec?.TaskTemplate?.Placement?.Constraints);
  const bySlot = new Map<number, StoredTask[]>();
  for (const t of tasks) {
    if (t.DesiredState === 'remove' || (t.Slot ?? 0) === 0) continue;
    const list = bySlot.get(t.Slot ?? 0) ?? [];
    list.push(t);
    bySlot.set(t.Slot ?? 0, list);
  }
  const nodeOk = (t: StoredTask): boolean =>
    (t.NodeID ?? '') === '' || keepsTasks(nodes.get(t.NodeID ?? ''), constraints);
  const results = new Map<number, SlotResult>();
  for (const [slot, list] of bySlot)
    results.set(slot, reconcileSlot(v, list, { slot, nodeId: '', nodeOk, global: false }));

  let slots = [...results.keys()];
  if (slots.length > want) {
    const perNode = new Map<string, number>();
    for (const t of tasks) if (isActive(t) && t.NodeID) perNode.set(t.NodeID, (perNode.get(t.NodeID) ?? 0) + 1);
    const rank = (slot: number): number => {
      const r = results.get(slot);
      const a = r?.active;
      if (r?.state !== 'live' || a === undefined) return 0;
      return taskStateRank(observed(plan.view(a))) < taskStateRank('running') ? 1 : 2;
    };
    const nodeLoad = (slot: number): number => perNode.get(results.get(slot)?.active?.NodeID ?? '') ?? 0;
    const order = [...slots].sort((a, b) => rank(a) - rank(b) || nodeLoad(b) - nodeLoad(a) || b - a);
    const drop = new Set(order.slice(0, slots.length - want));
    for (const slot of drop) {
      for (const t of bySlot.get(slot) ?? []) plan.setDesired(t, 'remove');
      results.delete(slot);
    }
    plan.creates = plan.creates.filter((c) => c.ServiceID !== s.ID || !drop.has(c.Slot ?? 0));
    slots = slots.filter((x) => !drop.has(x));
  }
  for (const slot of slots) {
    if (results.get(slot)?.state === 'empty') plan.create(newTask(s, { slot, nodeId: '' }, 'running', plan.nowIso));
  }
  if (slots.length < want) {
    // Slot numbers still used by a removed task that may run are not reused yet.
    const used = new Set<number>(slots);
    for (const t of tasks) if (t.DesiredState === 'remove' && mayRun(t, nodes)) used.add(t.Slot ?? 0);
    let next = 1;
    const upTo = Math.min(want, slots.length + MAX_NEW_SLOTS_PER_PASS);
    for (let n = slots.length; n < upTo; n++) {
      while (used.has(next)) next++;
      used.add(next);
      plan.create(newTask(s, { slot: next, nodeId: '' }, 'running', plan.nowIso));
    }
  }
  updateOutdated(v, results);
}
