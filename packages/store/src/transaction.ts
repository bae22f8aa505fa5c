/**
 * Transactions: the unit of change. A transaction is a list of operations that the store applies
 * all or nothing, after checking every one against the state at that point of the log. The
 * proposer stamps the time, so that every manager writes the same CreatedAt/UpdatedAt.
 */
import { InvalidTransactionError, StoreDecodeError } from './errors.js';
import { decodeJson, encodeJson } from './codec.js';
import { isObjectKind, type ObjectKind, type StoredObject } from './kinds.js';

/** Creates `object`; its Version, CreatedAt and UpdatedAt are set by the store. */
export interface CreateOp {
  readonly op: 'create';
  readonly kind: ObjectKind;
  readonly object: StoredObject;
}

/** Replaces the object with the same ID; `object.Version.Index` must be the current version. */
export interface UpdateOp {
  readonly op: 'update';
  readonly kind: ObjectKind;
  readonly object: StoredObject;
}

/** Removes an object; with `version`, only if the object is still at that version. */
export interface RemoveOp {
  readonly op: 'remove';
  readonly kind: ObjectKind;
  readonly id: string;
  readonly version?: number;
}

export type Operation = CreateOp | UpdateOp | RemoveOp;

export interface Transaction {
  readonly ops: readonly Operation[];
  /** RFC 3339 time stamped by the proposer. */
  readonly at: string;
}

/** One replicated command: the transactions proposed together in one Raft entry. */
export interface Batch {
  readonly v: 1;
  readonly txns: readonly Transaction[];
}

export function encodeBatch(b: Batch): Uint8Array {
  return encodeJson(b);
}

export function decodeBatch(data: Uint8Array): Batch {
  let parsed: unknown;
  try {
    parsed = decodeJson(data);
  } catch (err) {
    throw new StoreDecodeError(`store command is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { v?: unknown }).v !== 1) {
    throw new StoreDecodeError('store command has no known version');
  }
  const txns = (parsed as { txns?: unknown }).txns;
  if (!Array.isArray(txns)) throw new StoreDecodeError('store command has no transactions');
  return parsed as Batch;
}

/** Checks the shape of a transaction before it is proposed (the apply side checks again). */
export function checkTransaction(t: Transaction): void {
  if (t.ops.length === 0) throw new InvalidTransactionError('a transaction needs at least one operation');
  if (Number.isNaN(Date.parse(t.at))) throw new InvalidTransactionError(`bad transaction time '${t.at}'`);
  const touched = new Set<string>();
  for (const [i, op] of t.ops.entries()) {
    if (!isObjectKind(op.kind))
      throw new InvalidTransactionError(`operation ${i}: unknown object kind '${String(op.kind)}'`);
    const id = op.op === 'remove' ? op.id : op.object.ID;
    if (typeof id !== 'string' || id === '') throw new InvalidTransactionError(`operation ${i}: ${op.kind} has no ID`);
    const key = `${op.kind}/${id}`;
    if (touched.has(key)) throw new InvalidTransactionError(`operation ${i}: ${key} appears twice in one transaction`);
    touched.add(key);
  }
}
