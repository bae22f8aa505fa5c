/**
 * A service's networks as stored: `TaskTemplate.Networks` (and the deprecated `Spec.Networks`,
 * moved there as Docker does) with each Target resolved from an ID, name or unique ID prefix to
 * the network's ID. An unknown network, one given twice, or the ingress network (attached only
 * through published ports) is refused.
 */
import type { NetworkAttachmentConfig, ServiceSpec } from '@shoal/api';
import type { ManagerContext } from '../context.js';
import { InvalidRequestError, NetworkNotFoundError } from '../errors.js';
import { findRef, type ObjectReader, type StoredNetwork } from '../services/objects.js';

export function resolveServiceNetworks(ctx: ManagerContext, spec: ServiceSpec, reader: ObjectReader = ctx.store): void {
  const given = [...(spec.TaskTemplate?.Networks ?? []), ...(spec.Networks ?? [])];
  delete spec.Networks;
  if (given.length === 0) return;
  const name = spec.Name ?? '';
  const seen = new Set<string>();
  const out: NetworkAttachmentConfig[] = given.map((n) => {
    const ref = n.Target ?? '';
    const net = findRef<StoredNetwork>(reader, 'network', ref);
    if (net === undefined) throw new NetworkNotFoundError(ref || '(empty)', name);
    const netName = net.Spec?.Name ?? net.ID;
    if (net.Spec?.Ingress === true)
      throw new InvalidRequestError(
        `service ${name}: the ingress network ${netName} cannot be attached explicitly (publish a port instead)`,
      );
    if (seen.has(net.ID)) throw new InvalidRequestError(`service ${name}: network ${netName} is given twice`);
    seen.add(net.ID);
    return { ...n, Target: net.ID, Aliases: [...(n.Aliases ?? [])] };
  });
  spec.TaskTemplate = { ...spec.TaskTemplate, Networks: out };
}
