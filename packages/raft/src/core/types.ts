/**
 * The contract between the Raft core (pure state machine), its storage and its driver.
 * Shapes follow etcd's raftpb so that the design notes and tests of etcd/raft map one to one.
 * Terms and indexes are plain numbers (checked safe integers), never BigInt.
 */

/** A member id: 16 lowercase hex characters of a random uint64, never reused. */
export type NodeId = string;
/** No node (no vote, no leader). */
export const NONE: NodeId = '';

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque payload (an application command, or an encoded ConfChange for 'confChange'). Empty for the leader's no-op. */
  readonly data: Uint8Array;
}

/** Durable per-node state: must be on disk before any message that depends on it leaves. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** Membership. Joint consensus: `votersOutgoing` non-empty while in a joint configuration. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  readonly autoLeave: boolean;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The application's state machine image at `metadata.index`. */
  readonly data: Uint8Array;
}

export type ConfChangeType = 'addNode' | 'removeNode' | 'addLearner';

/** One membership change step; several in one ConfChange enter joint consensus. */
export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

export interface ConfChange {
  readonly changes: readonly ConfChangeSingle[];
  /** 'auto' leaves the joint config automatically; 'explicit' needs an empty ConfChange to leave. */
  readonly transition: 'auto' | 'explicit';
  /** Opaque application context (e.g. the new member's address). */
  readonly context: Uint8Array;
}

export type MessageType =
  | 'app' // MsgApp: append entries
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snap' // MsgSnap: install snapshot (the transport may chunk `snapshot.data`)
  | 'prop' // follower forwards a proposal to the leader
  | 'readIndex' // follower asks the leader for a read index
  | 'readIndexResp'
  | 'timeoutNow' // leader transfer: campaign now
  | 'transferLeader'; // forwarded transfer request

/** A message between members. Fields not used by a type are left at their zero value. */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** app: index of the entry before `entries`; appResp: the follower's last index (or hint on reject). */
  readonly index: number;
  /** app: term of the entry at `index`. vote/preVote: term of the candidate's last entry. */
  readonly logTerm: number;
  readonly commit: number;
  readonly entries: readonly Entry[];
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly snapshot?: Snapshot;
  /** readIndex/readIndexResp/heartbeat: the request context that identifies a read. */
  readonly context: Uint8Array;
}

/** A linearizable read that may be served once the node has applied up to `index`. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: Uint8Array;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/**
 * What the core asks its caller to do, in this order:
 * 1. persist `entries` (a new entry at index i voids persisted entries at >= i), `hardState` and
 *    `snapshot`, with fsync if `mustSync`;
 * 2. then send `messages`;
 * 3. then install `snapshot` and apply `committedEntries` in order;
 * 4. then call `advance()`.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

/**
 * The read-only view of the log the core pulls from (etcd's Storage). The driver keeps it in
 * memory, rebuilt from the WAL and snapshot at boot, and appends to it after each persist.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most `maxBytes` of data (always at least one). Throws CompactedError/UnavailableError. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of the entry at index i (i may equal the snapshot index). */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export interface RaftConfig {
  readonly id: NodeId;
  readonly electionTicks: number; // e.g. 10
  readonly heartbeatTicks: number; // e.g. 1
  readonly storage: Storage;
  /** Last applied index when restarting (from the state machine's snapshot). */
  readonly applied: number;
  readonly maxSizePerMsg: number; // bytes of entries per MsgApp, e.g. 64 KiB
  readonly maxInflightMsgs: number; // pipelining window, e.g. 256
  readonly maxUncommittedEntriesSize: number; // bytes; 0 = no limit
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Source of randomness for election timeouts; seeded in the simulator. */
  readonly random: () => number;
}

/** Status snapshot for observability and tests. */
export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  readonly leadTransferee: NodeId;
  /** Leader only: the replication progress of every member (additive, for observability and tests). */
  readonly progress?: ReadonlyMap<NodeId, ProgressStatus>;
}

/** The leader's view of one member's replication. */
export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly isLearner: boolean;
  readonly recentActive: boolean;
}

/**
 * The synchronous core (etcd's RawNode): no I/O, no timers, no promises.
 * Errors are thrown as typed RaftErrors (e.g. ProposalDroppedError when there is no leader).
 */
export interface RawNodeApi {
  tick(): void;
  step(m: Message): void;
  propose(data: Uint8Array): void;
  /** Proposes several commands as one append (optional: the driver falls back to propose()). */
  proposeBatch?(datas: readonly Uint8Array[]): void;
  proposeConfChange(cc: ConfChange): void;
  /** Called by the driver when a committed confChange entry is applied; returns the new ConfState. */
  applyConfChange(cc: ConfChange): ConfState;
  campaign(): void;
  readIndex(requestCtx: Uint8Array): void;
  transferLeader(to: NodeId): void;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(): void;
  status(): Status;
}
