/**
 * Waiting for a service to converge, as docker's `--detach=false`: it polls the service and its
 * tasks and shows `overall progress: N out of M tasks` with one line per slot (`1/3: running`).
 * On a terminal the lines are redrawn in place; otherwise a line is printed when a slot's state
 * changes. Failed tasks print their error and the wait goes on (docker keeps waiting too);
 * Ctrl-C stops waiting, not the service.
 */
import type { Service, Task } from '@shoal/api';
import { isTerminalTaskState, taskStateRank } from '@shoal/api';
import { ShoalError } from '@shoal/common';
import type { DaemonClient } from '../daemon/client.js';

/** The daemon paused the service's update (or rollback): the wait ends with its message. */
export class UpdatePausedError extends ShoalError {
  constructor(name: string, state: string, message: string) {
    super(
      'CLI_UPDATE_PAUSED',
      `service ${name}: ${state === 'paused' ? 'update paused' : 'rollback paused'}${message ? `: ${message}` : ''}`,
      { kind: 'failed-precondition' },
    );
  }
}

export interface ProgressOptions {
  readonly quiet: boolean;
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  /** Poll period (ms). */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

/** The state of each slot to show, and whether the service converged. */
export interface Convergence {
  /** Slot label (`1`, `2`, or a node ID for global services) → the state text shown. */
  readonly slots: Map<string, { state: string; err: string; taskId: string }>;
  readonly running: number;
  readonly desired: number;
  readonly done: boolean;
  readonly job: boolean;
  readonly completed: number;
}

/** Newest task first. */
function newest(a: Task, b: Task): number {
  return (Date.parse(b.CreatedAt ?? '') || 0) - (Date.parse(a.CreatedAt ?? '') || 0);
}

/** How far the service's current tasks are (pure: tests call it with objects). */
export function convergence(s: Service, tasks: readonly Task[]): Convergence {
  const m = s.Spec?.Mode ?? {};
  const job = m.ReplicatedJob !== undefined || m.GlobalJob !== undefined;
  const live = tasks
    .filter((t) => t.ServiceID === s.ID && (t.DesiredState === 'running' || t.DesiredState === 'complete'))
    .sort(newest);
  const slots = new Map<string, { state: string; err: string; taskId: string }>();
  for (const t of live) {
    const key = t.Slot ? String(t.Slot) : (t.NodeID ?? t.ID ?? '');
    if (slots.has(key) && !job) continue;
    if (job && slots.has(key) && slots.get(key)?.state === 'complete') continue;
    slots.set(key, { state: t.Status?.State ?? 'new', err: t.Status?.Err ?? '', taskId: t.ID ?? '' });
  }
  const states = [...slots.values()];
  const running = states.filter((x) => x.state === 'running').length;
  const completed = tasks.filter((t) => t.ServiceID === s.ID && t.Status?.State === 'complete').length;
  if (m.ReplicatedJob) {
    const total = m.ReplicatedJob.TotalCompletions ?? m.ReplicatedJob.MaxConcurrent ?? 1;
    return { slots, running, desired: total, done: completed >= total, job, completed };
  }
  if (m.GlobalJob) {
    const done = states.length > 0 && states.every((x) => x.state === 'complete');
    return { slots, running, desired: states.length, done, job, completed };
  }
  const desired = m.Global ? slots.size : (m.Replicated?.Replicas ?? 1);
  if (!m.Global) for (const k of [...slots.keys()]) if (Number(k) > desired) slots.delete(k);
  const ok = [...slots.values()].filter((x) => x.state === 'running').length;
  return { slots, running: ok, desired, done: ok === desired && (desired > 0 || !m.Global), job, completed };
}

function bar(state: string): string {
  const width = 50;
  const rank = taskStateRank(state);
  const full = taskStateRank('running');
  const n = Math.max(0, Math.min(width, Math.round((Math.min(rank, full) / full) * width)));
  return `[${'='.repeat(Math.max(0, n - 1))}${n > 0 ? '>' : ''}${' '.repeat(width - n)}]`;
}

function sortedKeys(c: Convergence): string[] {
  return [...c.slots.keys()].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
}

/** Waits until the service converges (or the signal aborts), printing progress. */
export async function waitOnService(client: DaemonClient, serviceId: string, opts: ProgressOptions): Promise<void> {
  const out = opts.out;
  const tty = out.isTTY === true;
  const write = (s: string): void => {
    if (!opts.quiet) out.write(s);
  };
  const printed = new Map<string, string>();
  const errorsShown = new Set<string>();
  let lastOverall = '';
  let drawn = 0;
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  opts.signal?.addEventListener('abort', onSigint, { once: true });
  try {
    for (;;) {
      const svc = (await client.control.getService({ ServiceID: serviceId })).Service ?? {};
      const tasks = (await client.control.listTasks({ Filters: { ServiceIDs: [svc.ID ?? serviceId] } })).Tasks ?? [];
      const c = convergence(svc, tasks);
      const width = String(c.desired).length;
      const label = (k: string): string => (/^\d+$/.test(k) ? `${k.padStart(width)}/${c.desired}` : k.slice(0, 12));
      const overall = c.job
        ? `job progress: ${c.completed} out of ${c.desired} complete`
        : `overall progress: ${c.running} out of ${c.desired} tasks`;
      if (tty) {
        const lines = [
          overall,
          ...sortedKeys(c).map((k) => {
            const s = c.slots.get(k);
            const text = s?.err && isTerminalTaskState(s.state) ? s.err : (s?.state ?? '');
            return `${label(k)}: ${text.padEnd(9)} ${bar(s?.state ?? 'new')}`;
          }),
        ];
        write((drawn > 0 ? `\x1b[${drawn}A` : '') + lines.map((l) => `\x1b[2K${l}\n`).join(''));
        drawn = lines.length;
      } else {
        if (overall !== lastOverall) write(`${overall}\n`);
        lastOverall = overall;
        for (const k of sortedKeys(c)) {
          const s = c.slots.get(k);
          if (!s) continue;
          if (printed.get(k) !== s.state) write(`${label(k)}: ${s.state}\n`);
          printed.set(k, s.state);
        }
      }
      for (const k of sortedKeys(c)) {
        const s = c.slots.get(k);
        if (s?.err && !errorsShown.has(s.taskId) && isTerminalTaskState(s.state)) {
          errorsShown.add(s.taskId);
          if (!tty) write(`${label(k)}: ${s.state}: ${s.err}\n`);
        }
      }
      const update = svc.UpdateStatus?.State ?? '';
      if (update === 'paused' || update === 'rollback_paused')
        throw new UpdatePausedError(svc.Spec?.Name ?? serviceId, update, svc.UpdateStatus?.Message ?? '');
      // a rolling update (or rollback) still running: the old tasks may all run, it is not done
      if (c.done && update !== 'updating' && update !== 'rollback_started') {
        write(c.job ? 'job complete\n' : `verify: Service ${svc.Spec?.Name ?? serviceId} converged\n`);
        return;
      }
      const stopped = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), opts.intervalMs ?? 250);
        controller.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve(true);
          },
          { once: true },
        );
      });
      if (stopped || controller.signal.aborted) {
        write(`Operation continuing in background.\nUse \`shoal service ps ${serviceId}\` to check progress.\n`);
        return;
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}
