/**
 * The scheduler (leader only): pending tasks -> a node. Each pass reads the nodes and tasks,
 * builds what every node holds (node-info.ts), and places the pending tasks service by service
 * (placement.ts). The decisions of one service are written in one store transaction: placed
 * tasks get `NodeID` and state `assigned` ("scheduler assigned task to node"); tasks that fit
 * nowhere stay `pending` with `Status.Err` saying why (written only when the reason changes).
 * A pass runs again whenever a node or a task changes, so pending tasks are retried when a node
 * comes up, gets a label, or a task ends and frees its resources.
 *
 * Tasks of global services come with `NodeID` preset: that node is checked with the same
 * filters, and the task stays pending with the reason when it does not fit (any more).
 */
import { taskStateRank, type Task } from '@shoal/api';
import { errorMessage } from '@shoal/common';
import { type Change, type StoredObject, VersionConflictError } from '@shoal/store';
import type { ManagerContext, StoredNode } from '../context.js';
import { WatchLoop, WatchLoopDriven } from '../watch-loop.js';
import { buildNodeInfos, type NodeInfo } from './node-info.js';
import { type Decision, needsKey, needsOf, placeGroup, placeOnNode } from './placement.js';

export type StoredTask = Task & StoredObject;

export const ASSIGNED_MESSAGE = 'scheduler assigned task to node';
export const PENDING_MESSAGE = 'pending task scheduling';

const PENDING = taskStateRank('pending');
const COMPLETE = taskStateRank('complete');

/** True for a task the scheduler should place: pending, and still wanted. */
export function isSchedulable(t: Task): boolean {
  return taskStateRank(t.Status?.State ?? '') === PENDING && taskStateRank(t.DesiredState ?? '') <= COMPLETE;
}

/** One service's pending tasks and what the pass decided for them. */
export interface ServiceDecisions {
  readonly serviceId: string;
  readonly tasks: readonly StoredTask[];
  readonly decisions: readonly Decision[];
}

/**
 * Decides for every pending task (pure: reads only its arguments). The services are taken in
 * the order of their oldest pending task; within a service, by slot then ID.
 */
export function schedule(nodes: readonly StoredNode[], tasks: readonly StoredTask[]): ServiceDecisions[] {
  const pending = new Map<string, StoredTask[]>();
  for (const t of tasks) {
    if (!isSchedulable(t)) continue;
    const sid = t.ServiceID ?? '';
    const list = pending.get(sid);
    if (list === undefined) pending.set(sid, [t]);
    else list.push(t);
  }
  if (pending.size === 0) return [];
  const infos = buildNodeInfos(nodes, tasks);
  const all: NodeInfo[] = [...infos.values()];
  const out: ServiceDecisions[] = [];
  for (const [serviceId, list] of pending) {
    list.sort((a, b) => (a.Slot ?? 0) - (b.Slot ?? 0) || (a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0));
    const decisions: Decision[] = new Array<Decision>(list.length);
    const groups = new Map<string, number[]>();
    for (const [i, t] of list.entries()) {
      if ((t.NodeID ?? '') !== '') {
        decisions[i] = placeOnNode(infos.get(t.NodeID ?? ''), t.NodeID ?? '', needsOf(t));
        continue;
      }
      const key = t.SpecVersion?.Index !== undefined ? `v${t.SpecVersion.Index}` : needsKey(t);
      const g = groups.get(key);
      if (g === undefined) groups.set(key, [i]);
      else g.push(i);
    }
    for (const g of groups.values()) {
      const first = list[g[0] ?? -1];
      if (first === undefined) continue;
      const ds = placeGroup(all, g.length, needsOf(first));
      for (const [k, i] of g.entries()) decisions[i] = ds[k] ?? { err: 'no decision' };
    }
    out.push({ serviceId, tasks: list, decisions });
  }
  return out;
}

/** The task as the decision leaves it, or undefined when nothing changes. */
export function applyDecision(t: StoredTask, d: Decision, now: string): StoredTask | undefined {
  if ('nodeId' in d) {
    return {
      ...t,
      NodeID: d.nodeId,
      Status: { ...t.Status, State: 'assigned', Message: ASSIGNED_MESSAGE, Err: '', Timestamp: now },
    };
  }
  if (t.Status?.Err === d.err) return undefined;
  return { ...t, Status: { ...t.Status, Message: PENDING_MESSAGE, Err: d.err, Timestamp: now } };
}

export interface PassResult {
  readonly assigned: number;
  readonly unschedulable: number;
  readonly transactions: number;
}

/** What a pass decided: per service, the tasks to write. */
export interface Plan {
  readonly assigned: number;
  readonly unschedulable: number;
  /** One transaction each (a service too large for one has several, see MAX_WRITE_BYTES). */
  readonly services: readonly PlannedService[];
}

interface PlannedService {
  readonly serviceId: string;
  readonly updates: readonly StoredTask[];
  /** Estimated size of the transaction (JSON bytes). */
  readonly bytes: number;
}

/**
 * Most bytes of task writes in one transaction, and in one wave of transactions proposed
 * together (the store puts the transactions of one event-loop turn in one Raft entry, and an
 * entry must fit the Raft transport's 16 MiB frame). A service whose pending tasks need more
 * is still placed in one pass, and written in several transactions, one after the other; a
 * few thousand tasks of a usual spec fit in one.
 */
export const MAX_WRITE_BYTES = 4 * 1024 * 1024;

export class Scheduler extends WatchLoopDriven {
  protected readonly loop: WatchLoop;

  constructor(private readonly ctx: ManagerContext) {
    super();
    this.loop = new WatchLoop({
      name: 'scheduler',
      store: ctx.store,
      logger: ctx.logger,
      kinds: ['node', 'task'],
      run: async () => {
        await this.pass();
      },
      relevant: (c) => relevant(c),
    });
  }

  /**
   * One pass: decides for every pending task and writes each service's decisions in one
   * transaction. A service whose transaction meets a concurrent change (version conflict) is
   * decided again by the next pass.
   */
  async pass(): Promise<PassResult> {
    return this.write(this.plan());
  }

  /** The decisions of a pass as one list of task writes per service (nothing written yet). */
  plan(): Plan {
    const store = this.ctx.store;
    const decided = schedule(store.list<StoredNode>('node'), store.list<StoredTask>('task'));
    const now = new Date(this.ctx.clock.now()).toISOString();
    let assigned = 0;
    let unschedulable = 0;
    const services: PlannedService[] = [];
    for (const s of decided) {
      const updates: StoredTask[] = [];
      for (const [i, t] of s.tasks.entries()) {
        const d = s.decisions[i];
        if (d === undefined) continue;
        if ('nodeId' in d) assigned++;
        else unschedulable++;
        const next = applyDecision(t, d, now);
        if (next !== undefined) updates.push(next);
      }
      const first = updates[0];
      if (first === undefined) continue;
      // Estimated from one task: the tasks of a service share their spec.
      const each = JSON.stringify(first).length;
      const limit = Math.max(1, Math.floor(MAX_WRITE_BYTES / each));
      for (let i = 0; i < updates.length; i += limit) {
        const part = updates.length <= limit ? updates : updates.slice(i, i + limit);
        services.push({ serviceId: s.serviceId, updates: part, bytes: each * part.length });
      }
    }
    return { assigned, unschedulable, services };
  }

  /**
   * Writes a plan: one transaction per service, proposed in waves of at most MAX_WRITE_BYTES
   * (each wave waits for the one before).
   */
  async write(plan: Plan): Promise<PassResult> {
    let conflict = false;
    const writeOne = ({ serviceId, updates }: PlannedService): Promise<unknown> =>
      this.ctx.store
        .update((tx) => {
          for (const u of updates) tx.update('task', u);
        })
        .catch((err: unknown) => {
          if (!(err instanceof VersionConflictError)) throw err;
          conflict = true;
          this.ctx.logger.debug({ serviceId, err: errorMessage(err) }, 'scheduler: task changed meanwhile');
        });
    let wave: PlannedService[] = [];
    let bytes = 0;
    for (const s of plan.services) {
      if (wave.length > 0 && bytes + s.bytes > MAX_WRITE_BYTES) {
        await Promise.all(wave.map(writeOne));
        wave = [];
        bytes = 0;
      }
      wave.push(s);
      bytes += s.bytes;
    }
    await Promise.all(wave.map(writeOne));
    if (conflict) this.loop.kick();
    const { assigned, unschedulable } = plan;
    const transactions = plan.services.length;
    if (assigned > 0 || unschedulable > 0) {
      this.ctx.logger.debug({ assigned, unschedulable, transactions }, 'scheduler pass');
    }
    return { assigned, unschedulable, transactions };
  }
}

/** Store changes that can change a decision: any node change, and tasks that get or free a place. */
function relevant(c: Change): boolean {
  if (c.kind === 'node') return true;
  const t = c.object as Task;
  const p = c.previous as Task | undefined;
  if (c.action !== 'update' || p === undefined) return true;
  // A task's own assignment by this scheduler, or a worker moving it from one running state to
  // the next, changes no decision: what it holds stays the same.
  const s = taskStateRank(t.Status?.State ?? '');
  const ps = taskStateRank(p.Status?.State ?? '');
  if (isSchedulable(t)) return !isSchedulable(p) || (t.Status?.Err ?? '') === (p.Status?.Err ?? '');
  if (t.DesiredState !== p.DesiredState || t.NodeID !== p.NodeID) return true;
  return s >= COMPLETE !== ps >= COMPLETE;
}
