/**
 * @module @shoal/store
 * The cluster's object store: one table per object kind with indexes, versioned objects with
 * optimistic concurrency, all-or-nothing transactions, watches from a revision, and snapshots;
 * replicated as the state machine of @shoal/raft. See docs/store.md.
 */
export {
  StoreError,
  ObjectNotFoundError,
  ObjectExistsError,
  VersionConflictError,
  InvalidTransactionError,
  WatchCompactedError,
  StoreUnavailableError,
  StoreDecodeError,
} from './errors.js';
export {
  OBJECT_KINDS,
  KIND_TABLES,
  isObjectKind,
  type ObjectKind,
  type StoredObject,
  type IndexName,
} from './kinds.js';
export type { Operation, CreateOp, UpdateOp, RemoveOp, Transaction } from './transaction.js';
export { ObjectState, type Change, type ChangeAction, type TxnResult } from './state.js';
export { WatchHub, type WatchOptions, type WatchHubOptions } from './watch.js';
export { StoreStateMachine } from './state-machine.js';
export { LocalLog, type ReplicatedLog } from './replicated-log.js';
export { ClusterStore, Tx, type ClusterStoreOptions, type Committed } from './store.js';
