/**
 * Where a task's start spends its time in the managers (leader only): from the store's change
 * feed, the wall-clock time this manager saw each task first committed as `new` (created by an
 * orchestrator), `pending` (allocated), `assigned` (scheduled) and `running` (the node's report
 * committed), logged as one `task start trace` line when it runs. The worker logs its own side
 * (packages/worker/src/start-trace.ts) with the wall-clock time it took the task, so the two line
 * up (`npm run bench:stack -- --keep-logs DIR` keeps the logs; scripts/start-trace.mjs sums up).
 */
import type { Task } from '@shoal/api';
import { errorMessage } from '@shoal/common';
import type { ManagerContext } from './context.js';

const STEPS = ['new', 'pending', 'assigned', 'running'] as const;
type Step = (typeof STEPS)[number];
/** Tasks followed at most at once (older ones are dropped untraced). */
const MAX_TRACKED = 20_000;

export class StartTraces {
  private readonly seen = new Map<string, Partial<Record<Step, number>>>();
  private abort: AbortController | undefined;

  constructor(private readonly ctx: ManagerContext) {}

  start(): void {
    if (this.abort) return;
    const ac = new AbortController();
    this.abort = ac;
    void this.follow(ac.signal);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    this.seen.clear();
  }

  private async follow(signal: AbortSignal): Promise<void> {
    const store = this.ctx.store;
    try {
      for await (const c of store.watch({ fromRevision: store.revision, kinds: ['task'], signal })) {
        const t = c.object as Task;
        if (!t.ID) continue;
        if (c.action === 'remove') {
          this.seen.delete(t.ID);
          continue;
        }
        const state = t.Status?.State ?? 'new';
        if (!(STEPS as readonly string[]).includes(state)) continue;
        let marks = this.seen.get(t.ID);
        if (!marks) {
          if (state !== 'new') continue; // made before this manager followed: not traced
          if (this.seen.size >= MAX_TRACKED) this.seen.delete(this.seen.keys().next().value ?? '');
          marks = {};
          this.seen.set(t.ID, marks);
        }
        marks[state as Step] ??= Date.now();
        if (state === 'running') {
          this.seen.delete(t.ID);
          const t0 = marks.new ?? 0;
          this.ctx.logger.info(
            {
              task: t.ID,
              service: t.ServiceID,
              node: t.NodeID,
              at: t0,
              steps: Object.fromEntries(
                STEPS.filter((s) => marks[s] !== undefined).map((s) => [s, (marks[s] ?? 0) - t0]),
              ),
            },
            'task start trace',
          );
        }
      }
    } catch (err) {
      if (!signal.aborted) this.ctx.logger.warn({ err: errorMessage(err) }, 'start traces: watch ended');
    }
  }
}
