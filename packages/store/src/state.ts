/**
 * The object database every manager holds: one table per kind and a revision that counts applied
 * transactions. apply() is deterministic: it depends only on the state and the transaction (whose
 * time the proposer stamped), so every manager that applies the same log holds the same objects
 * with the same versions. Each object's Version.Index is the revision of its last change.
 */
import {
  InvalidTransactionError,
  ObjectExistsError,
  ObjectNotFoundError,
  StoreError,
  VersionConflictError,
} from './errors.js';
import { KIND_TABLES, OBJECT_KINDS, nameOf, type ObjectKind, type StoredObject } from './kinds.js';
import { Table } from './table.js';
import { checkTransaction, type Transaction } from './transaction.js';

export type ChangeAction = 'create' | 'update' | 'remove';

/** One change, as watches deliver it. */
export interface Change {
  readonly revision: number;
  readonly kind: ObjectKind;
  readonly action: ChangeAction;
  /** The object after the change (for remove: as it was when removed). */
  readonly object: StoredObject;
  /** The object before an update. */
  readonly previous?: StoredObject;
}

export type TxnResult =
  | { readonly ok: true; readonly revision: number; readonly changes: readonly Change[] }
  | { readonly ok: false; readonly error: StoreError };

export interface StateSnapshot {
  readonly v: 1;
  readonly revision: number;
  readonly objects: Partial<Record<ObjectKind, StoredObject[]>>;
}

export class ObjectState {
  private rev = 0;
  private readonly tables = new Map<ObjectKind, Table>(OBJECT_KINDS.map((k) => [k, new Table(k)]));

  get revision(): number {
    return this.rev;
  }

  table(kind: ObjectKind): Table {
    const t = this.tables.get(kind);
    if (t === undefined) throw new InvalidTransactionError(`unknown object kind '${kind}'`);
    return t;
  }

  /**
   * Applies `t` all or nothing. On success the revision moves up by one and every change carries
   * it; on failure nothing changes and the first failed check is returned.
   */
  apply(t: Transaction): TxnResult {
    try {
      checkTransaction(t);
      const next = this.rev + 1;
      const staged = this.stage(t, next);
      for (const c of staged) {
        const table = this.table(c.kind);
        if (c.action === 'remove') table.delete(c.object.ID);
        else table.put(c.object);
      }
      this.rev = next;
      return {
        ok: true,
        revision: next,
        changes: staged.map((c) => ({ ...c, object: this.table(c.kind).get(c.object.ID) ?? c.object })),
      };
    } catch (err) {
      if (err instanceof StoreError) return { ok: false, error: err };
      throw err;
    }
  }

  /** Checks every operation against the state as the earlier operations of `t` would leave it. */
  private stage(t: Transaction, revision: number): Change[] {
    const changes: Change[] = [];
    // Names taken or freed by earlier operations of this transaction.
    const names = new Map<string, string | undefined>();
    const nameOwner = (kind: ObjectKind, name: string): string | undefined => {
      const key = `${kind}\0${name}`;
      return names.has(key) ? names.get(key) : this.table(kind).idByName(name);
    };
    for (const op of t.ops) {
      const table = this.table(op.kind);
      const unique = KIND_TABLES[op.kind].uniqueName;
      if (op.op === 'create') {
        if (table.get(op.object.ID) !== undefined) throw new ObjectExistsError(op.kind, 'ID', op.object.ID);
        const name = nameOf(op.object);
        if (unique) {
          if (name === undefined) throw new InvalidTransactionError(`${op.kind} ${op.object.ID} has no Spec.Name`);
          if (nameOwner(op.kind, name) !== undefined) throw new ObjectExistsError(op.kind, 'name', name);
          names.set(`${op.kind}\0${name}`, op.object.ID);
        }
        const object = { ...op.object, Version: { Index: revision }, CreatedAt: t.at, UpdatedAt: t.at };
        changes.push({ revision, kind: op.kind, action: 'create', object });
      } else if (op.op === 'update') {
        const cur = table.get(op.object.ID);
        if (cur === undefined) throw new ObjectNotFoundError(op.kind, op.object.ID);
        const expected = op.object.Version?.Index;
        if (expected !== cur.Version.Index) {
          throw new VersionConflictError(op.kind, op.object.ID, expected ?? 0, cur.Version.Index);
        }
        if (unique) {
          const name = nameOf(op.object);
          if (name === undefined) throw new InvalidTransactionError(`${op.kind} ${op.object.ID} has no Spec.Name`);
          const oldName = nameOf(cur);
          if (name !== oldName) {
            const owner = nameOwner(op.kind, name);
            if (owner !== undefined && owner !== cur.ID) throw new ObjectExistsError(op.kind, 'name', name);
            names.set(`${op.kind}\0${name}`, cur.ID);
            if (oldName !== undefined) names.set(`${op.kind}\0${oldName}`, undefined);
          }
        }
        const object = { ...op.object, Version: { Index: revision }, CreatedAt: cur.CreatedAt, UpdatedAt: t.at };
        changes.push({ revision, kind: op.kind, action: 'update', object, previous: cur });
      } else {
        const cur = table.get(op.id);
        if (cur === undefined) throw new ObjectNotFoundError(op.kind, op.id);
        if (op.version !== undefined && op.version !== cur.Version.Index) {
          throw new VersionConflictError(op.kind, op.id, op.version, cur.Version.Index);
        }
        const name = nameOf(cur);
        if (unique && name !== undefined) names.set(`${op.kind}\0${name}`, undefined);
        changes.push({ revision, kind: op.kind, action: 'remove', object: cur });
      }
    }
    return changes;
  }

  snapshot(): StateSnapshot {
    const objects: Partial<Record<ObjectKind, StoredObject[]>> = {};
    for (const [kind, table] of this.tables) {
      if (table.size > 0) objects[kind] = [...table.all()];
    }
    return { v: 1, revision: this.rev, objects };
  }

  restore(s: StateSnapshot): void {
    for (const t of this.tables.values()) t.clear();
    for (const kind of OBJECT_KINDS) {
      for (const o of s.objects[kind] ?? []) this.table(kind).put(o);
    }
    this.rev = s.revision;
  }
}
