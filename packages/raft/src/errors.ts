/**
 * Typed errors of @shoal/raft. Every class carries a stable `code` and a `kind` (documented in
 * docs/raft.md); callers switch on the code, the kind or the class, never on the message text.
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
    super('RAFT_PROPOSAL_DROPPED', `raft proposal dropped: ${reason}`, {
      ...options,
      retryable: true,
      kind: 'unavailable',
    });
    this.reason = reason;
  }
}

/** Thrown by Storage.entries/term when the requested index was compacted into a snapshot. */
export class CompactedError extends RaftError {
  readonly index: number;
  readonly firstIndex: number;
  constructor(index: number, firstIndex: number) {
    super('RAFT_COMPACTED', `raft log index ${index} is compacted (first available index ${firstIndex})`, {
      kind: 'failed-precondition',
    });
    this.index = index;
    this.firstIndex = firstIndex;
  }
}

/** Thrown by Storage.entries/term when the requested index is beyond the last stored entry. */
export class UnavailableError extends RaftError {
  readonly index: number;
  readonly lastIndex: number;
  constructor(index: number, lastIndex: number) {
    super('RAFT_UNAVAILABLE', `raft log index ${index} is not available (last index ${lastIndex})`, {
      kind: 'failed-precondition',
    });
    this.index = index;
    this.lastIndex = lastIndex;
  }
}

/** Thrown by Storage.snapshot when a snapshot is being prepared; the core retries later. */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  constructor() {
    super('RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE', 'raft snapshot is temporarily unavailable', {
      retryable: true,
      kind: 'unavailable',
    });
  }
}

/** Thrown by Storage.applySnapshot/compact/createSnapshot when the snapshot is older than what is stored. */
export class SnapshotOutOfDateError extends RaftError {
  readonly index: number;
  readonly current: number;
  constructor(index: number, current: number) {
    super('RAFT_SNAPSHOT_OUT_OF_DATE', `raft snapshot at index ${index} is older than the current one at ${current}`, {
      kind: 'failed-precondition',
    });
    this.index = index;
    this.current = current;
  }
}

/** Thrown when a configuration change is invalid (e.g. removing every voter, or leaving a non-joint config). */
export class InvalidConfChangeError extends RaftError {
  constructor(message: string) {
    super('RAFT_INVALID_CONF_CHANGE', `invalid raft configuration change: ${message}`, { kind: 'invalid-argument' });
  }
}

/** Thrown when the config passed to RawNode is invalid (e.g. heartbeatTicks >= electionTicks). */
export class InvalidRaftConfigError extends RaftError {
  constructor(message: string) {
    super('RAFT_INVALID_CONFIG', `invalid raft config: ${message}`, { kind: 'invalid-argument' });
  }
}

/** Thrown when bytes cannot be decoded (ConfChange entry data, ...). */
export class RaftDecodeError extends RaftError {
  constructor(what: string, message: string) {
    super('RAFT_DECODE', `cannot decode ${what}: ${message}`, { kind: 'internal' });
  }
}

/**
 * Thrown when the core detects a broken invariant (storage returned inconsistent data, a commit
 * index beyond the log, ...). It means a bug or corrupted storage: the process must stop.
 */
export class RaftInvariantError extends RaftError {
  constructor(message: string) {
    super('RAFT_INVARIANT', `raft invariant violated: ${message}`, { kind: 'internal' });
  }
}

/** Thrown by ready() when the previous Ready was not yet acknowledged with advance(). */
export class ReadyNotAdvancedError extends RaftError {
  constructor() {
    super('RAFT_READY_NOT_ADVANCED', 'ready() called again before advance() of the previous Ready', {
      kind: 'failed-precondition',
    });
  }
}

// ---- Storage (WAL, snapshots), driver, transport and KV errors ----

/**
 * Thrown when opening a WAL finds damage that is not a torn tail: a bad record followed by valid
 * ones, a bad record in an older segment, a missing segment. The node must not start; rejoin it
 * from its peers (or restore the data directory) instead.
 */
export class WalCorruptError extends RaftError {
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, reason: string) {
    super('RAFT_WAL_CORRUPT', `raft WAL is corrupt in ${file} at byte ${offset}: ${reason}; refusing to start`, {
      kind: 'internal',
    });
    this.file = file;
    this.offset = offset;
  }
}

/** Thrown when another process (or another open in this process) holds the lock of a raft data directory. */
export class StorageLockedError extends RaftError {
  readonly path: string;
  readonly pid: number;
  constructor(path: string, pid: number) {
    super('RAFT_STORAGE_LOCKED', `raft data directory ${path} is locked by process ${pid}`, {
      kind: 'failed-precondition',
    });
    this.path = path;
    this.pid = pid;
  }
}

/**
 * Thrown when fsync/fdatasync/write of the WAL or a snapshot fails. Never retried (the page cache
 * state is unknown after a failed fsync): the storage is poisoned and the process must exit.
 */
export class StorageFatalError extends RaftError {
  readonly path: string;
  constructor(path: string, op: string, options?: { cause?: unknown }) {
    super('RAFT_STORAGE_FATAL', `raft storage ${op} failed on ${path}; the process must exit`, {
      ...options,
      kind: 'internal',
    });
    this.path = path;
  }
}

/** Thrown when a snapshot file cannot be read or verified (it is renamed to `.broken`). */
export class SnapshotCorruptError extends RaftError {
  readonly file: string;
  constructor(file: string, reason: string) {
    super('RAFT_SNAPSHOT_CORRUPT', `raft snapshot ${file} is corrupt: ${reason}`, { kind: 'internal' });
    this.file = file;
  }
}

/**
 * Rejects a pending proposal or read whose outcome is unknown: the leader changed or this node
 * lost leadership before it was applied. It may still commit; retry with the same dedupe key.
 */
export class ProposalOutcomeUnknownError extends RaftError {
  constructor(reason: string) {
    super('RAFT_OUTCOME_UNKNOWN', `raft proposal outcome unknown: ${reason}`, { retryable: true, kind: 'unavailable' });
  }
}

/** Rejects a pending proposal whose log index was taken by an entry of another term: it will never apply. */
export class ProposalSupersededError extends RaftError {
  readonly index: number;
  constructor(index: number) {
    super('RAFT_PROPOSAL_SUPERSEDED', `raft proposal at index ${index} was overwritten by a newer leader`, {
      retryable: true,
      kind: 'unavailable',
    });
    this.index = index;
  }
}

/** Rejects every pending operation when the RaftNode is closed (or failed). */
export class NodeClosedError extends RaftError {
  constructor(reason = 'raft node closed', options?: { cause?: unknown }) {
    super('RAFT_NODE_CLOSED', reason, { ...options, kind: 'unavailable' });
  }
}

/** A KV request got no definite answer in time: a write may or may not have applied. */
export class KvTimeoutError extends RaftError {
  readonly op: string;
  readonly key: string;
  constructor(op: string, key: string, timeoutMs: number) {
    super('RAFT_KV_TIMEOUT', `kv ${op} of ${JSON.stringify(key)} got no answer within ${timeoutMs} ms`, {
      retryable: true,
      kind: 'unavailable',
    });
    this.op = op;
    this.key = key;
  }
}

/** The KV server refused a request for a non-retryable reason. */
export class KvRequestError extends RaftError {
  constructor(message: string) {
    super('RAFT_KV_REQUEST', `kv request failed: ${message}`, { kind: 'failed-precondition' });
  }
}
