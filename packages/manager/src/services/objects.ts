/**
 * Stored services, tasks, secrets and configs, and how Control finds them: an ID, a unique ID
 * prefix, or a name (tasks: an ID or unique ID prefix).
 */
import type { Config, Network, Secret, Service, Task } from '@shoal/api';
import type { ClusterStore, StoredObject } from '@shoal/store';
import { fromStored } from '../context.js';
import {
  AmbiguousRefError,
  ConfigNotFoundError,
  NetworkNotFoundError,
  SecretNotFoundError,
  ServiceNotFoundError,
  TaskNotFoundError,
} from '../errors.js';

export type StoredService = Service & StoredObject;
export type StoredTask = Task & StoredObject;
export type StoredSecret = Secret & StoredObject;
export type StoredConfig = Config & StoredObject;
export type StoredNetwork = Network & StoredObject;

type Kind = 'service' | 'task' | 'secret' | 'config' | 'network';

/**
 * What reference lookups read: the store itself, or a view of it with a transaction's pending
 * objects added (stacks/stack-view.ts), so a service can name a secret created with it.
 */
export type ObjectReader = Pick<ClusterStore, 'get' | 'byName' | 'list'>;

function notFound(kind: Kind, ref: string): Error {
  switch (kind) {
    case 'service':
      return new ServiceNotFoundError(ref);
    case 'task':
      return new TaskNotFoundError(ref);
    case 'secret':
      return new SecretNotFoundError(ref);
    case 'config':
      return new ConfigNotFoundError(ref);
    case 'network':
      return new NetworkNotFoundError(ref);
  }
}

/** The object of `kind` named by `ref` (ID, name, unique ID prefix), or undefined. */
export function findRef<T extends StoredObject>(store: ObjectReader, kind: Kind, ref: string): T | undefined {
  if (ref === '') return undefined;
  const byId = store.get<T>(kind, ref);
  if (byId !== undefined) return byId;
  if (kind !== 'task') {
    const byName = store.byName<T>(kind, ref);
    if (byName !== undefined) return byName;
  }
  const matches = store.list<T>(kind).filter((o) => o.ID.startsWith(ref));
  if (matches.length > 1) throw new AmbiguousRefError(kind, ref, matches.length);
  return matches[0];
}

/** As findRef, but a missing object is the kind's not-found error. */
export function resolveRef<T extends StoredObject>(store: ObjectReader, kind: Kind, ref: string): T {
  const o = findRef<T>(store, kind, ref);
  if (o === undefined) throw notFound(kind, ref || '(empty)');
  return o;
}

/** A secret as clients see it: Spec.Data is never returned. */
export function secretView(s: StoredSecret): Secret {
  const out = fromStored<Secret>(s);
  return { ...out, Spec: { ...out.Spec, Data: Buffer.alloc(0) } };
}

/** Labels filter as Docker's `label=k` / `label=k=v`: every entry must match ('' = any value). */
export function labelsMatch(
  want: Readonly<Record<string, string>> | undefined,
  have: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const [k, v] of Object.entries(want ?? {})) {
    const h = have?.[k];
    if (h === undefined || (v !== '' && h !== v)) return false;
  }
  return true;
}

/** The common filters of ID prefixes, exact names, name prefixes and labels. */
export function baseFilter(
  f: { IDPrefixes?: string[]; Names?: string[]; NamePrefixes?: string[]; Labels?: Record<string, string> } | undefined,
  o: { ID: string; Spec?: { Name?: string; Labels?: Record<string, string> } | undefined },
): boolean {
  if (f === undefined) return true;
  const name = o.Spec?.Name ?? '';
  if ((f.IDPrefixes ?? []).length > 0 && !(f.IDPrefixes ?? []).some((p) => o.ID.startsWith(p))) return false;
  if ((f.Names ?? []).length > 0 && !(f.Names ?? []).includes(name)) return false;
  if ((f.NamePrefixes ?? []).length > 0 && !(f.NamePrefixes ?? []).some((p) => name.startsWith(p))) return false;
  return labelsMatch(f.Labels, o.Spec?.Labels);
}
