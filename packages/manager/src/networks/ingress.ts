/**
 * The `ingress` network `swarm init` makes, as Docker's: an overlay with `Ingress: true` that
 * carries the routing mesh (tasks of services publishing ports in ingress mode are attached to
 * it). Allocated from the new cluster's own pool, the first network of the cluster.
 */
import type { Network, NetworkSpec } from '@shoal/api';
import { newObjectId } from '@shoal/common';
import { NetworkAllocator } from '@shoal/network';

export const INGRESS_NAME = 'ingress';

export function ingressSpec(): NetworkSpec {
  return {
    Name: INGRESS_NAME,
    Labels: {},
    DriverConfiguration: { Name: 'overlay', Options: {} },
    Ingress: true,
    Scope: 'swarm',
  };
}

/** The ingress network to store with the cluster: subnet and VXLAN id from the pool's first. */
export function ingressNetwork(
  defaultAddrPool: readonly string[],
  subnetSize: number,
): Network & { ID: string; Spec: NetworkSpec } {
  const id = newObjectId();
  const spec = ingressSpec();
  const allocated = new NetworkAllocator({ defaultAddrPool, subnetSize }).allocateNetwork({ ID: id, Spec: spec });
  return { ID: id, Spec: spec, DriverState: allocated.DriverState ?? {}, IPAMOptions: allocated.IPAMOptions ?? {} };
}
