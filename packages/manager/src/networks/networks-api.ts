/**
 * Control RPCs for networks. `CreateNetwork` checks the spec (overlay driver only, one IPv4
 * subnet, no IPv6, no config-from), refuses `--opt encrypted` on a kernel without IPsec ESP, and
 * allocates the subnet, gateway and VXLAN id with the leader's allocator before writing: an
 * overlapping subnet or an exhausted pool fails and stores nothing. `RemoveNetwork` is refused
 * while a service or a task still uses the network, naming them; otherwise its subnet and VNI
 * go back to the pool with it. Network names are unique.
 */
import {
  type CreateNetworkRequest,
  type ListNetworksRequest,
  type Network,
  type NetworkSpec,
  networkSpecProblems,
} from '@shoal/api';
import { newObjectId } from '@shoal/common';
import { requireEncryptionSupportFor } from '@shoal/network';
import { fromStored, type ManagerContext } from '../context.js';
import { InvalidRequestError, NameExistsError, NetworkInUseError } from '../errors.js';
import { taskDisplayName } from '../services/services-api.js';
import {
  baseFilter,
  findRef,
  type ObjectReader,
  resolveRef,
  type StoredNetwork,
  type StoredService,
  type StoredTask,
} from '../services/objects.js';
import { isNetworkAttachmentTask } from './attachments.js';
import { holdsAddresses, type NetworkAllocation } from './network-allocation.js';

export const OVERLAY = 'overlay';

/** The spec to store, checked: every problem named in one line. */
export function prepareNetworkSpec(given: NetworkSpec): NetworkSpec {
  const spec: NetworkSpec = structuredClone(given);
  const name = spec.Name ?? '';
  const problems = networkSpecProblems(spec).map((p) => `${p.path}: ${p.message}`);
  const driver = spec.DriverConfiguration?.Name || OVERLAY;
  if (driver !== OVERLAY) problems.push(`driver "${driver}" is not supported for swarm networks (only "${OVERLAY}")`);
  if (spec.IPv6Enabled === true) problems.push('IPv6 networks are not supported');
  if (spec.ConfigFrom?.Network) problems.push('--config-from is not supported');
  if (spec.Ingress === true && spec.Attachable === true) problems.push('an ingress network cannot be attachable');
  if ((spec.IPAMOptions?.Configs ?? []).length > 1) problems.push('only one --subnet per network is supported');
  if (problems.length > 0)
    throw new InvalidRequestError(`invalid network spec${name ? ` ${name}` : ''}: ${problems.join('; ')}`);
  spec.DriverConfiguration = { Name: OVERLAY, Options: { ...spec.DriverConfiguration?.Options } };
  spec.Labels = { ...spec.Labels };
  spec.Scope = 'swarm';
  return spec;
}

/**
 * The checks `createNetwork` makes before allocating: the spec (prepareNetworkSpec), a free name
 * in `reader`, at most one ingress network, kernel support for `encrypted`. Writes nothing.
 */
export async function checkNewNetwork(reader: ObjectReader, given: NetworkSpec | undefined): Promise<NetworkSpec> {
  if (given === undefined) throw new InvalidRequestError('create of a network: Spec is required');
  const spec = prepareNetworkSpec(given);
  const name = spec.Name ?? '';
  if (reader.byName('network', name) !== undefined) throw new NameExistsError('network', name);
  if (spec.Ingress === true) {
    const other = reader.list<StoredNetwork>('network').find((n) => n.Spec?.Ingress === true);
    if (other !== undefined)
      throw new NameExistsError('ingress network', `${other.Spec?.Name ?? other.ID} (only one is allowed)`);
  }
  await requireEncryptionSupportFor(spec);
  return spec;
}

/** Who uses a network: services attached to it (or holding a VIP on it) and live tasks on it. */
export function networkUsers(ctx: ManagerContext, id: string): string[] {
  const services = ctx.store
    .list<StoredService>('service')
    .filter(
      (s) =>
        (s.Spec?.TaskTemplate?.Networks ?? []).some((n) => n.Target === id) ||
        (s.Endpoint?.VirtualIPs ?? []).some((v) => v.NetworkID === id),
    )
    .map((s) => `service ${s.Spec?.Name ?? s.ID}`);
  const tasks = ctx.store
    .list<StoredTask>('task')
    .filter((t) => holdsAddresses(t) && (t.NetworksAttachments ?? []).some((a) => a.Network?.ID === id))
    .map((t) =>
      isNetworkAttachmentTask(t)
        ? `container ${t.Spec?.NetworkAttachmentSpec?.ContainerID ?? t.ID}`
        : `task ${taskDisplayName(t)}`,
    );
  return [...services.sort(), ...tasks.sort()];
}

export class NetworksApi {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly allocation: NetworkAllocation,
  ) {}

  getNetwork(ref: string): Network {
    return fromStored<Network>(resolveRef<StoredNetwork>(this.ctx.store, 'network', ref));
  }

  listNetworks(req: ListNetworksRequest): Network[] {
    const f = req.Filters;
    const drivers = f?.Drivers ?? [];
    return this.ctx.store
      .list<StoredNetwork>('network')
      .filter((n) => baseFilter(f, n))
      .filter((n) => drivers.length === 0 || drivers.includes(n.Spec?.DriverConfiguration?.Name ?? OVERLAY))
      .sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''))
      .map((n) => fromStored<Network>(n));
  }

  async createNetwork(req: CreateNetworkRequest): Promise<Network> {
    const spec = await checkNewNetwork(this.ctx.store, req.Spec);
    const name = spec.Name ?? '';
    const id = newObjectId();
    await this.allocation.exclusive('network create', async (a) => {
      // Checked again inside the queue: another create may have taken the name meanwhile.
      if (this.ctx.store.byName('network', name) !== undefined) throw new NameExistsError('network', name);
      const allocated = a.allocateNetwork({ ID: id, Spec: spec });
      try {
        await this.ctx.store.update((tx) =>
          tx.create('network', {
            ID: id,
            Spec: spec,
            DriverState: allocated.DriverState ?? {},
            IPAMOptions: allocated.IPAMOptions ?? {},
          }),
        );
      } catch (err) {
        a.releaseNetwork(id);
        throw err;
      }
      this.allocation.networkAllocated(id);
    });
    return this.getNetwork(id);
  }

  async removeNetwork(ref: string): Promise<void> {
    const cur = resolveRef<StoredNetwork>(this.ctx.store, 'network', ref);
    await this.allocation.exclusive('network rm', async (a) => {
      const n = this.ctx.store.get<StoredNetwork>('network', cur.ID);
      if (n === undefined) return;
      const users = networkUsers(this.ctx, n.ID);
      if (users.length > 0) throw new NetworkInUseError(n.Spec?.Name ?? n.ID, users);
      await this.ctx.store.update((tx) => tx.remove('network', n.ID, n.Version.Index));
      a.releaseNetwork(n.ID);
    });
  }

  /** The stored network a service attaches to (by ID, name or unique ID prefix), or undefined. */
  find(ref: string): StoredNetwork | undefined {
    return findRef<StoredNetwork>(this.ctx.store, 'network', ref);
  }
}
