/**
 * Published ports of services as the allocator writes them in `Endpoint.Ports`, as SwarmKit's
 * port allocator: a port published in ingress mode (the routing mesh, on every node) belongs to
 * one service in the whole cluster; one asked as 0 gets the lowest free port of the dynamic
 * range 30000-32767, and keeps it while the service keeps that port in its spec. Host-mode
 * ports are copied as given (the scheduler keeps them apart per node). Rebuilt from the stored
 * services' `Endpoint.Ports` on a new leader.
 */
import type { PortConfig, ServiceSpec } from '@shoal/api';
import type { ClusterStore } from '@shoal/store';
import { PortInUseError } from '../errors.js';
import type { StoredService } from '../services/objects.js';

export const DYNAMIC_PORT_START = 30000;
export const DYNAMIC_PORT_END = 32767;

function isIngress(p: PortConfig): boolean {
  return (p.PublishMode || 'ingress') === 'ingress';
}

function key(protocol: string | undefined, port: number): string {
  return `${port}/${protocol || 'tcp'}`;
}

export class IngressPorts {
  /** "port/protocol" -> the service holding it. */
  private readonly owners = new Map<string, string>();

  clear(): void {
    this.owners.clear();
  }

  /** Marks the ingress ports of a stored service's Endpoint.Ports as held (restore). */
  hold(serviceId: string, ports: readonly PortConfig[]): void {
    for (const p of ports) {
      if (isIngress(p) && (p.PublishedPort ?? 0) > 0) this.owners.set(key(p.Protocol, p.PublishedPort ?? 0), serviceId);
    }
  }

  /** Gives back every port a service holds. */
  release(serviceId: string): void {
    for (const [k, owner] of this.owners) if (owner === serviceId) this.owners.delete(k);
  }

  /** Gives back the ports of every service `exists` says is gone. */
  releaseGone(exists: (serviceId: string) => boolean): void {
    for (const [k, owner] of this.owners) if (!exists(owner)) this.owners.delete(k);
  }

  /** The service holding an ingress port, if any. */
  ownerOf(protocol: string | undefined, port: number): string | undefined {
    return this.owners.get(key(protocol, port));
  }

  /**
   * The Endpoint.Ports of a service for its spec's ports, keeping the dynamic ports it already
   * holds (`current`). All or nothing: on a conflict it throws and holds what it held before.
   */
  allocate(
    serviceId: string,
    serviceName: string,
    spec: readonly PortConfig[],
    current: readonly PortConfig[],
  ): PortConfig[] {
    const mine = new Set([...this.owners].filter(([, o]) => o === serviceId).map(([k]) => k));
    const taken = new Set<string>();
    const out: PortConfig[] = [];
    const reusable = current.filter((p) => isIngress(p) && (p.PublishedPort ?? 0) >= DYNAMIC_PORT_START);
    const free = (k: string): boolean => !taken.has(k) && (!this.owners.has(k) || mine.has(k));
    // Ports the user gave first, so a dynamic one never takes them.
    for (const p of spec) {
      if (!isIngress(p) || (p.PublishedPort ?? 0) === 0) continue;
      const k = key(p.Protocol, p.PublishedPort ?? 0);
      if (!free(k)) {
        const other = this.owners.get(k);
        throw new PortInUseError(
          `service ${serviceName}: port ${k} is already published in ingress mode${other !== undefined && other !== serviceId ? ` by service ${other}` : ' twice'}`,
        );
      }
      taken.add(k);
    }
    for (const p of spec) {
      const port: PortConfig = { ...p, Protocol: p.Protocol || 'tcp', PublishMode: p.PublishMode || 'ingress' };
      if (!isIngress(p) || (p.PublishedPort ?? 0) > 0) {
        out.push(port);
        continue;
      }
      const again = reusable.find(
        (c) =>
          c.TargetPort === p.TargetPort &&
          (c.Protocol || 'tcp') === port.Protocol &&
          free(key(c.Protocol, c.PublishedPort ?? 0)),
      );
      let chosen = again?.PublishedPort;
      if (chosen === undefined) {
        for (let n = DYNAMIC_PORT_START; n <= DYNAMIC_PORT_END; n++) {
          if (free(key(port.Protocol, n))) {
            chosen = n;
            break;
          }
        }
      }
      if (chosen === undefined)
        throw new PortInUseError(
          `service ${serviceName}: no free port left in ${DYNAMIC_PORT_START}-${DYNAMIC_PORT_END} for ${port.Protocol} port ${p.TargetPort}`,
        );
      taken.add(key(port.Protocol, chosen));
      out.push({ ...port, PublishedPort: chosen });
    }
    this.release(serviceId);
    for (const k of taken) this.owners.set(k, serviceId);
    return out;
  }
}

/**
 * Control's check at service create and update (as SwarmKit's): a port the spec publishes in
 * ingress mode must not be published in ingress mode by another service (its spec or its
 * allocated ports). Throws MANAGER_PORT_IN_USE naming the port and the service.
 */
export function checkIngressPortsFree(store: Pick<ClusterStore, 'list'>, spec: ServiceSpec, selfId?: string): void {
  const wanted = (spec.EndpointSpec?.Ports ?? []).filter((p) => isIngress(p) && (p.PublishedPort ?? 0) > 0);
  if (wanted.length === 0) return;
  for (const other of store.list<StoredService>('service')) {
    if (other.ID === selfId) continue;
    const held = [...(other.Spec?.EndpointSpec?.Ports ?? []), ...(other.Endpoint?.Ports ?? [])].filter(
      (p) => isIngress(p) && (p.PublishedPort ?? 0) > 0,
    );
    for (const p of wanted) {
      const k = key(p.Protocol, p.PublishedPort ?? 0);
      if (held.some((h) => key(h.Protocol, h.PublishedPort ?? 0) === k))
        throw new PortInUseError(
          `service ${spec.Name ?? ''}: port ${k} is already published in ingress mode by service ${other.Spec?.Name ?? other.ID} (${other.ID})`,
        );
    }
  }
}
