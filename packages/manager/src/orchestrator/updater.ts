/**
 * Service updates (a changed TaskTemplate gives a new SpecVersion): active tasks of an older
 * version are replaced stop-first, `UpdateConfig.Parallelism` slots at a time (default 1; 0 =
 * all), the next batch once the new tasks run. The old task gets desired state shutdown and its
 * replacement is created held back (`ready`) in the same transaction; the slot logic starts it
 * when the old one has stopped. The service's UpdateStatus goes `updating` -> `completed`.
 * (Delay, Monitor, FailureAction and rollback are stored but not acted on yet.)
 */
import { taskStateRank } from '@shoal/api';
import type { StoredTask } from '../services/objects.js';
import type { PassView, SlotResult } from './slot.js';
import { isCurrent, isEnded, newTask, observed } from './tasks.js';

export function updateOutdated(v: PassView, results: ReadonlyMap<string | number, SlotResult>): void {
  const { service: s, plan } = v;
  const outdated: StoredTask[] = [];
  let inflight = plan.creates.filter((c) => c.ServiceID === s.ID).length;
  for (const r of results.values()) {
    if (r.outdated !== undefined) outdated.push(r.outdated);
    else if (r.active !== undefined && isCurrent(r.active, s) && !isEnded(r.active)) {
      const a = plan.view(r.active);
      if (a.DesiredState === 'ready' || taskStateRank(observed(a)) < taskStateRank('running')) inflight++;
    }
  }
  const status = s.UpdateStatus;
  if (outdated.length === 0) {
    if (status?.State === 'updating' && inflight === 0) {
      plan.service = {
        ...s,
        UpdateStatus: { ...status, State: 'completed', CompletedAt: plan.nowIso, Message: 'update completed' },
      };
    }
    return;
  }
  if (status?.State !== 'updating') {
    plan.service = {
      ...s,
      UpdateStatus: { State: 'updating', StartedAt: plan.nowIso, CompletedAt: '', Message: 'update in progress' },
    };
  }
  const par = s.Spec?.UpdateConfig?.Parallelism ?? 1;
  const budget = par === 0 ? outdated.length : Math.max(0, par - inflight);
  outdated.sort((a, b) => (a.Slot ?? 0) - (b.Slot ?? 0) || (a.NodeID ?? '').localeCompare(b.NodeID ?? ''));
  for (const t of outdated.slice(0, budget)) {
    plan.setDesired(t, 'shutdown');
    const global = (t.Slot ?? 0) === 0;
    plan.create(newTask(s, { slot: t.Slot ?? 0, nodeId: global ? (t.NodeID ?? '') : '' }, 'ready', plan.nowIso));
  }
}
