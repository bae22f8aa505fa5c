/**
 * The kinds of cluster object the store keeps, and the secondary indexes of each. The objects
 * follow Docker's Engine API shapes (`ID`, `Version.Index`, `CreatedAt`, `UpdatedAt`, `Spec`);
 * the store reads only the fields its indexes need, so it does not depend on the full types.
 */

export type ObjectKind = 'node' | 'service' | 'task' | 'network' | 'secret' | 'config' | 'cluster';

export const OBJECT_KINDS: readonly ObjectKind[] = [
  'node',
  'service',
  'task',
  'network',
  'secret',
  'config',
  'cluster',
];

/** What the store requires of every object. */
export interface StoredObject {
  readonly ID: string;
  readonly Version: { readonly Index: number };
  readonly CreatedAt: string;
  readonly UpdatedAt: string;
  readonly Spec?: { readonly Name?: string; readonly Labels?: Readonly<Record<string, string>> };
}

/** Secondary index names. `name` is unique within a kind; the others are multi-valued. */
export type IndexName = 'name' | 'service' | 'node' | 'desiredState' | 'role' | 'availability';

type Extract = (o: StoredObject) => string | undefined;

function field(path: readonly string[]): Extract {
  return (o) => {
    let v: unknown = o;
    for (const p of path) {
      if (typeof v !== 'object' || v === null) return undefined;
      v = (v as Record<string, unknown>)[p];
    }
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
}

export interface KindTable {
  /** Whether Spec.Name must be present and unique (nodes may share hostnames; tasks have none). */
  readonly uniqueName: boolean;
  readonly indexes: Partial<Record<Exclude<IndexName, 'name'>, Extract>>;
}

export const KIND_TABLES: Readonly<Record<ObjectKind, KindTable>> = {
  node: {
    uniqueName: false,
    indexes: { role: field(['Spec', 'Role']), availability: field(['Spec', 'Availability']) },
  },
  service: { uniqueName: true, indexes: {} },
  task: {
    uniqueName: false,
    indexes: {
      service: field(['ServiceID']),
      node: field(['NodeID']),
      desiredState: field(['DesiredState']),
    },
  },
  network: { uniqueName: true, indexes: {} },
  secret: { uniqueName: true, indexes: {} },
  config: { uniqueName: true, indexes: {} },
  cluster: { uniqueName: true, indexes: {} },
};

export function isObjectKind(v: unknown): v is ObjectKind {
  return typeof v === 'string' && (OBJECT_KINDS as readonly string[]).includes(v);
}

/** The object's Spec.Name, or undefined. */
export function nameOf(o: StoredObject): string | undefined {
  const n = o.Spec?.Name;
  return typeof n === 'string' && n !== '' ? n : undefined;
}
