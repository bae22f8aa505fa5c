/**
 * The leader's network allocations: one NetworkAllocator (packages/network) rebuilt from the
 * store (`restore`) when this manager starts leading, after a failed write, and while no cluster
 * object exists yet, then kept in step with the store by the allocator loop's passes:
 *
 * - addresses of tasks are given back once the task is gone from the store or has stopped
 *   (observed state past running), VIPs once the service is gone or left the network, subnets and
 *   VNIs once the network is gone;
 * - services get one VIP per network in endpoint mode vip (none for dnsrr) in Endpoint.VirtualIPs,
 *   and their published ports in Endpoint.Ports (ingress-ports.ts: ingress ports asked as 0 get
 *   one from 30000-32767);
 * - every node gets a load-balancer attachment on the ingress network (Node.Attachments, one
 *   address) while both exist; it is given back when the node leaves the store;
 * - new tasks get NetworksAttachments with an address each, and their service's Endpoint.
 *
 * Everything that changes the allocator runs through one queue (`exclusive`): passes and the
 * network RPCs never interleave between their allocation and their store write.
 */
import {
  type EndpointVirtualIP,
  type NetworkAttachment,
  type Task,
  isTerminalTaskState,
  taskStateRank,
} from '@shoal/api';
import { errorMessage, ShoalError } from '@shoal/common';
import { NetworkAllocator, SerialQueue } from '@shoal/network';
import type { ManagerContext, StoredCluster, StoredNode } from '../context.js';
import { NotLeaderError } from '../errors.js';
import type { StoredNetwork, StoredService, StoredTask } from '../services/objects.js';
import { IngressPorts } from './ingress-ports.js';

/**
 * The owner of a node's load-balancer address on the ingress network, as the allocator holds
 * it (a task-like ID), and the endpoint ID the dispatcher gives it: "lb-<node ID>".
 */
export function lbEndpointId(nodeId: string): string {
  return `lb-${nodeId}`;
}

const RUNNING = taskStateRank('running');

/** True while a task holds its attachment addresses: in the store and not stopped. */
export function holdsAddresses(t: Task): boolean {
  const state = t.Status?.State ?? 'new';
  return !isTerminalTaskState(state) && taskStateRank(state) <= RUNNING;
}

/** True when a service publishes a port through the routing mesh (PublishMode ingress, the default). */
export function publishesIngress(s: StoredService): boolean {
  return (s.Spec?.EndpointSpec?.Ports ?? []).some((p) => (p.PublishMode || 'ingress') === 'ingress');
}

/**
 * The network IDs a service's tasks attach to: TaskTemplate.Networks (resolved), plus the ingress
 * network (`ingressId`) when the service publishes ports in ingress mode.
 */
export function serviceNetworkIds(s: StoredService, ingressId?: string): string[] {
  const ids = (s.Spec?.TaskTemplate?.Networks ?? []).map((n) => n.Target ?? '').filter((x) => x !== '');
  if (ingressId !== undefined && publishesIngress(s)) ids.unshift(ingressId);
  return [...new Set(ids)];
}

function wantsVips(s: StoredService): boolean {
  return (s.Spec?.EndpointSpec?.Mode || 'vip') === 'vip';
}

/** What one allocation pass decided for tasks. */
export type TaskAllocation = { task: StoredTask } | { hold: string };

export class NetworkAllocation {
  private readonly queue = new SerialQueue();
  private alloc: NetworkAllocator | undefined;
  /** Tasks holding addresses, with the attachments holding them. */
  private readonly tasks = new Map<string, NetworkAttachment[]>();
  /** Services holding VIPs. */
  private readonly vips = new Map<string, EndpointVirtualIP[]>();
  /** Networks holding a subnet and VNI. */
  private readonly networks = new Set<string>();
  /** Nodes holding a load-balancer address, with their attachments. */
  private readonly nodes = new Map<string, NetworkAttachment[]>();
  /** Published ingress ports of services. */
  private readonly ports = new IngressPorts();
  private dirty = true;
  private leading = false;

  constructor(private readonly ctx: ManagerContext) {}

  /** Starts leading: the next use rebuilds from the store. */
  start(): void {
    this.leading = true;
    this.dirty = true;
  }

  stop(): void {
    this.leading = false;
    this.dirty = true;
    this.alloc = undefined;
  }

  /** After a failed write: rebuild from the store before the next use. */
  invalidate(): void {
    this.dirty = true;
  }

  /** Runs `fn` alone, with the allocator in step with the store. */
  exclusive<T>(what: string, fn: (a: NetworkAllocator) => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      if (!this.leading) throw new NotLeaderError(what, this.ctx.raft.leaderInfo().leader);
      if (this.dirty || this.alloc === undefined) await this.rebuild();
      if (this.alloc === undefined) throw new NotLeaderError(what, this.ctx.raft.leaderInfo().leader);
      return fn(this.alloc);
    });
  }

  private async rebuild(): Promise<void> {
    await this.ctx.store.linearizable();
    const cluster = this.ctx.store.list<StoredCluster>('cluster')[0];
    const a = new NetworkAllocator({
      ...(cluster?.DefaultAddrPool?.length ? { defaultAddrPool: cluster.DefaultAddrPool } : {}),
      ...(cluster?.SubnetSize ? { subnetSize: cluster.SubnetSize } : {}),
    });
    const services = this.ctx.store.list<StoredService>('service');
    const tasks = this.ctx.store.list<StoredTask>('task').filter(holdsAddresses);
    const networks = this.ctx.store.list<StoredNetwork>('network');
    const nodes = this.ctx.store
      .list<StoredNode>('node')
      .filter((n) => (n.Attachments ?? []).length > 0)
      .map((n) => ({ ID: lbEndpointId(n.ID), NetworksAttachments: n.Attachments ?? [], nodeId: n.ID }));
    const summary = a.restore({ networks, services, tasks: [...tasks, ...nodes] });
    if (summary.orphans.length > 0)
      this.ctx.logger.warn({ orphans: summary.orphans }, 'addresses on networks no longer in the store ignored');
    this.tasks.clear();
    this.vips.clear();
    this.networks.clear();
    this.nodes.clear();
    this.ports.clear();
    for (const n of networks) if (a.isAllocated(n.ID)) this.networks.add(n.ID);
    for (const n of nodes) this.nodes.set(n.nodeId, structuredClone(n.NetworksAttachments));
    for (const s of services) this.ports.hold(s.ID, s.Endpoint?.Ports ?? []);
    for (const t of tasks) {
      const held = (t.NetworksAttachments ?? []).filter((n) => (n.Addresses ?? []).length > 0);
      if (held.length > 0) this.tasks.set(t.ID, structuredClone(held));
    }
    for (const s of services) {
      const v = s.Endpoint?.VirtualIPs ?? [];
      if (v.length > 0) this.vips.set(s.ID, structuredClone(v));
    }
    this.alloc = a;
    // Without the cluster object the pool is not known yet: read it again next time.
    this.dirty = cluster === undefined;
    this.ctx.logger.debug({ networks: summary.networks, addresses: summary.addresses }, 'network allocator rebuilt');
  }

  /**
   * Gives back what the store no longer holds: addresses of tasks removed or stopped, VIPs of
   * services removed, subnets and VNIs of networks removed.
   */
  releaseGone(a: NetworkAllocator): void {
    const store = this.ctx.store;
    for (const [id, atts] of this.tasks) {
      const t = store.get<StoredTask>('task', id);
      if (t !== undefined && holdsAddresses(t)) continue;
      a.releaseTaskAttachments({ ID: id, NetworksAttachments: atts });
      this.tasks.delete(id);
    }
    for (const [id, vips] of this.vips) {
      if (store.get<StoredService>('service', id) !== undefined) continue;
      a.releaseServiceVips(vips);
      this.vips.delete(id);
    }
    this.ports.releaseGone((id) => store.get('service', id) !== undefined);
    for (const [id, atts] of this.nodes) {
      if (store.get('node', id) !== undefined) continue;
      a.releaseTaskAttachments({ ID: lbEndpointId(id), NetworksAttachments: atts });
      this.nodes.delete(id);
    }
    for (const id of this.networks) {
      if (store.get('network', id) !== undefined) continue;
      a.releaseNetwork(id);
      this.networks.delete(id);
    }
  }

  /** Gives back the addresses of a task deleted outside a pass (a network detach). */
  releaseTask(a: NetworkAllocator, id: string): void {
    const atts = this.tasks.get(id);
    if (atts === undefined) return;
    a.releaseTaskAttachments({ ID: id, NetworksAttachments: atts });
    this.tasks.delete(id);
  }

  /** A network allocated by `network create` (its subnet and VNI go when it leaves the store). */
  networkAllocated(id: string): void {
    this.networks.add(id);
  }

  /** The ingress network's ID, when the cluster has one allocated. */
  private ingressId(a: NetworkAllocator): string | undefined {
    const n = this.ctx.store.list<StoredNetwork>('network').find((x) => x.Spec?.Ingress === true);
    return n !== undefined && a.isAllocated(n.ID) ? n.ID : undefined;
  }

  /**
   * The nodes whose load-balancer attachment must change, as they must be written: a node
   * without one gets an address on the ingress network (when it is allocated); attachments to
   * networks no longer allocated (the ingress network removed) are dropped. A node for which no
   * address is left is skipped (logged) and tried again at the next pass.
   */
  nodeAttachments(a: NetworkAllocator): StoredNode[] {
    const ingress = this.ingressId(a);
    const out: StoredNode[] = [];
    for (const n of this.ctx.store.list<StoredNode>('node')) {
      const cur = n.Attachments ?? [];
      const keep = cur.filter((x) => a.isAllocated(x.Network?.ID ?? '') && (x.Addresses ?? []).length > 0);
      const missing = ingress !== undefined && !keep.some((x) => x.Network?.ID === ingress);
      if (!missing && keep.length === cur.length) continue;
      let next = keep;
      if (missing) {
        try {
          const added = a.allocateTaskAttachments({
            ID: lbEndpointId(n.ID),
            NetworksAttachments: [{ Network: { ID: ingress }, Addresses: [] }],
          });
          next = [...keep, ...added];
        } catch (err) {
          if (!(err instanceof ShoalError)) throw err;
          this.ctx.logger.warn({ node: n.ID, err: errorMessage(err) }, 'no ingress load-balancer address for node');
          if (keep.length === cur.length) continue;
        }
      }
      if (next.length > 0) this.nodes.set(n.ID, structuredClone(next));
      else this.nodes.delete(n.ID);
      out.push({ ...n, Attachments: next });
    }
    return out;
  }

  /**
   * The service with its published ports (Endpoint.Ports) and VIPs as its spec wants them, or
   * undefined when nothing changes. Throws (changing nothing) when an ingress port is taken.
   */
  serviceEndpoint(a: NetworkAllocator, s: StoredService): StoredService | undefined {
    const want = this.ports.allocate(
      s.ID,
      s.Spec?.Name ?? s.ID,
      s.Spec?.EndpointSpec?.Ports ?? [],
      s.Endpoint?.Ports ?? [],
    );
    const portsChanged = JSON.stringify(want) !== JSON.stringify(s.Endpoint?.Ports ?? []);
    const withPorts: StoredService = portsChanged
      ? { ...s, Endpoint: { ...s.Endpoint, Spec: s.Spec?.EndpointSpec ?? {}, Ports: want } }
      : s;
    const withVips = this.serviceVips(a, withPorts);
    if (withVips !== undefined) return withVips;
    return portsChanged ? withPorts : undefined;
  }

  /**
   * The service with its VIPs as its spec wants them (one per network in vip mode), or undefined
   * when nothing changes. Networks the allocator does not have are skipped (and logged).
   */
  serviceVips(a: NetworkAllocator, s: StoredService): StoredService | undefined {
    const current = s.Endpoint?.VirtualIPs ?? [];
    const want = wantsVips(s) ? serviceNetworkIds(s, this.ingressId(a)).filter((id) => a.isAllocated(id)) : [];
    const keep = current.filter((v) => want.includes(v.NetworkID ?? ''));
    const drop = current.filter((v) => !want.includes(v.NetworkID ?? ''));
    const add = want.filter((id) => !current.some((v) => v.NetworkID === id));
    if (drop.length === 0 && add.length === 0) return undefined;
    a.releaseServiceVips(drop);
    const added = a.allocateServiceVips(s.ID, add);
    const vips = [...keep, ...added];
    if (vips.length > 0) this.vips.set(s.ID, structuredClone(vips));
    else this.vips.delete(s.ID);
    return { ...s, Endpoint: { ...s.Endpoint, Spec: s.Spec?.EndpointSpec ?? {}, VirtualIPs: vips } };
  }

  /**
   * A new task with an address on each network of its spec and its service's Endpoint, or why it
   * waits (a network not there, no address left): it stays `new` and a later pass tries again.
   */
  allocateTask(a: NetworkAllocator, t: StoredTask, service: StoredService | undefined): TaskAllocation {
    const ingress = this.ingressId(a);
    const nets = [
      ...(ingress !== undefined && service !== undefined && publishesIngress(service) ? [{ Target: ingress }] : []),
      ...(t.Spec?.Networks ?? []).filter((n) => n.Target !== ingress),
    ];
    const endpoint = service?.Endpoint ?? t.Endpoint;
    const withEndpoint = endpoint === undefined ? t : { ...t, Endpoint: structuredClone(endpoint) };
    if (nets.length === 0) return { task: withEndpoint };
    const missing = nets.map((n) => n.Target ?? '').filter((id) => !a.isAllocated(id));
    if (missing.length > 0) return { hold: `network ${missing.join(', ')} not found` };
    try {
      const atts = a.allocateTaskAttachments({
        ID: t.ID,
        NetworksAttachments: nets.map((n) => ({
          Network: { ID: n.Target ?? '' },
          Addresses: [],
          ...(n.Aliases?.length ? { Aliases: [...n.Aliases] } : {}),
        })),
      });
      this.tasks.set(t.ID, structuredClone(atts));
      return { task: { ...withEndpoint, NetworksAttachments: atts } };
    } catch (err) {
      if (!(err instanceof ShoalError)) throw err;
      this.ctx.logger.warn({ task: t.ID, err: errorMessage(err) }, 'task network allocation failed; it waits');
      return { hold: errorMessage(err) };
    }
  }
}
