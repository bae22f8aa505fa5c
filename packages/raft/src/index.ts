/**
 * @module @shoal/raft
 * Raft consensus for Shoal managers: a deterministic, I/O-free core (RawNode: tick / step /
 * propose -> ready -> persist, send, apply -> advance) plus storage, driver and transport.
 * See docs/raft.md.
 */
export const PACKAGE = '@shoal/raft';

// ---- core (errors, contract types) ----
export {
  RaftError,
  ProposalDroppedError,
  CompactedError,
  UnavailableError,
  SnapshotTemporarilyUnavailableError,
  SnapshotOutOfDateError,
  InvalidConfChangeError,
  InvalidRaftConfigError,
  RaftDecodeError,
  RaftInvariantError,
  ReadyNotAdvancedError,
} from './errors.js';
export * from './core/types.js';
export { RawNode, bootstrapSnapshot, validateConfig } from './core/raw-node.js';
export { MemoryStorage } from './core/memory-storage.js';
export { encodeConfChange, decodeConfChange } from './core/conf-codec.js';
export { isEmptySnapshot, EMPTY_CONF_STATE, EMPTY_HARD_STATE, EMPTY_SNAPSHOT, entrySize } from './core/util.js';

// ---- storage, driver, transport ----
export {
  WalCorruptError,
  StorageLockedError,
  StorageFatalError,
  SnapshotCorruptError,
  ProposalOutcomeUnknownError,
  ProposalSupersededError,
  NodeClosedError,
} from './errors.js';
export { Wal, type WalOptions, type WalState, type SnapshotRef } from './wal/wal.js';
export { identityCipher, type RecordCipher } from './wal/record.js';
export { Snapshotter } from './snap/snapshotter.js';
export { DiskLogStore, type DiskLogStoreOptions } from './snap/disk-store.js';
export type { LogStore, BootState } from './driver/log-store.js';
export {
  RaftNode,
  type RaftNodeOptions,
  type StateMachine,
  type AppliedEntry,
  type LeaderInfo,
} from './driver/raft-node.js';
export type { Transport, TransportHandlers } from './transport/transport.js';
export type { SnapshotFiles, SnapshotReceiver } from './driver/snapshot-stream.js';
export { TcpTransport, type TcpTransportOptions } from './transport/tcp-transport.js';
export { encodeMessage, decodeMessage, encodeEntry, decodeEntry } from './codec/message-codec.js';
// The KV service, linearizability checker, simulator and benchmark: '@shoal/raft/testing'.
