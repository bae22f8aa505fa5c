/**
 * The orchestrator: a leader-only loop that turns services into tasks. It watches services,
 * tasks, nodes and the cluster; every change marks the services concerned, and each marked
 * service gets a pass (replicated, global, replicated-job or global-job, then the reaper) whose
 * writes go in ONE store transaction. A pass reads only the store, so a new leader continues
 * where the old one stopped: on every start it first waits for the store to have applied every
 * committed write (a read index), then passes over every service. A version conflict (somebody
 * wrote in between) runs the pass again; restart delays ending wake it through the Clock.
 */
import { serviceModeName } from '@shoal/api';
import { errorKind } from '@shoal/common';
import { VersionConflictError, ObjectExistsError } from '@shoal/store';
import { type ManagerContext, type StoredCluster, type StoredNode } from '../context.js';
import type { StoredService, StoredTask } from '../services/objects.js';
import { reconcileGlobal } from './global.js';
import { reconcileGlobalJob, reconcileReplicatedJob } from './jobs.js';
import { Plan } from './plan.js';
import { reap } from './reaper.js';
import { reconcileReplicated } from './replicated.js';

const RETRY_MS = 1000;
/** Writes (tasks created, changed or removed) gathered into one transaction before it is committed. */
const MAX_BATCH_WRITES = 2000;

export class Orchestrator {
  private ac: AbortController | undefined;
  private readonly dirty = new Set<string>();
  private all = false;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly wakes = new Map<string, number>();
  private timer: { cancel(): void; at: number } | undefined;
  /** Passes that wrote something (for tests and the log). */
  passes = 0;

  constructor(private readonly ctx: ManagerContext) {}

  get isRunning(): boolean {
    return this.ac !== undefined;
  }

  start(): void {
    if (this.ac !== undefined) return;
    const ac = new AbortController();
    this.ac = ac;
    this.all = true;
    void this.watch(ac.signal);
    this.kick();
  }

  stop(): void {
    this.ac?.abort();
    this.ac = undefined;
    this.timer?.cancel();
    this.timer = undefined;
    this.wakes.clear();
    this.dirty.clear();
  }

  /** Resolves once no pass is running or due (tests). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async watch(signal: AbortSignal): Promise<void> {
    try {
      for await (const c of this.ctx.store.watch({ kinds: ['service', 'task', 'node', 'cluster'], signal })) {
        if (c.kind === 'service') this.dirty.add(c.object.ID);
        else if (c.kind === 'task') this.dirty.add((c.object as StoredTask).ServiceID ?? '');
        else this.all = true;
        this.kick();
      }
    } catch (err) {
      if (signal.aborted) return;
      this.ctx.logger.warn({ err: (err as Error).message }, 'orchestrator watch ended: starting again');
      if (this.ac?.signal === signal) {
        this.all = true;
        this.ctx.clock.setTimeout(() => {
          if (this.ac?.signal === signal) {
            void this.watch(signal);
            this.kick();
          }
        }, RETRY_MS);
      }
    }
  }

  private kick(): void {
    if (this.ac === undefined) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    const signal = this.ac.signal;
    this.running = this.drain(signal).finally(() => {
      this.running = undefined;
      if (this.again && !signal.aborted) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async drain(signal: AbortSignal): Promise<void> {
    try {
      if (this.all) await this.ctx.store.linearizable(signal);
    } catch (err) {
      if (signal.aborted) return;
      this.ctx.logger.debug({ err: (err as Error).message }, 'orchestrator: store not readable yet');
      this.retryLater(signal);
      return;
    }
    for (;;) {
      // Let the watch take every change already published (one commit can publish thousands)
      // before passing: one pass then covers them all, instead of one pass per few changes.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (signal.aborted || (!this.all && this.dirty.size === 0)) return;
      let ids: string[];
      if (this.all) {
        this.all = false;
        const known = new Set(this.ctx.store.list<StoredService>('service').map((s) => s.ID));
        for (const t of this.ctx.store.list<StoredTask>('task')) known.add(t.ServiceID ?? '');
        ids = [...known];
      } else ids = [...this.dirty];
      this.dirty.clear();
      // The marked services' passes go in as few transactions as possible (a stack deploy marks
      // ten services at once: one commit instead of ten in a row).
      for (let i = 0; i < ids.length;) {
        if (signal.aborted) return;
        const batch: { id: string; plan: Plan }[] = [];
        let writes = 0;
        try {
          for (; i < ids.length && writes < MAX_BATCH_WRITES; i++) {
            const id = ids[i] ?? '';
            const plan = this.plan(id);
            batch.push({ id, plan });
            writes += plan.writes;
          }
          await this.commit(batch);
        } catch (err) {
          if (signal.aborted) return;
          for (const b of batch) this.dirty.add(b.id);
          if (err instanceof VersionConflictError || err instanceof ObjectExistsError) continue;
          this.ctx.logger.warn(
            { services: batch.map((b) => b.id), err: (err as Error).message, kind: errorKind(err) },
            'orchestrator pass failed',
          );
          for (; i < ids.length; i++) this.dirty.add(ids[i] ?? '');
          this.retryLater(signal);
          return;
        }
      }
    }
  }

  private retryLater(signal: AbortSignal): void {
    this.ctx.clock.setTimeout(() => {
      if (!signal.aborted) this.kick();
    }, RETRY_MS);
  }

  /** One pass over one service (or over the leftover tasks of a removed one), committed. */
  async pass(serviceId: string): Promise<void> {
    await this.commit([{ id: serviceId, plan: this.plan(serviceId) }]);
  }

  /** What a pass over one service (or the leftover tasks of a removed one) would write. */
  private plan(serviceId: string): Plan {
    const store = this.ctx.store;
    const now = this.ctx.clock.now();
    const plan = new Plan(now, new Date(now).toISOString());
    const service = serviceId === '' ? undefined : store.get<StoredService>('service', serviceId);
    const tasks = store.find<StoredTask>('task', 'service', serviceId);
    const nodes = new Map(store.list<StoredNode>('node').map((n) => [n.ID, n]));
    const cluster = store.list<StoredCluster>('cluster')[0];
    if (service !== undefined) {
      const v = { service, nodes, plan };
      switch (serviceModeName(service.Spec ?? {})) {
        case 'replicated':
          reconcileReplicated(v, tasks);
          break;
        case 'global':
          reconcileGlobal(v, tasks);
          break;
        case 'replicated-job':
          reconcileReplicatedJob(v, tasks);
          break;
        case 'global-job':
          reconcileGlobalJob(v, tasks);
          break;
      }
    }
    reap(plan, service, tasks, nodes, cluster?.Spec?.Orchestration?.TaskHistoryRetentionLimit);
    return plan;
  }

  /** Commits the plans of several services in one transaction, then notes when each wants to run again. */
  private async commit(batch: readonly { id: string; plan: Plan }[]): Promise<void> {
    const writing = batch.filter((b) => !b.plan.empty);
    if (writing.length > 0) {
      await this.ctx.store.update((tx) => {
        for (const b of writing) b.plan.apply(tx);
      });
      this.passes += writing.length;
      for (const { id, plan } of writing)
        this.ctx.logger.debug(
          {
            service: this.ctx.store.get<StoredService>('service', id)?.Spec?.Name ?? id,
            created: plan.creates.length,
            updated: plan.updates.size,
            deleted: plan.removes.size,
            batch: writing.length,
          },
          'orchestrator pass',
        );
    }
    for (const { id, plan } of batch) {
      if (plan.wakeAt === undefined) this.wakes.delete(id);
      else this.wakes.set(id, plan.wakeAt);
    }
    this.armTimer();
  }

  private armTimer(): void {
    let next: number | undefined;
    for (const at of this.wakes.values()) if (next === undefined || at < next) next = at;
    if (next === undefined || (this.timer !== undefined && this.timer.at <= next)) return;
    this.timer?.cancel();
    const signal = this.ac?.signal;
    const at = next;
    const t = this.ctx.clock.setTimeout(
      () => {
        if (this.timer?.at === at) this.timer = undefined;
        if (signal === undefined || signal.aborted) return;
        const now = this.ctx.clock.now();
        for (const [id, w] of this.wakes) {
          if (w <= now) {
            this.wakes.delete(id);
            this.dirty.add(id);
          }
        }
        this.armTimer();
        this.kick();
      },
      Math.max(0, at - this.ctx.clock.now()),
    );
    this.timer = { cancel: () => t.cancel(), at };
  }
}
