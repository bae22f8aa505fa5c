/**
 * The store as a stack deploy sees it while planning: the objects it is about to create are
 * found by ID and name (so a service can name a secret or network created with it), the ones it
 * is about to remove are gone. Nothing here writes.
 */
import type { ClusterStore, ObjectKind, StoredObject } from '@shoal/store';
import type { ObjectReader } from '../services/objects.js';

export class StackView implements ObjectReader {
  private readonly added = new Map<ObjectKind, Map<string, StoredObject>>();
  private readonly removed = new Set<string>();

  constructor(private readonly store: ClusterStore) {}

  /** An object the deploy will create (Version 0 until it is written). */
  add(kind: ObjectKind, obj: { ID: string; Spec?: StoredObject['Spec'] }): void {
    let m = this.added.get(kind);
    if (m === undefined) {
      m = new Map<string, StoredObject>();
      this.added.set(kind, m);
    }
    const stored: StoredObject = { ...obj, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '' };
    m.set(obj.ID, stored);
  }

  /** An object the deploy will remove. */
  remove(kind: ObjectKind, id: string): void {
    this.removed.add(`${kind}/${id}`);
  }

  get<T extends StoredObject = StoredObject>(kind: ObjectKind, id: string): T | undefined {
    if (this.removed.has(`${kind}/${id}`)) return undefined;
    return (this.added.get(kind)?.get(id) as T | undefined) ?? this.store.get<T>(kind, id);
  }

  byName<T extends StoredObject = StoredObject>(kind: ObjectKind, name: string): T | undefined {
    for (const o of this.added.get(kind)?.values() ?? []) if (o.Spec?.Name === name) return o as T;
    const o = this.store.byName<T>(kind, name);
    return o === undefined || this.removed.has(`${kind}/${o.ID}`) ? undefined : o;
  }

  list<T extends StoredObject = StoredObject>(kind: ObjectKind): T[] {
    const stored = this.store.list<T>(kind).filter((o) => !this.removed.has(`${kind}/${o.ID}`));
    return [...stored, ...([...(this.added.get(kind)?.values() ?? [])] as T[])];
  }
}
