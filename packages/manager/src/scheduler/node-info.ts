/**
 * What the scheduler knows of a node during one pass: the node, how many tasks it holds (all,
 * and per service), the CPU and memory left after the reservations of those tasks, and the
 * host-mode ports they publish. Built from the store at the start of a pass, then updated as
 * the pass places tasks.
 */
import { taskStateRank, type Task } from '@shoal/api';
import type { StoredNode } from '../context.js';

export interface NodeInfo {
  readonly id: string;
  readonly node: StoredNode;
  /** Orders nodes that tie on task counts: hostname, then ID. */
  readonly sortKey: string;
  total: number;
  readonly perService: Map<string, number>;
  cpuLeft: number;
  memLeft: number;
  /** `PORT/PROTOCOL` of the host-mode ports in use. */
  readonly hostPorts: Set<string>;
}

const ASSIGNED = taskStateRank('assigned');
const COMPLETE = taskStateRank('complete');

/**
 * True when `t` holds a place on its node: it was assigned there, has not ended, and the
 * managers still want it (desired running, ready or complete). Its reservations and ports count
 * against the node until then.
 */
export function holdsNode(t: Task): boolean {
  if ((t.NodeID ?? '') === '') return false;
  const s = taskStateRank(t.Status?.State ?? '');
  return s >= ASSIGNED && s < COMPLETE && taskStateRank(t.DesiredState ?? '') <= COMPLETE;
}

/** The host-mode published ports of a task (`PORT/PROTOCOL`); dynamic ones (0) never conflict. */
export function hostPortsOf(t: Task): string[] {
  const ports = (t.Endpoint?.Ports ?? []).length > 0 ? (t.Endpoint?.Ports ?? []) : (t.Endpoint?.Spec?.Ports ?? []);
  const out: string[] = [];
  for (const p of ports) {
    if (p.PublishMode === 'host' && (p.PublishedPort ?? 0) > 0) out.push(`${p.PublishedPort}/${p.Protocol || 'tcp'}`);
  }
  return out;
}

export function newNodeInfo(node: StoredNode): NodeInfo {
  return {
    id: node.ID,
    node,
    sortKey: `${node.Description?.Hostname ?? ''}\0${node.ID}`,
    total: 0,
    perService: new Map(),
    cpuLeft: node.Description?.Resources?.NanoCPUs ?? 0,
    memLeft: node.Description?.Resources?.MemoryBytes ?? 0,
    hostPorts: new Set(),
  };
}

/** Counts `t` on `info`: one more task (of its service), its reservations and its ports. */
export function addTask(info: NodeInfo, serviceId: string, cpu: number, mem: number, ports: readonly string[]): void {
  info.total++;
  info.perService.set(serviceId, (info.perService.get(serviceId) ?? 0) + 1);
  info.cpuLeft -= cpu;
  info.memLeft -= mem;
  for (const p of ports) info.hostPorts.add(p);
}

/** Every node, with the tasks that hold a place on it. */
export function buildNodeInfos(nodes: readonly StoredNode[], tasks: Iterable<Task>): Map<string, NodeInfo> {
  const infos = new Map<string, NodeInfo>();
  for (const n of nodes) infos.set(n.ID, newNodeInfo(n));
  for (const t of tasks) {
    if (!holdsNode(t)) continue;
    const info = infos.get(t.NodeID ?? '');
    if (info === undefined) continue;
    const r = t.Spec?.Resources?.Reservations;
    addTask(info, t.ServiceID ?? '', r?.NanoCPUs ?? 0, r?.MemoryBytes ?? 0, hostPortsOf(t));
  }
  return infos;
}
