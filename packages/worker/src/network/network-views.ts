/**
 * What a node derives from the NetworkState assignments (pure): the overlay spec of a network,
 * the peers it programs (endpoints on OTHER nodes), the DNS records of a network, the VIP rules
 * of a container and the ports the node publishes. The controller turns these into kernel
 * objects; keeping them pure keeps the rules testable without namespaces.
 */
import type { Network, NetworkEndpoint, NetworkServiceEndpoint, NetworkState, PortConfig, Task } from '@shoal/api';
import {
  InvalidAddressError,
  VXLAN_ID_OPTION,
  overlaps,
  parseCidr,
  type OverlayNetworkSpec,
  type OverlayPeer,
  type PublishedPort,
  type VipService,
} from '@shoal/network';

/** The data plane's view of a network object (VNI from the driver state, first IPAM config). */
export function overlaySpec(network: Network): OverlayNetworkSpec {
  const id = network.ID ?? '';
  const vni = Number(network.DriverState?.Options?.[VXLAN_ID_OPTION] ?? NaN);
  const ipam = network.IPAMOptions?.Configs?.[0];
  if (!Number.isInteger(vni) || !ipam?.Subnet || !ipam.Gateway)
    throw new InvalidAddressError(
      `network ${network.Spec?.Name ?? id} (${id}) is not allocated yet: it has no VXLAN id, subnet or gateway`,
    );
  return { id, vni, subnet: ipam.Subnet, gateway: ipam.Gateway };
}

export function isIngress(network: Network | undefined): boolean {
  return network?.Spec?.Ingress === true;
}

export function isInternal(network: Network | undefined): boolean {
  return network?.Spec?.Internal === true;
}

/** Whether an overlay's subnet overlaps the node's gateway bridge subnet (both CIDRs). */
export function overlapsGateway(subnet: string, gatewaySubnet: string): boolean {
  return overlaps(parseCidr(subnet, 'overlay subnet', false), parseCidr(gatewaySubnet, 'gateway bridge subnet', false));
}

/** The address without its prefix length. */
export function plainAddress(address: string): string {
  return address.split('/')[0] ?? address;
}

/**
 * Whether other containers may still open new connections to `task` through its service: the
 * service is listed (VIP, DNS name, published ports) in the state of one of the task's networks,
 * or the state of one of them is unknown here. A removed service is in no state (the dispatcher
 * drops it in the same message that asks its tasks to stop): nodes that have not applied that yet
 * may still send its VIP's new connections to the task, but no other task of the service is left
 * to take them, so waiting for every node to catch up serves no one. A task without a service
 * has no VIP or service DNS name at all.
 */
export function servedThroughService(states: ReadonlyMap<string, NetworkState>, task: Task): boolean {
  const serviceId = task.ServiceID ?? '';
  for (const att of task.NetworksAttachments ?? []) {
    const state = states.get(att.Network?.ID ?? '');
    if (state === undefined) return true;
    if (serviceId !== '' && (state.Services ?? []).some((s) => s.ServiceID === serviceId)) return true;
  }
  return false;
}

/** The peers to program on this node: every endpoint of the network living on another node. */
export function remotePeers(state: NetworkState, nodeId: string): OverlayPeer[] {
  const out: OverlayPeer[] = [];
  for (const e of state.Endpoints ?? []) {
    if (!e.NodeAddr || !e.Address || e.NodeID === nodeId) continue;
    out.push({ vtep: e.NodeAddr, address: plainAddress(e.Address) });
  }
  return out;
}

function running(state: NetworkState, serviceId: string): NetworkEndpoint[] {
  return (state.Endpoints ?? []).filter((e) => e.Running && e.ServiceID === serviceId && e.Address);
}

export interface DnsRecord {
  name: string;
  address: string;
}

function isDnsrr(s: NetworkServiceEndpoint): boolean {
  return s.Mode === 'dnsrr' || !s.VIP;
}

/**
 * The names a network answers to: `<service>` and its aliases -> the VIP (or each running task
 * in dnsrr mode), `tasks.<service>` (and `tasks.<alias>`) -> running tasks, and each running
 * task's aliases, hostname and task name (`<service>.<slot>.<task id>`) -> its address.
 */
export function dnsRecords(state: NetworkState): DnsRecord[] {
  const out: DnsRecord[] = [];
  for (const s of state.Services ?? []) {
    if (!s.ServiceName || !s.ServiceID) continue;
    const tasks = running(state, s.ServiceID).map((e) => plainAddress(e.Address ?? ''));
    const names = [s.ServiceName, ...(s.Aliases ?? [])];
    for (const name of names) {
      const addrs = isDnsrr(s) ? tasks : [plainAddress(s.VIP ?? '')];
      for (const address of addrs) out.push({ name, address });
      for (const address of tasks) out.push({ name: `tasks.${name}`, address });
    }
  }
  for (const e of state.Endpoints ?? []) {
    // service tasks, and plain containers' attachments (no service: their own aliases only)
    if (!e.Running || !e.Address) continue;
    const address = plainAddress(e.Address);
    for (const name of e.Aliases ?? []) out.push({ name, address });
    if (e.ServiceName && e.ID) out.push({ name: `${e.ServiceName}.${e.Slot ?? 0}.${e.ID}`, address });
  }
  return out;
}

/** The VIPs a container on this network balances: each VIP-mode service, over its running tasks. */
export function vipServices(state: NetworkState): VipService[] {
  const out: VipService[] = [];
  for (const s of state.Services ?? []) {
    if (!s.ServiceID || isDnsrr(s)) continue;
    out.push({ vip: s.VIP ?? '', backends: running(state, s.ServiceID).map((e) => plainAddress(e.Address ?? '')) });
  }
  return out;
}

function protocol(p: PortConfig): 'tcp' | 'udp' {
  if (p.Protocol === 'udp') return 'udp';
  if (!p.Protocol || p.Protocol === 'tcp') return 'tcp';
  throw new InvalidAddressError(`published port ${p.PublishedPort}/${p.Protocol}: only tcp and udp are published`);
}

/** Ports a service publishes in ingress mode (the default mode), with an allocated published port. */
export function ingressPortsOf(s: NetworkServiceEndpoint): PortConfig[] {
  return (s.Ports ?? []).filter((p) => (p.PublishMode ?? 'ingress') !== 'host' && (p.PublishedPort ?? 0) > 0);
}

/** Ports published in host mode (by the task's node only). */
export function hostPortsOf(ports: readonly PortConfig[] | undefined): PortConfig[] {
  return (ports ?? []).filter((p) => p.PublishMode === 'host' && (p.PublishedPort ?? 0) > 0 && p.TargetPort);
}

/** The routing mesh: every ingress-mode port of the ingress network, to the running tasks on it. */
export function ingressPorts(ingress: NetworkState): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const s of ingress.Services ?? []) {
    if (!s.ServiceID) continue;
    const backends = running(ingress, s.ServiceID).map((e) => plainAddress(e.Address ?? ''));
    for (const p of ingressPortsOf(s))
      out.push({
        protocol: protocol(p),
        publishedPort: p.PublishedPort ?? 0,
        targetPort: p.TargetPort ?? 0,
        backends,
      });
  }
  return out;
}

/** Host-mode ports of a local task, to its gateway-bridge address. */
export function hostPorts(ports: readonly PortConfig[] | undefined, backend: string): PublishedPort[] {
  return hostPortsOf(ports).map((p) => ({
    protocol: protocol(p),
    publishedPort: p.PublishedPort ?? 0,
    targetPort: p.TargetPort ?? 0,
    backends: [plainAddress(backend)],
  }));
}
