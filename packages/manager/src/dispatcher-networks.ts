/**
 * The overlay network states the dispatcher sends nodes (`Assignment.Network`): per network,
 * the Network object, every endpoint on it on every node that is not down, and the services
 * attached to it. Built from the store in one pass over tasks, nodes, services and networks,
 * at most once per store revision and shared by every node's assignments stream; each
 * network's state carries a generation that moves only when its content changes, so a stream
 * sends a network again only when something in it changed, however many commits touched the
 * store meanwhile.
 *
 * Semantics (the worker relies on them):
 * - a network is in the states once it is allocated (IPAMOptions has a subnet);
 * - a task is an endpoint of a network while it has a node (`NodeID`), a state from `assigned`
 *   to `running`, an attachment with an address on that network, and its node is in the store,
 *   not `down`, and has an address (`Status.Addr`). Endpoint `ID` = task ID, `Address` = the attachment's first address (CIDR),
 *   `NodeAddr` = the node's `Status.Addr`, `Aliases` = the container's hostname when
 *   set (the attachment's aliases are the service's: they go with the service, to its VIP; a
 *   plain container's network-attachment task has its own aliases instead), `Running` = state and desired state both `running`;
 * - a node's ingress load-balancer attachment (`Node.Attachments` on the ingress network) is the
 *   endpoint `lb-<nodeID>` (no service, `Running` true) on the same terms;
 * - a node needs a network while one of its tasks (state `assigned` to `running`) has an
 *   attachment on it; every node needs the ingress network;
 * - the services of a network: those whose spec attaches them to it (TaskTemplate.Networks, or
 *   ingress-mode published ports for the ingress network), that hold a VIP on it, or that have
 *   an endpoint on it. `Mode` = EndpointSpec.Mode (default vip), `VIP` = the service's
 *   Endpoint.VirtualIPs entry for the network, `Aliases` = the spec's aliases for the network,
 *   `Ports` = Endpoint.Ports (the published ports as allocated);
 * - endpoints are sorted by ID, services by ServiceID.
 */
import {
  expandTemplate,
  InvalidTemplateError,
  templateValues,
  type NetworkEndpoint,
  type NetworkServiceEndpoint,
  type NetworkState,
  type Node,
  taskStateRank,
} from '@shoal/api';
import type { ClusterStore, StoredObject } from '@shoal/store';
import { fromStored } from './context.js';
import { isNetworkAttachmentTask } from './networks/attachments.js';
import { holdsAddresses, lbEndpointId, serviceNetworkIds } from './networks/network-allocation.js';
import type { StoredNetwork, StoredService, StoredTask } from './services/objects.js';

type StoredNode = Node & StoredObject;

const ASSIGNED = taskStateRank('assigned');

/** True for a task that is an endpoint of its networks and makes its node need them. */
export function isNetworkEndpoint(t: StoredTask): boolean {
  return (t.NodeID ?? '') !== '' && taskStateRank(t.Status?.State ?? 'new') >= ASSIGNED && holdsAddresses(t);
}

export interface NetworkStateEntry {
  /** Moves whenever the state's content changes. */
  readonly generation: number;
  readonly state: NetworkState;
}

interface Built {
  readonly json: string;
  readonly entry: NetworkStateEntry;
}

/** All network states at one store revision, shared by the dispatcher's streams. */
export class NetworkStates {
  private revision = -1;
  private built = new Map<string, Built>();
  private needs = new Map<string, Set<string>>();
  private ingressId: string | undefined;
  private nextGeneration = 1;
  /** How many times the states were rebuilt (for tests and benchmarks). */
  rebuilds = 0;

  constructor(private readonly store: ClusterStore) {}

  /** The network IDs `nodeId` needs now (its tasks' networks and the ingress network). */
  neededBy(nodeId: string): Set<string> {
    this.refresh();
    const out = new Set(this.needs.get(nodeId) ?? []);
    if (this.ingressId !== undefined) out.add(this.ingressId);
    return out;
  }

  /** The state of a network now, or undefined when it is not (or no longer) allocated. */
  get(networkId: string): NetworkStateEntry | undefined {
    this.refresh();
    return this.built.get(networkId)?.entry;
  }

  private refresh(): void {
    if (this.store.revision === this.revision) return;
    this.revision = this.store.revision;
    this.rebuild();
  }

  private rebuild(): void {
    this.rebuilds++;
    const networks = new Map<string, StoredNetwork>();
    for (const n of this.store.list<StoredNetwork>('network')) {
      if ((n.IPAMOptions?.Configs?.[0]?.Subnet ?? '') !== '') networks.set(n.ID, n);
    }
    const ingress = [...networks.values()].find((n) => n.Spec?.Ingress === true);
    this.ingressId = ingress?.ID;
    const live = new Map<string, StoredNode>();
    // Peers are reachable at their underlay address: a node down, or without an address yet
    // (joined, no session so far), has no endpoints in the states.
    for (const n of this.store.list<StoredNode>('node'))
      if (n.Status?.State !== 'down' && (n.Status?.Addr ?? '') !== '') live.set(n.ID, n);
    const endpoints = new Map<string, NetworkEndpoint[]>();
    const serviceIds = new Map<string, Set<string>>();
    const add = (m: Map<string, Set<string>>, k: string, v: string): void => {
      const cur = m.get(k);
      if (cur === undefined) m.set(k, new Set([v]));
      else cur.add(v);
    };
    const needs = new Map<string, Set<string>>();
    for (const t of this.store.list<StoredTask>('task')) {
      if (!isNetworkEndpoint(t)) continue;
      const nodeId = t.NodeID ?? '';
      const node = live.get(nodeId);
      for (const att of t.NetworksAttachments ?? []) {
        const netId = att.Network?.ID ?? '';
        const addr = att.Addresses?.[0] ?? '';
        if (!networks.has(netId) || addr === '') continue;
        add(needs, nodeId, netId);
        if (node === undefined) continue;
        const hostname = taskHostname(t, node);
        // The attachment's aliases are the service's network-scoped aliases (Service.Aliases):
        // like the service name they resolve to the VIP, not to each task, as in Docker. A plain
        // container's attachment (no service) answers to its own: name, hostname, --network-alias.
        const aliases =
          (t.ServiceID ?? '') === '' && isNetworkAttachmentTask(t)
            ? [...(att.Aliases ?? [])]
            : hostname === ''
              ? []
              : [hostname];
        let list = endpoints.get(netId);
        if (list === undefined) endpoints.set(netId, (list = []));
        list.push({
          ID: t.ID,
          NodeID: nodeId,
          NodeAddr: node.Status?.Addr ?? '',
          Address: addr,
          ServiceID: t.ServiceID ?? '',
          ServiceName: t.ServiceName ?? '',
          Slot: t.Slot ?? 0,
          Aliases: aliases,
          Running: t.Status?.State === 'running' && t.DesiredState === 'running',
        });
        if ((t.ServiceID ?? '') !== '') add(serviceIds, netId, t.ServiceID ?? '');
      }
    }
    if (ingress !== undefined) {
      let list = endpoints.get(ingress.ID);
      if (list === undefined) endpoints.set(ingress.ID, (list = []));
      for (const node of live.values()) {
        const att = (node.Attachments ?? []).find((a) => a.Network?.ID === ingress.ID);
        const addr = att?.Addresses?.[0] ?? '';
        if (addr === '') continue;
        list.push({
          ID: lbEndpointId(node.ID),
          NodeID: node.ID,
          NodeAddr: node.Status?.Addr ?? '',
          Address: addr,
          ServiceID: '',
          ServiceName: '',
          Slot: 0,
          Aliases: [],
          Running: true,
        });
      }
    }
    const services = new Map<string, StoredService>();
    for (const s of this.store.list<StoredService>('service')) {
      services.set(s.ID, s);
      for (const id of serviceNetworkIds(s, ingress?.ID)) add(serviceIds, id, s.ID);
      for (const v of s.Endpoint?.VirtualIPs ?? [])
        if ((v.NetworkID ?? '') !== '') add(serviceIds, v.NetworkID ?? '', s.ID);
    }
    const built = new Map<string, Built>();
    for (const [id, n] of networks) {
      const eps = (endpoints.get(id) ?? []).sort((a, b) => cmp(a.ID ?? '', b.ID ?? ''));
      const svcs: NetworkServiceEndpoint[] = [];
      for (const sid of [...(serviceIds.get(id) ?? [])].sort(cmp)) {
        const s = services.get(sid);
        if (s !== undefined) svcs.push(serviceEndpoint(s, id));
      }
      const state: NetworkState = { Network: fromStored(n), Endpoints: eps, Services: svcs };
      const json = JSON.stringify(state);
      const prev = this.built.get(id);
      built.set(id, prev?.json === json ? prev : { json, entry: { generation: this.nextGeneration++, state } });
    }
    this.built = built;
    this.needs = needs;
  }
}

function serviceEndpoint(s: StoredService, networkId: string): NetworkServiceEndpoint {
  const spec = (s.Spec?.TaskTemplate?.Networks ?? []).find((n) => n.Target === networkId);
  return {
    ServiceID: s.ID,
    ServiceName: s.Spec?.Name ?? '',
    Mode: s.Spec?.EndpointSpec?.Mode || 'vip',
    VIP: (s.Endpoint?.VirtualIPs ?? []).find((v) => v.NetworkID === networkId)?.Addr ?? '',
    Aliases: [...(spec?.Aliases ?? [])],
    Ports: structuredClone(s.Endpoint?.Ports ?? []),
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The hostname a task's container has (its template expanded for the task and its node, as the
 * worker does), which it answers to on its networks; '' when it has none or the template is bad
 * (the worker fails such a task).
 */
function taskHostname(t: StoredTask, node: StoredNode): string {
  const raw = t.Spec?.ContainerSpec?.Hostname ?? '';
  if (!raw.includes('{{')) return raw;
  const d = node.Description;
  const values = templateValues(t, {
    id: node.ID,
    hostname: d?.Hostname ?? '',
    ...(d?.Platform?.OS ? { os: d.Platform.OS } : {}),
    ...(d?.Platform?.Architecture ? { architecture: d.Platform.Architecture } : {}),
  });
  try {
    return expandTemplate(raw, values, 'hostname');
  } catch (err) {
    if (err instanceof InvalidTemplateError) return '';
    throw err;
  }
}
