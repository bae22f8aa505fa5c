/**
 * The scheduler's pure core: which node gets each pending task of one group (the tasks of one
 * service with the same placement needs).
 *
 * 1. Filters, in order (the first that fails names the reason for that node): node ready and
 *    availability active; CPU and memory reservations within what the node has left;
 *    constraints; platform; host-mode published ports free; fewer than MaxReplicas tasks of the
 *    service on the node.
 * 2. The nodes that pass form a tree: one level per placement preference (`spread=node.labels.X`,
 *    nodes without the label form their own branch), leaves are nodes. Each branch keeps a heap
 *    of its children ordered by tasks of the service, then tasks in all, then name; a task goes
 *    down the tops of the heaps, so branches and then nodes fill evenly. After a placement only
 *    the keys along that path grew: one sift per level, O(depth x log n) per task.
 * 3. A node whose resources, ports or replica cap run out during the pass drops out of its heap
 *    with its reason (the tasks of a group need the same, so it cannot fit a later one either).
 *    When the root is empty, the rest of the group stays pending with the reasons counted, e.g.
 *    `no suitable node (2 nodes not available for new tasks; 3 nodes insufficient memory)`.
 */
import type { Platform, Task } from '@shoal/api';
import { InvalidRequestError } from '../errors.js';
import { type Constraint, constraintsMatch, normalizeArch, parseConstraints } from '../services/constraint.js';
import { Heap } from './heap.js';
import { addTask, hostPortsOf, type NodeInfo } from './node-info.js';

/** What every task of a group needs from a node. */
export interface Needs {
  readonly serviceId: string;
  readonly cpu: number;
  readonly mem: number;
  readonly ports: readonly string[];
  readonly maxReplicas: number;
  /** Parsed constraints, or the parse error (then no node fits). */
  readonly constraints: readonly Constraint[] | string;
  readonly platforms: readonly Platform[];
  /** Spread descriptors, outermost first (`node.labels.zone`). */
  readonly spread: readonly string[];
}

export function needsOf(t: Task): Needs {
  const r = t.Spec?.Resources?.Reservations;
  const p = t.Spec?.Placement;
  return {
    serviceId: t.ServiceID ?? '',
    cpu: r?.NanoCPUs ?? 0,
    mem: r?.MemoryBytes ?? 0,
    ports: hostPortsOf(t),
    maxReplicas: p?.MaxReplicas ?? 0,
    constraints: constraintsOrReason(p?.Constraints),
    platforms: p?.Platforms ?? [],
    spread: (p?.Preferences ?? []).map((x) => x.Spread?.SpreadDescriptor ?? '').filter((d) => d !== ''),
  };
}

/**
 * The task's constraints; a bad one (the Control API refuses them, so only one stored some
 * other way) becomes the reason the task stays pending instead of failing the scheduler.
 */
function constraintsOrReason(exprs: readonly string[] | undefined): Constraint[] | string {
  try {
    return parseConstraints(exprs);
  } catch (err) {
    if (err instanceof InvalidRequestError) return err.message;
    throw err;
  }
}

/** A key equal for tasks with the same needs (they can share one placement tree). */
export function needsKey(t: Task): string {
  const p = t.Spec?.Placement;
  return JSON.stringify([
    t.Spec?.Resources?.Reservations?.NanoCPUs ?? 0,
    t.Spec?.Resources?.Reservations?.MemoryBytes ?? 0,
    hostPortsOf(t),
    p?.MaxReplicas ?? 0,
    p?.Constraints ?? [],
    p?.Platforms ?? [],
    p?.Preferences ?? [],
  ]);
}

/** Reasons a node is not suitable, in the filters' order (ties in the message follow it). */
export const REASONS = {
  notAvailable: [0, 'not available for new tasks'],
  cpu: [1, 'insufficient CPU'],
  memory: [2, 'insufficient memory'],
  constraints: [3, 'not matching the placement constraints'],
  platform: [4, 'unsupported platform'],
  hostPort: [5, 'host-mode port in use'],
  maxReplicas: [6, 'at max replicas per node'],
} as const satisfies Record<string, readonly [number, string]>;
type Reason = (typeof REASONS)[keyof typeof REASONS];

/** Counts the reasons nodes were left out, for the pending task's `Status.Err`. */
export class Explain {
  private readonly counts = new Map<Reason, number>();

  add(r: Reason): void {
    this.counts.set(r, (this.counts.get(r) ?? 0) + 1);
  }

  /** Docker's form: most frequent reason first. */
  message(): string {
    const parts = [...this.counts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0][0] - b[0][0])
      .map(([[, text], n]) => `${n} node${n === 1 ? '' : 's'} ${text}`);
    return `no suitable node (${parts.length === 0 ? 'no nodes in the swarm' : parts.join('; ')})`;
  }
}

/** The filters that do not change while a pass places tasks. */
function staticReason(info: NodeInfo, needs: Needs): Reason | undefined {
  const n = info.node;
  if (n.Status?.State !== 'ready' || (n.Spec?.Availability ?? 'active') !== 'active') return REASONS.notAvailable;
  const dyn = resourceReason(info, needs);
  if (dyn !== undefined) return dyn;
  if (typeof needs.constraints !== 'string' && !constraintsMatch(needs.constraints, n)) return REASONS.constraints;
  if (!platformFits(needs.platforms, n.Description?.Platform)) return REASONS.platform;
  return dynamicReason(info, needs);
}

function resourceReason(info: NodeInfo, needs: Needs): Reason | undefined {
  if (needs.cpu > 0 && needs.cpu > info.cpuLeft) return REASONS.cpu;
  if (needs.mem > 0 && needs.mem > info.memLeft) return REASONS.memory;
  return undefined;
}

/** The filters a placement in this pass can turn from fitting to not fitting. */
function dynamicReason(info: NodeInfo, needs: Needs): Reason | undefined {
  const r = resourceReason(info, needs);
  if (r !== undefined) return r;
  for (const p of needs.ports) if (info.hostPorts.has(p)) return REASONS.hostPort;
  if (needs.maxReplicas > 0 && (info.perService.get(needs.serviceId) ?? 0) >= needs.maxReplicas) {
    return REASONS.maxReplicas;
  }
  return undefined;
}

function platformFits(wanted: readonly Platform[], have: Platform | undefined): boolean {
  if (wanted.length === 0 || have === undefined) return true;
  const os = (have.OS ?? '').toLowerCase();
  const arch = normalizeArch(have.Architecture ?? '');
  return wanted.some(
    (p) =>
      ((p.OS ?? '') === '' || p.OS?.toLowerCase() === os) &&
      ((p.Architecture ?? '') === '' || normalizeArch(p.Architecture ?? '') === arch),
  );
}

/** Counts a task placed on `info`. */
export function place(info: NodeInfo, needs: Needs): void {
  addTask(info, needs.serviceId, needs.cpu, needs.mem, needs.ports);
}

interface Entry {
  svc: number;
  total: number;
  readonly key: string;
  readonly info?: NodeInfo;
  readonly heap?: Heap<Entry>;
}

const less = (a: Entry, b: Entry): boolean =>
  a.svc !== b.svc ? a.svc < b.svc : a.total !== b.total ? a.total < b.total : a.key < b.key;

function spreadValue(descriptor: string, info: NodeInfo): string {
  const lower = descriptor.toLowerCase();
  if (lower.startsWith('node.labels.')) return info.node.Spec?.Labels?.[descriptor.slice(12)] ?? '';
  if (lower.startsWith('engine.labels.')) return info.node.Description?.Engine?.Labels?.[descriptor.slice(14)] ?? '';
  return '';
}

function branch(key: string, nodes: readonly NodeInfo[], spread: readonly string[], serviceId: string): Entry {
  let children: Entry[];
  const [first, ...rest] = spread;
  if (first === undefined) {
    children = nodes.map((info) => ({
      svc: info.perService.get(serviceId) ?? 0,
      total: info.total,
      key: info.sortKey,
      info,
    }));
  } else {
    const groups = new Map<string, NodeInfo[]>();
    for (const info of nodes) {
      const v = spreadValue(first, info);
      const g = groups.get(v);
      if (g === undefined) groups.set(v, [info]);
      else g.push(info);
    }
    children = [...groups].map(([v, g]) => branch(v, g, rest, serviceId));
  }
  let svc = 0;
  let total = 0;
  for (const c of children) {
    svc += c.svc;
    total += c.total;
  }
  return { svc, total, key, heap: new Heap(children, less) };
}

/** The next node of the tree for a task, or undefined when every node dropped out. */
function pick(b: Entry, needs: Needs, explain: Explain): NodeInfo | undefined {
  const heap = b.heap;
  if (heap === undefined) return undefined;
  for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
    let got: NodeInfo | undefined;
    if (top.info !== undefined) {
      const r = dynamicReason(top.info, needs);
      if (r === undefined) got = top.info;
      else explain.add(r);
    } else {
      got = pick(top, needs, explain);
    }
    if (got !== undefined) {
      top.svc++;
      top.total++;
      heap.siftTop();
      return got;
    }
    heap.pop();
  }
  return undefined;
}

export type Decision = { readonly nodeId: string } | { readonly err: string };

/**
 * Places `count` tasks of one group (same service, same needs, NodeID not preset) on `nodes`,
 * updating the NodeInfos as it goes. Returns one decision per task, in order.
 */
export function placeGroup(nodes: Iterable<NodeInfo>, count: number, needs: Needs): Decision[] {
  if (typeof needs.constraints === 'string') {
    const err = { err: `no suitable node (${needs.constraints})` };
    return new Array<Decision>(count).fill(err);
  }
  const explain = new Explain();
  const fit: NodeInfo[] = [];
  for (const info of nodes) {
    const r = staticReason(info, needs);
    if (r === undefined) fit.push(info);
    else explain.add(r);
  }
  const root = branch('', fit, needs.spread, needs.serviceId);
  const out: Decision[] = [];
  let err: string | undefined;
  for (let i = 0; i < count; i++) {
    const info = err === undefined ? pick(root, needs, explain) : undefined;
    if (info === undefined) {
      err ??= explain.message();
      out.push({ err });
      continue;
    }
    place(info, needs);
    out.push({ nodeId: info.id });
  }
  return out;
}

/** A task whose node is preset (global services): that node if it still fits. */
export function placeOnNode(info: NodeInfo | undefined, nodeId: string, needs: Needs): Decision {
  if (typeof needs.constraints === 'string') return { err: `no suitable node (${needs.constraints})` };
  if (info === undefined) return { err: `no suitable node (node ${nodeId} is not in the swarm)` };
  const r = staticReason(info, needs);
  if (r !== undefined) {
    const e = new Explain();
    e.add(r);
    return { err: e.message() };
  }
  place(info, needs);
  return { nodeId: info.id };
}
