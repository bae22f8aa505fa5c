/**
 * The manager's network allocator (leader only): subnets and VNIs for networks, an address per
 * task attachment, a VIP per service per network, and their release. Pure: it holds no I/O, and
 * everything it hands out is written by the caller into store objects in Docker's shapes
 * (Network.DriverState / Network.IPAMOptions, Endpoint.VirtualIPs, NetworkAttachment.Addresses),
 * from which `restore` rebuilds it on a new leader.
 */
import type { EndpointVirtualIP, IPAMConfig, Network, NetworkAttachment, Service, Task } from '@shoal/api';
import { AddressPool } from './address-pool.js';
import {
  InvalidAddressError,
  NetworkError,
  NetworkNotFoundError,
  RestoreConflictError,
  SubnetOverlapError,
  VniInUseError,
} from './errors.js';
import { formatCidr, formatIp, overlaps, type Cidr } from './ipv4.js';
import { SubnetAddresses, subnetConfig, type SubnetConfig } from './subnet-addresses.js';
import { VXLAN_ID_OPTION, VniSet } from './vni.js';

export interface NetworkAllocatorOptions {
  /** `--default-addr-pool` (Cluster.DefaultAddrPool); default 10.0.0.0/8. */
  defaultAddrPool?: readonly string[];
  /** `--default-addr-pool-mask-length` (Cluster.SubnetSize); default 24. */
  subnetSize?: number;
}

/** What the store holds that the allocator is rebuilt from. */
export interface AllocatorObjects {
  networks: readonly Network[];
  /** Services whose Endpoint.VirtualIPs are held. */
  services?: readonly Service[];
  /** Tasks whose attachment addresses are held (not yet released). */
  tasks?: readonly Task[];
}

export interface RestoreSummary {
  networks: number;
  addresses: number;
  /** Addresses that name a network the store no longer has ("task:<id> on <network>"). */
  orphans: string[];
}

interface Allocated {
  network: Network;
  vni?: number;
  addresses: SubnetAddresses;
}

const DEFAULT_DRIVER = 'overlay';
const IPAM_DRIVER = 'default';

export function taskOwner(taskId: string): string {
  return `task:${taskId}`;
}
export function vipOwner(serviceId: string): string {
  return `vip:${serviceId}`;
}

export class NetworkAllocator {
  readonly pool: AddressPool;
  private readonly networks = new Map<string, Allocated>();
  private readonly vnis = new VniSet();

  constructor(options: NetworkAllocatorOptions = {}) {
    this.pool = new AddressPool(options.defaultAddrPool, options.subnetSize);
  }

  isAllocated(networkId: string): boolean {
    return this.networks.has(networkId);
  }

  /** The allocated form of a network (as last returned by allocateNetwork or restored). */
  network(networkId: string): Network {
    return this.get(networkId).network;
  }

  /** Addresses in use on a network (gateway not counted) and still free. */
  usage(networkId: string): { used: number; free: number } {
    const a = this.get(networkId).addresses;
    return { used: a.used, free: a.free };
  }

  /**
   * Gives a network its subnet, gateway and (overlay) VNI: the user's `--subnet/--gateway/
   * --ip-range` and VXLAN id option if set, else the next free /size of the pools and the lowest
   * free VNI. Returns the network with DriverState and IPAMOptions filled. Nothing changes when it
   * throws. A network already allocated is returned as it is.
   */
  allocateNetwork(network: Network): Network {
    const id = network.ID;
    if (!id) throw new InvalidAddressError('cannot allocate a network without an ID');
    const known = this.networks.get(id);
    if (known) return known.network;
    const spec = network.Spec ?? {};
    const name = spec.Name ?? id;
    const driver = spec.DriverConfiguration?.Name || DEFAULT_DRIVER;
    const ipamDriver = spec.IPAMOptions?.Driver?.Name;
    if (ipamDriver && ipamDriver !== IPAM_DRIVER)
      throw new InvalidAddressError(`network ${name}: IPAM driver "${ipamDriver}" is not supported (only "default")`);
    const configs = spec.IPAMOptions?.Configs ?? [];
    if (configs.length > 1)
      throw new InvalidAddressError(`network ${name}: only one IPAM config (--subnet) per network is supported`);
    const given = configs[0];
    let config: SubnetConfig;
    if (given?.Subnet) {
      config = subnetConfig(given.Subnet, given.Gateway, given.Range);
      this.checkOverlap(config.subnet, id);
    } else {
      if (given?.Gateway || given?.Range)
        throw new InvalidAddressError(`network ${name}: --gateway and --ip-range need a --subnet`);
      const subnet = this.pool.nextFree([...this.networks.values()].map((a) => a.addresses.config.subnet));
      config = { subnet, gateway: subnet.base + 1, range: subnet, rangeGiven: false };
    }
    let vni: number | undefined;
    if (driver === DEFAULT_DRIVER) {
      const requested = spec.DriverConfiguration?.Options?.[VXLAN_ID_OPTION];
      vni = requested !== undefined ? VniSet.parse(requested) : this.vnis.peek();
      if (this.vnis.has(vni)) throw new VniInUseError(vni, name);
    }
    // Everything validated: record.
    if (vni !== undefined) this.vnis.take(vni);
    const allocated: Network = {
      ...network,
      DriverState: {
        Name: driver,
        Options: {
          ...(spec.DriverConfiguration?.Options ?? {}),
          ...(vni !== undefined ? { [VXLAN_ID_OPTION]: String(vni) } : {}),
        },
      },
      IPAMOptions: { Driver: { Name: IPAM_DRIVER }, Configs: [ipamConfig(config)] },
    };
    this.networks.set(id, {
      network: allocated,
      ...(vni !== undefined ? { vni } : {}),
      addresses: new SubnetAddresses(name, config),
    });
    return allocated;
  }

  /** Frees a network's subnet, VNI and every address on it. Unknown ids are a no-op. */
  releaseNetwork(networkId: string): void {
    const a = this.networks.get(networkId);
    if (!a) return;
    if (a.vni !== undefined) this.vnis.release(a.vni);
    this.networks.delete(networkId);
  }

  /** Allocates one address on a network for `owner`; returns it in CIDR form ("198.19.128.7/24"). */
  allocateAddress(networkId: string, owner: string, requested?: string): string {
    const a = this.get(networkId).addresses;
    return a.cidrOf(a.allocate(owner, requested));
  }

  /** Frees an address (CIDR or plain form); returns whether it was allocated. */
  releaseAddress(networkId: string, address: string): boolean {
    const a = this.networks.get(networkId)?.addresses;
    if (!a) return false;
    return a.release(a.parseOwn(address));
  }

  /**
   * Fills in the addresses of a task's attachments that have none (all or nothing: on failure the
   * addresses taken by this call are given back). Each attachment's Network becomes the
   * allocated network object.
   */
  allocateTaskAttachments(task: Task): NetworkAttachment[] {
    const owner = taskOwner(task.ID ?? '');
    const taken: [string, string][] = [];
    try {
      return (task.NetworksAttachments ?? []).map((att) => {
        const id = att.Network?.ID;
        if (!id) throw new InvalidAddressError(`task ${task.ID}: a network attachment has no network ID`);
        const network = this.network(id);
        if (att.Addresses && att.Addresses.length > 0) {
          const a = this.get(id).addresses;
          for (const addr of att.Addresses) a.mark(a.parseOwn(addr), owner);
          return { ...att, Network: network };
        }
        const addr = this.allocateAddress(id, owner);
        taken.push([id, addr]);
        return { ...att, Network: network, Addresses: [addr] };
      });
    } catch (err) {
      for (const [id, addr] of taken) this.releaseAddress(id, addr);
      throw err;
    }
  }

  /** Frees the addresses of a task's attachments (networks already gone are skipped). */
  releaseTaskAttachments(task: Task): void {
    for (const att of task.NetworksAttachments ?? []) {
      const id = att.Network?.ID;
      if (!id || !this.networks.has(id)) continue;
      for (const addr of att.Addresses ?? []) this.releaseAddress(id, addr);
    }
  }

  /** One VIP per network for a service (endpoint mode vip); all or nothing. */
  allocateServiceVips(serviceId: string, networkIds: readonly string[]): EndpointVirtualIP[] {
    const vips: EndpointVirtualIP[] = [];
    try {
      for (const id of networkIds) vips.push({ NetworkID: id, Addr: this.allocateAddress(id, vipOwner(serviceId)) });
    } catch (err) {
      this.releaseServiceVips(vips);
      throw err;
    }
    return vips;
  }

  releaseServiceVips(vips: readonly EndpointVirtualIP[]): void {
    for (const v of vips) if (v.NetworkID && v.Addr) this.releaseAddress(v.NetworkID, v.Addr);
  }

  /**
   * Rebuilds the allocator from store objects (a new leader): networks with their stored subnet
   * and VNI, the VIPs of services and the addresses of tasks. Replaces all state. Networks not
   * yet allocated (no IPAMOptions) are skipped: allocate them afterwards. Contradicting objects
   * (two networks on one subnet or VNI, two owners of one address) throw, leaving the allocator
   * empty rather than half-built.
   */
  restore(objects: AllocatorObjects): RestoreSummary {
    this.networks.clear();
    this.vnis.clearAll();
    try {
      return this.restoreInto(objects);
    } catch (err) {
      this.networks.clear();
      this.vnis.clearAll();
      throw err;
    }
  }

  private restoreInto(objects: AllocatorObjects): RestoreSummary {
    const summary: RestoreSummary = { networks: 0, addresses: 0, orphans: [] };
    for (const n of objects.networks) {
      const cfg = n.IPAMOptions?.Configs?.[0];
      if (!n.ID || !cfg?.Subnet) continue;
      const name = n.Spec?.Name ?? n.ID;
      let config: SubnetConfig;
      try {
        config = subnetConfig(cfg.Subnet, cfg.Gateway, cfg.Range);
        this.checkOverlap(config.subnet, n.ID);
      } catch (err) {
        if (!(err instanceof NetworkError)) throw err;
        throw new RestoreConflictError(`network ${name}: ${err.message}`);
      }
      let vni: number | undefined;
      const vniText = n.DriverState?.Options?.[VXLAN_ID_OPTION];
      if (vniText !== undefined) {
        vni = VniSet.parse(vniText.split(',')[0] ?? '');
        if (this.vnis.has(vni)) throw new RestoreConflictError(`network ${name}: VXLAN id ${vni} is held twice`);
        this.vnis.take(vni);
      }
      this.networks.set(n.ID, {
        network: n,
        ...(vni !== undefined ? { vni } : {}),
        addresses: new SubnetAddresses(name, config),
      });
      summary.networks++;
    }
    const hold = (networkId: string, addr: string, owner: string): void => {
      const a = this.networks.get(networkId)?.addresses;
      if (!a) {
        summary.orphans.push(`${owner} ${addr} on ${networkId}`);
        return;
      }
      try {
        a.mark(a.parseOwn(addr), owner);
      } catch (err) {
        if (!(err instanceof NetworkError)) throw err;
        throw new RestoreConflictError(err.message);
      }
      summary.addresses++;
    };
    for (const s of objects.services ?? [])
      for (const v of s.Endpoint?.VirtualIPs ?? [])
        if (v.NetworkID && v.Addr) hold(v.NetworkID, v.Addr, vipOwner(s.ID ?? ''));
    for (const t of objects.tasks ?? [])
      for (const att of t.NetworksAttachments ?? [])
        for (const addr of att.Addresses ?? []) if (att.Network?.ID) hold(att.Network.ID, addr, taskOwner(t.ID ?? ''));
    return summary;
  }

  private get(networkId: string): Allocated {
    const a = this.networks.get(networkId);
    if (!a) throw new NetworkNotFoundError(networkId);
    return a;
  }

  private checkOverlap(subnet: Cidr, self: string): void {
    for (const [id, a] of this.networks) {
      if (id === self) continue;
      const other = a.addresses.config.subnet;
      if (overlaps(subnet, other))
        throw new SubnetOverlapError(formatCidr(subnet), formatCidr(other), `network ${a.network.Spec?.Name ?? id}`);
    }
  }
}

function ipamConfig(c: SubnetConfig): IPAMConfig {
  return {
    Subnet: formatCidr(c.subnet),
    Gateway: formatIp(c.gateway),
    ...(c.rangeGiven ? { Range: formatCidr(c.range) } : {}),
  };
}
