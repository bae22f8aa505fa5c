/**
 * What the orchestrators know about tasks: which are active (desired ready, running or
 * complete), which ended on their own, which may still run on a node, and how a new task is made
 * from its service (SwarmKit's lifecycle: state `new`, the service's TaskTemplate, SpecVersion
 * and Endpoint, a slot or a node).
 */
import { isTerminalTaskState, serviceModeName, type Task, type TaskSpec, taskStateRank } from '@shoal/api';
import { newObjectId } from '@shoal/common';
import type { StoredNode } from '../context.js';
import type { StoredService, StoredTask } from '../services/objects.js';

/** A task the orchestrator still wants: desired ready (held back), running or complete (jobs). */
export function isActive(t: Task): boolean {
  const r = taskStateRank(t.DesiredState ?? '');
  return r >= 0 && r <= taskStateRank('complete');
}

export function observed(t: Task): string {
  return t.Status?.State ?? 'new';
}

export function isEnded(t: Task): boolean {
  return isTerminalTaskState(observed(t));
}

/** The task's container exited or never started by itself (not stopped by a manager). */
export function endedOnItsOwn(t: Task): boolean {
  const s = observed(t);
  return s === 'complete' || s === 'failed' || s === 'rejected';
}

/** A node that takes part: it exists and is not down. */
export function nodeUp(n: StoredNode | undefined): n is StoredNode {
  return n !== undefined && n.Status?.State !== 'down';
}

/**
 * The task may still have a container running: it reached a node (assigned or later), has not
 * ended, and its node is not down or gone (a down node's tasks are replaced; its worker stops
 * them when it comes back, since their desired state is shutdown).
 */
export function mayRun(t: Task, nodes: ReadonlyMap<string, StoredNode>): boolean {
  if (isEnded(t)) return false;
  if ((t.NodeID ?? '') === '' || taskStateRank(observed(t)) < taskStateRank('assigned')) return false;
  return nodeUp(nodes.get(t.NodeID ?? ''));
}

/** A task the reaper may delete once nothing wants it: it ended, never reached a node, or its node is down or gone. */
export function reapable(t: Task, nodes: ReadonlyMap<string, StoredNode>): boolean {
  return !mayRun(t, nodes);
}

export function createdMs(t: { CreatedAt?: string | undefined }): number {
  const v = Date.parse(t.CreatedAt ?? '');
  return Number.isNaN(v) ? 0 : v;
}

export function updatedMs(t: { UpdatedAt?: string | undefined }): number {
  const v = Date.parse(t.UpdatedAt ?? '');
  return Number.isNaN(v) ? 0 : v;
}

/**
 * Newest first: by creation time; at equal times (one clock tick) active tasks first, then the
 * ones that have not ended, then by ID.
 */
export function newestFirst(a: StoredTask, b: StoredTask): number {
  return (
    createdMs(b) - createdMs(a) ||
    Number(isActive(b)) - Number(isActive(a)) ||
    Number(!isEnded(b)) - Number(!isEnded(a)) ||
    (a.ID < b.ID ? 1 : a.ID > b.ID ? -1 : 0)
  );
}

export function isJob(s: StoredService): boolean {
  const m = serviceModeName(s.Spec ?? {});
  return m === 'replicated-job' || m === 'global-job';
}

/** The desired state of a task that may start: running, or complete for jobs. */
export function runState(s: StoredService): 'running' | 'complete' {
  return isJob(s) ? 'complete' : 'running';
}

export function specVersionOf(s: StoredService): number {
  return s.SpecVersion?.Index ?? 0;
}

export function isCurrent(t: Task, s: StoredService): boolean {
  return (t.SpecVersion?.Index ?? 0) === specVersionOf(s);
}

/**
 * One copy of the TaskTemplate per service object, shared by the tasks a pass creates (they are
 * serialized into the transaction and never changed in place).
 */
const templates = new WeakMap<StoredService, TaskSpec>();

function templateOf(service: StoredService): TaskSpec {
  let t = templates.get(service);
  if (t === undefined) {
    t = structuredClone(service.Spec?.TaskTemplate ?? {});
    templates.set(service, t);
  }
  return t;
}

/** A new task of `service` for a slot (replicated) or a node (global: slot 0, NodeID preset). */
export function newTask(
  service: StoredService,
  where: { slot: number; nodeId: string },
  desired: 'ready' | 'running' | 'complete',
  nowIso: string,
): Omit<StoredTask, 'Version' | 'CreatedAt' | 'UpdatedAt'> & Record<string, unknown> {
  const id = newObjectId();
  const name = service.Spec?.Name ?? '';
  const job = isJob(service);
  return {
    ID: id,
    Name: `${name}.${where.slot > 0 ? String(where.slot) : where.nodeId}.${id}`,
    Labels: {},
    Spec: templateOf(service),
    ServiceID: service.ID,
    ServiceName: name,
    Slot: where.slot,
    NodeID: where.nodeId,
    Status: { State: 'new', Timestamp: nowIso, Message: 'created', Err: '' },
    DesiredState: desired,
    SpecVersion: { Index: specVersionOf(service) },
    ...(service.Endpoint === undefined ? {} : { Endpoint: structuredClone(service.Endpoint) }),
    ...(job ? { JobIteration: { Index: specVersionOf(service) } } : {}),
  };
}
