/**
 * One table: the objects of a kind by ID, with a unique name index (where the kind has one)
 * and multi-valued secondary indexes. Objects are frozen when stored, so readers share them
 * without copies and nobody can change the store's state behind its back.
 */
import { KIND_TABLES, nameOf, type IndexName, type ObjectKind, type StoredObject } from './kinds.js';

export class Table {
  private readonly byId = new Map<string, StoredObject>();
  private readonly byName = new Map<string, string>();
  private readonly secondary = new Map<IndexName, Map<string, Set<string>>>();

  constructor(readonly kind: ObjectKind) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): StoredObject | undefined {
    return this.byId.get(id);
  }

  /** The ID of the object named `name` (kinds with unique names only). */
  idByName(name: string): string | undefined {
    return this.byName.get(name);
  }

  all(): IterableIterator<StoredObject> {
    return this.byId.values();
  }

  /** Objects whose index `index` has the value `value`. */
  *find(index: IndexName, value: string): Generator<StoredObject> {
    if (index === 'name') {
      const id = this.byName.get(value);
      const o = id === undefined ? undefined : this.byId.get(id);
      if (o !== undefined) yield o;
      return;
    }
    const ids = this.secondary.get(index)?.get(value);
    if (ids === undefined) return;
    for (const id of ids) {
      const o = this.byId.get(id);
      if (o !== undefined) yield o;
    }
  }

  /** Inserts or replaces `o` (already validated), keeping every index in step. */
  put(o: StoredObject): void {
    const old = this.byId.get(o.ID);
    if (old !== undefined) this.unindex(old);
    const frozen = deepFreeze(o);
    this.byId.set(o.ID, frozen);
    this.index(frozen);
  }

  delete(id: string): StoredObject | undefined {
    const old = this.byId.get(id);
    if (old === undefined) return undefined;
    this.unindex(old);
    this.byId.delete(id);
    return old;
  }

  clear(): void {
    this.byId.clear();
    this.byName.clear();
    this.secondary.clear();
  }

  private index(o: StoredObject): void {
    const table = KIND_TABLES[this.kind];
    const name = nameOf(o);
    if (table.uniqueName && name !== undefined) this.byName.set(name, o.ID);
    for (const [index, extract] of Object.entries(table.indexes) as [IndexName, (o: StoredObject) => unknown][]) {
      const v = extract(o);
      if (typeof v !== 'string') continue;
      let m = this.secondary.get(index);
      if (m === undefined) this.secondary.set(index, (m = new Map<string, Set<string>>()));
      let ids = m.get(v);
      if (ids === undefined) m.set(v, (ids = new Set()));
      ids.add(o.ID);
    }
  }

  private unindex(o: StoredObject): void {
    const table = KIND_TABLES[this.kind];
    const name = nameOf(o);
    if (table.uniqueName && name !== undefined && this.byName.get(name) === o.ID) this.byName.delete(name);
    for (const [index, extract] of Object.entries(table.indexes) as [IndexName, (o: StoredObject) => unknown][]) {
      const v = extract(o);
      if (typeof v !== 'string') continue;
      const ids = this.secondary.get(index)?.get(v);
      ids?.delete(o.ID);
      if (ids?.size === 0) this.secondary.get(index)?.delete(v);
    }
  }
}

/** Freezes a JSON-shaped value in place, all the way down, and returns it. */
export function deepFreeze<T>(v: T): T {
  // Bytes (Buffers) cannot be frozen; objects hold them as opaque values.
  if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v as object)) deepFreeze(child);
  }
  return v;
}
