/**
 * The task reaper, run in every service pass (same transaction): tasks with desired state
 * `remove` (scale down, service rm) are deleted once they cannot run any more (ended, never
 * reached a node, or their node is down or gone); each slot (or node, for global services)
 * keeps at most Cluster Spec.Orchestration.TaskHistoryRetentionLimit tasks (default 5; negative
 * keeps everything), deleting the oldest stopped ones. A slot whose restart policy has
 * MaxAttempts keeps MaxAttempts + 1 tasks, so the attempts the policy counts are never reaped.
 * Stopped tasks of a node that was removed are deleted.
 */
import { DEFAULT_TASK_HISTORY_RETENTION } from '@shoal/api';
import type { StoredNode } from '../context.js';
import type { StoredService, StoredTask } from '../services/objects.js';
import type { Plan } from './plan.js';
import { isActive, newestFirst, reapable } from './tasks.js';

export function reap(
  plan: Plan,
  service: StoredService | undefined,
  tasks: readonly StoredTask[],
  nodes: ReadonlyMap<string, StoredNode>,
  retention: number | undefined,
): void {
  const bySlot = new Map<string, StoredTask[]>();
  for (const orig of tasks) {
    const t = plan.view(orig);
    if (t.DesiredState === 'remove' || service === undefined) {
      if (reapable(t, nodes)) plan.remove(orig);
      else if (t.DesiredState !== 'remove') plan.setDesired(orig, 'remove');
      continue;
    }
    // A stopped task of a node that left the cluster is of no use any more.
    if (!isActive(t) && (t.NodeID ?? '') !== '' && !nodes.has(t.NodeID ?? '')) {
      plan.remove(orig);
      continue;
    }
    const key = (t.Slot ?? 0) > 0 ? `s${t.Slot}` : `n${t.NodeID}`;
    const list = bySlot.get(key) ?? [];
    list.push(t);
    bySlot.set(key, list);
  }
  const limit = retention ?? DEFAULT_TASK_HISTORY_RETENTION;
  if (limit < 0 || service === undefined) return;
  const attempts = service.Spec?.TaskTemplate?.RestartPolicy?.MaxAttempts ?? 0;
  const keep = Math.max(limit, attempts > 0 ? attempts + 1 : 0, 1);
  for (const list of bySlot.values()) {
    if (list.length <= keep) continue;
    for (const t of list.sort(newestFirst).slice(keep)) {
      if (!isActive(t) && reapable(t, nodes)) plan.remove(t);
    }
  }
}
