/**
 * Typed errors of @shoal/raft. Every class carries a stable `code` (documented in docs/raft.md);
 * callers switch on the code or the class, never on the message text.
 */
import { ShoalError } from '@shoal/common';

/** Base class of every error thrown on purpose by @shoal/raft. */
export class RaftError extends ShoalError {}

/**
 * Thrown by propose/proposeConfChange/transferLeader/readIndex when the proposal cannot be
 * accepted now: no known leader, a leader transfer is in progress, the uncommitted-size cap is
 * reached, or this node was removed. Retrying later (possibly on another node) may succeed.
 */
export class ProposalDroppedError extends RaftError {
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super('RAFT_PROPOSAL_DROPPED', `raft proposal dropped: ${reason}`, { ...options, retryable: true });
    this.reason = reason;
  }
}

/** Thrown by Storage.entries/term when the requested index was compacted into a snapshot. */
export class CompactedError extends RaftError {
  readonly index: number;
  readonly firstIndex: number;
  constructor(index: number, firstIndex: number) {
    super('RAFT_COMPACTED', `raft log index ${index} is compacted (first available index ${firstIndex})`);
    this.index = index;
    this.firstIndex = firstIndex;
  }
}

/** Thrown by Storage.entries/term when the requested index is beyond the last stored entry. */
export class UnavailableError extends RaftError {
  readonly index: number;
  readonly lastIndex: number;
  constructor(index: number, lastIndex: number) {
    super('RAFT_UNAVAILABLE', `raft log index ${index} is not available (last index ${lastIndex})`);
    this.index = index;
    this.lastIndex = lastIndex;
  }
}

/** Thrown by Storage.snapshot when a snapshot is being prepared; the core retries later. */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  constructor() {
    super('RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE', 'raft snapshot is temporarily unavailable', { retryable: true });
  }
}

/** Thrown by Storage.applySnapshot/compact/createSnapshot when the snapshot is older than what is stored. */
export class SnapshotOutOfDateError extends RaftError {
  readonly index: number;
  readonly current: number;
  constructor(index: number, current: number) {
    super('RAFT_SNAPSHOT_OUT_OF_DATE', `raft snapshot at index ${index} is older than the current one at ${current}`);
    this.index = index;
    this.current = current;
  }
}

/** Thrown when an operation needs the leader (e.g. transferLeader on a follower without a leader). */
export class NotLeaderError extends RaftError {
  readonly leader: string;
  constructor(leader: string, what: string) {
    super('RAFT_NOT_LEADER', `${what}: this node is not the raft leader (leader: ${leader || 'unknown'})`, {
      retryable: true,
    });
    this.leader = leader;
  }
}

/** Thrown when a configuration change is invalid (e.g. removing every voter, or leaving a non-joint config). */
export class InvalidConfChangeError extends RaftError {
  constructor(message: string) {
    super('RAFT_INVALID_CONF_CHANGE', `invalid raft configuration change: ${message}`);
  }
}

/** Thrown when the config passed to RawNode is invalid (e.g. heartbeatTicks >= electionTicks). */
export class InvalidRaftConfigError extends RaftError {
  constructor(message: string) {
    super('RAFT_INVALID_CONFIG', `invalid raft config: ${message}`);
  }
}

/** Thrown when bytes cannot be decoded (ConfChange entry data, ...). */
export class RaftDecodeError extends RaftError {
  constructor(what: string, message: string) {
    super('RAFT_DECODE', `cannot decode ${what}: ${message}`);
  }
}

/**
 * Thrown when the core detects a broken invariant (storage returned inconsistent data, a commit
 * index beyond the log, ...). It means a bug or corrupted storage: the process must stop.
 */
export class RaftInvariantError extends RaftError {
  constructor(message: string) {
    super('RAFT_INVARIANT', `raft invariant violated: ${message}`);
  }
}

/** Thrown by ready() when the previous Ready was not yet acknowledged with advance(). */
export class ReadyNotAdvancedError extends RaftError {
  constructor() {
    super('RAFT_READY_NOT_ADVANCED', 'ready() called again before advance() of the previous Ready');
  }
}
