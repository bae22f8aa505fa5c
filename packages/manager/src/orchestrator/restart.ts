/**
 * The restart supervisor's rules (RestartPolicy: Condition none | on-failure | any, Delay,
 * MaxAttempts, Window). Everything is computed from the slot's task history in the store, so a
 * new leader decides as the old one would: the attempts are the tasks of the slot (same spec
 * version) that ended on their own, within Window when set; a replacement held back by Delay is
 * a task with desired state `ready`, released once its creation time plus Delay has passed.
 */
import { DEFAULT_RESTART_DELAY_NS, type RestartPolicy } from '@shoal/api';
import type { StoredService, StoredTask } from '../services/objects.js';
import { createdMs, endedOnItsOwn, isCurrent, isJob, newestFirst, observed, updatedMs } from './tasks.js';

const NS_PER_MS = 1_000_000;

export function policyOf(s: StoredService): RestartPolicy {
  return s.Spec?.TaskTemplate?.RestartPolicy ?? {};
}

/** Restart condition in force: jobs treat `any` as `on-failure` (a completed job task is done). */
export function conditionOf(s: StoredService): 'none' | 'on-failure' | 'any' {
  const c = policyOf(s).Condition || 'any';
  const cond = c === 'none' || c === 'on-failure' ? c : 'any';
  return isJob(s) && cond === 'any' ? 'on-failure' : cond;
}

export function restartDelayMs(s: StoredService): number {
  return Math.round((policyOf(s).Delay ?? DEFAULT_RESTART_DELAY_NS) / NS_PER_MS);
}

/** The restarts already made in the slot (history excluding `ended`), as the policy counts them. */
export function attemptsSoFar(
  s: StoredService,
  slotTasks: readonly StoredTask[],
  ended: StoredTask,
  now: number,
): number {
  const windowMs = Math.round((policyOf(s).Window ?? 0) / NS_PER_MS);
  return slotTasks.filter(
    (t) =>
      t.ID !== ended.ID &&
      isCurrent(t, s) &&
      endedOnItsOwn(t) &&
      createdMs(t) <= createdMs(ended) &&
      (windowMs === 0 || updatedMs(t) >= now - windowMs),
  ).length;
}

/** Whether a task that ended (while wanted) gets a replacement in its slot. */
export function shouldRestart(
  s: StoredService,
  slotTasks: readonly StoredTask[],
  ended: StoredTask,
  now: number,
): boolean {
  const cond = conditionOf(s);
  if (cond === 'none') return false;
  if (cond === 'on-failure' && observed(ended) === 'complete') return false;
  const max = policyOf(s).MaxAttempts ?? 0;
  return max === 0 || attemptsSoFar(s, slotTasks, ended, now) < max;
}

/**
 * When a held-back (`ready`) task may start: its creation plus the restart delay when the task
 * it replaces ended on its own (a restart), else at once (an update or a replacement).
 */
export function releaseAt(s: StoredService, slotTasks: readonly StoredTask[], held: StoredTask): number {
  const before = slotTasks.filter((t) => t.ID !== held.ID && createdMs(t) <= createdMs(held)).sort(newestFirst)[0];
  const restart = before !== undefined && endedOnItsOwn(before);
  return createdMs(held) + (restart ? restartDelayMs(s) : 0);
}
