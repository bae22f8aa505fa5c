/**
 * A swarm network as `docker network inspect` prints it (the engine's NetworkResource shape,
 * not the swarm object), and the flags of `network create` as a NetworkSpec.
 */
import { containerName, type IPAMConfig, type Network, type NetworkSpec, type Node, type Task } from '@shoal/api';
import { InvalidArgumentError } from '@shoal/common';

/** A node the network is instantiated on, as Docker's `Peers` lists it. */
export interface PeerInfo {
  Name: string;
  IP: string;
}

const LIVE_TASK_STATES = new Set(['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

/**
 * The nodes a network is on (Docker's `Peers`, sorted by name): nodes that are not down, with
 * an address, that run a task (state assigned to running) attached to it, or, for the ingress
 * network, hold their load-balancer attachment on it.
 */
export function networkPeers(n: Network, nodes: readonly Node[], tasks: readonly Task[]): PeerInfo[] {
  const on = new Set<string>();
  for (const t of tasks) {
    if (!LIVE_TASK_STATES.has(t.Status?.State ?? '')) continue;
    if ((t.NetworksAttachments ?? []).some((a) => a.Network?.ID === n.ID)) on.add(t.NodeID ?? '');
  }
  return nodes
    .filter((x) => x.Status?.State !== 'down' && (x.Status?.Addr ?? '') !== '')
    .filter((x) => on.has(x.ID ?? '') || (x.Attachments ?? []).some((a) => a.Network?.ID === n.ID))
    .map((x) => ({ Name: x.Description?.Hostname || x.ID || '', IP: x.Status?.Addr ?? '' }))
    .sort((a, b) => a.Name.localeCompare(b.Name));
}

/** An endpoint on the network, as Docker's `Containers` entries. */
export interface AttachedContainer {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

/** The MAC address Shoal gives an address (as Docker's: 02:42 then the IPv4 octets). */
function macOf(addr: string): string {
  const octets = (addr.split('/')[0] ?? '').split('.').map((x) => Number(x).toString(16).padStart(2, '0'));
  return ['02', '42', ...octets].join(':');
}

function endpoint(name: string, endpointId: string, addr: string): AttachedContainer {
  return { Name: name, EndpointID: endpointId, MacAddress: macOf(addr), IPv4Address: addr, IPv6Address: '' };
}

/** The key and `Name` of a node's ingress load-balancer endpoint, as Docker's ingress sandbox. */
export const INGRESS_SANDBOX = 'ingress-sbox';
export const INGRESS_ENDPOINT = 'ingress-endpoint';

/**
 * Docker's `Containers` of a network on node `nodeId`, the one the CLI talks to (Docker lists the
 * local node's endpoints only), keyed by container ID, in key order (as Go prints a map):
 * - the plain containers attached there (`container run --network`, `network connect`): its
 *   live network-attachment tasks, whose NetworkAttachmentSpec.ContainerID is the container's
 *   name; `containerIds` gives the full ID of a name (from the node's engine); a name it does not
 *   know is its own key (the CLI could not read that engine);
 * - the containers of service tasks there (live, with a container): key the container's ID,
 *   Name the task container's name (`<service>.<slot>.<task ID>`, `<service>.<node ID>.<task ID>`);
 * - on the ingress network, the node's load-balancer address: key `ingress-sbox`, Name
 *   `ingress-endpoint` (other networks have no per-node load-balancer address in Shoal).
 * EndpointID is the task's ID (the node's load-balancer endpoint's for ingress).
 */
export function networkContainers(
  n: Network,
  tasks: readonly Task[],
  nodeId: string,
  containerIds: ReadonlyMap<string, string> = new Map(),
  nodes: readonly Node[] = [],
): Record<string, AttachedContainer> {
  const found: [string, AttachedContainer][] = [];
  if (nodeId === '') return {};
  for (const t of tasks) {
    if (t.NodeID !== nodeId || !LIVE_TASK_STATES.has(t.Status?.State ?? '')) continue;
    const addr = (t.NetworksAttachments ?? []).find((a) => a.Network?.ID === n.ID)?.Addresses?.[0];
    if (addr === undefined) continue;
    const plain = t.Spec?.NetworkAttachmentSpec?.ContainerID;
    if (plain !== undefined) {
      found.push([containerIds.get(plain) ?? plain, endpoint(plain, t.ID ?? '', addr)]);
      continue;
    }
    const id = t.Status?.ContainerStatus?.ContainerID ?? '';
    if ((t.ServiceID ?? '') === '' || id === '') continue;
    found.push([id, endpoint(containerName(t), t.ID ?? '', addr)]);
  }
  if (n.Spec?.Ingress === true) {
    const self = nodes.find((x) => x.ID === nodeId);
    const addr = (self?.Attachments ?? []).find((a) => a.Network?.ID === n.ID)?.Addresses?.[0];
    if (addr !== undefined) found.push([INGRESS_SANDBOX, endpoint(INGRESS_ENDPOINT, `lb-${nodeId}`, addr)]);
  }
  found.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(found);
}

/** Docker's `network inspect` JSON of a swarm network (`Peers` when the network is on any node). */
export function networkResource(
  n: Network,
  peers: readonly PeerInfo[] = [],
  containers: Record<string, AttachedContainer> = {},
): Record<string, unknown> {
  const spec = n.Spec ?? {};
  const ipam = n.IPAMOptions ?? spec.IPAMOptions ?? {};
  return {
    Name: spec.Name ?? '',
    Id: n.ID ?? '',
    Created: n.CreatedAt ?? '',
    Scope: 'swarm',
    Driver: n.DriverState?.Name || spec.DriverConfiguration?.Name || 'overlay',
    EnableIPv6: spec.IPv6Enabled === true,
    IPAM: {
      Driver: ipam.Driver?.Name || 'default',
      Options: Object.keys(ipam.Driver?.Options ?? {}).length > 0 ? ipam.Driver?.Options : null,
      Config: (ipam.Configs ?? []).map((c) => ({
        Subnet: c.Subnet ?? '',
        ...(c.Range ? { IPRange: c.Range } : {}),
        ...(c.Gateway ? { Gateway: c.Gateway } : {}),
      })),
    },
    Internal: spec.Internal === true,
    Attachable: spec.Attachable === true,
    Ingress: spec.Ingress === true,
    ConfigFrom: { Network: spec.ConfigFrom?.Network ?? '' },
    ConfigOnly: false,
    Containers: Object.keys(containers).length > 0 ? containers : null,
    Options: { ...(n.DriverState?.Options ?? spec.DriverConfiguration?.Options ?? {}) },
    Labels: { ...spec.Labels },
    ...(peers.length > 0 ? { Peers: peers.map((p) => ({ ...p })) } : {}),
  };
}

export interface CreateFlags {
  driver: string;
  subnet: string[];
  gateway: string[];
  ipRange: string[];
  attachable?: boolean;
  internal?: boolean;
  ingress?: boolean;
  ipv6?: boolean;
  opt: string[];
  label: string[];
}

function kv(flag: string, values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    if (key.trim() === '')
      throw new InvalidArgumentError(`invalid argument ${JSON.stringify(v)} for "${flag}" flag: empty name`);
    out[key] = eq < 0 ? '' : v.slice(eq + 1);
  }
  return out;
}

/** `network create`'s flags as the spec sent (docker's: gateway and ip-range need a subnet). */
export function networkSpecFromFlags(name: string, o: CreateFlags): NetworkSpec {
  if (o.subnet.length === 0 && (o.gateway.length > 0 || o.ipRange.length > 0))
    throw new InvalidArgumentError('every --gateway and --ip-range must have a corresponding --subnet');
  if (o.gateway.length > o.subnet.length)
    throw new InvalidArgumentError('cannot give more --gateway values than --subnet values');
  if (o.ipRange.length > o.subnet.length)
    throw new InvalidArgumentError('cannot give more --ip-range values than --subnet values');
  const configs: IPAMConfig[] = o.subnet.map((s, i) => ({
    Subnet: s,
    ...(o.gateway[i] !== undefined ? { Gateway: o.gateway[i] } : {}),
    ...(o.ipRange[i] !== undefined ? { Range: o.ipRange[i] } : {}),
  }));
  return {
    Name: name,
    Labels: kv('--label', o.label),
    DriverConfiguration: { Name: o.driver, Options: kv('--opt', o.opt) },
    IPv6Enabled: o.ipv6 === true,
    Internal: o.internal === true,
    Attachable: o.attachable === true,
    Ingress: o.ingress === true,
    ...(configs.length > 0 ? { IPAMOptions: { Driver: { Name: 'default' }, Configs: configs } } : {}),
    Scope: 'swarm',
  };
}
