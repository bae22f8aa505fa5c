/**
 * Global services: one task per eligible node (ready, availability active, matching the
 * constraints). A node drained, down, gone or no longer matching has its task shut down and
 * gets none until it is eligible again; a paused node keeps its task but gets no new one. A node
 * back from down gets a new task held back (`ready`) until its old one has stopped.
 */
import type { StoredNode } from '../context.js';
import type { StoredTask } from '../services/objects.js';
import { constraintsMatch, parseConstraints } from '../services/constraint.js';
import { type PassView, reconcileSlot, type SlotResult } from './slot.js';
import { mayRun, newTask, runState } from './tasks.js';
import { updateOutdated } from './updater.js';

type Constraints = ReturnType<typeof parseConstraints>;

/** A node that gets a new task of a global service. */
export function eligibleForNew(n: StoredNode | undefined, cs: Constraints): n is StoredNode {
  return (
    n !== undefined &&
    n.Status?.State === 'ready' &&
    (n.Spec?.Availability ?? 'active') === 'active' &&
    constraintsMatch(cs, n)
  );
}

function keeps(n: StoredNode | undefined, cs: Constraints): boolean {
  return n !== undefined && n.Status?.State !== 'down' && n.Spec?.Availability !== 'drain' && constraintsMatch(cs, n);
}

export function reconcileGlobal(v: PassView, tasks: readonly StoredTask[]): void {
  const { service: s, plan, nodes } = v;
  const cs = parseConstraints(s.Spec?.TaskTemplate?.Placement?.Constraints);
  const byNode = new Map<string, StoredTask[]>();
  for (const t of tasks) {
    if (t.DesiredState === 'remove' || (t.NodeID ?? '') === '') continue;
    const list = byNode.get(t.NodeID ?? '') ?? [];
    list.push(t);
    byNode.set(t.NodeID ?? '', list);
  }
  const results = new Map<string, SlotResult>();
  const ids = new Set<string>([...nodes.keys(), ...byNode.keys()]);
  for (const id of ids) {
    const node = nodes.get(id);
    const r = reconcileSlot(v, byNode.get(id) ?? [], {
      slot: 0,
      nodeId: id,
      nodeOk: () => keeps(node, cs),
      global: true,
    });
    results.set(id, r);
    if (r.state === 'empty' && eligibleForNew(node, cs)) {
      // A node back from down may still run its old task (desired shutdown): the new one waits.
      const old = (byNode.get(id) ?? []).some((t) => mayRun(plan.view(t), nodes));
      plan.create(newTask(s, { slot: 0, nodeId: id }, old ? 'ready' : runState(s), plan.nowIso));
    }
  }
  updateOutdated(v, results);
}
