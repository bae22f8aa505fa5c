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
  NotLeaderError,
  InvalidConfChangeError,
  InvalidRaftConfigError,
  RaftDecodeError,
  RaftInvariantError,
  ReadyNotAdvancedError,
} from './errors.js';
export * from './core/types.js';
