/**
 * What a RaftNode is given: its identity, storage, transport, application state machine and
 * timing, and the defaults for what is left out.
 */
import { type Clock, type Logger, silentLogger, systemClock } from '@shoal/common';
import type { ConfChange, NodeId, RawNodeApi, RaftConfig } from '../core/types.js';
import { RawNode } from '../core/raw-node.js';
import { decodeConfChange } from '../core/conf-codec.js';
import type { Transport } from '../transport/transport.js';
import type { LogStore } from './log-store.js';

/** A committed command handed to the state machine. */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

/** The replicated application. apply() must be deterministic. */
export interface StateMachine {
  /** Applies committed commands in log order; returns one result per entry (given to its proposer). */
  apply(entries: readonly AppliedEntry[]): unknown[];
  /** The full state (the applied index is recorded alongside by the driver). */
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly store: LogStore;
  readonly transport: Transport;
  readonly stateMachine: StateMachine;
  /** Builds the core (default: the real `RawNode`); tests and the simulator wrap or replace it. */
  readonly createRawNode?: (config: RaftConfig) => RawNodeApi;
  /** Decodes a confChange entry (default: the core's codec). */
  readonly decodeConfChange?: (data: Uint8Array) => ConfChange;
  /** Voters of a brand-new cluster (ignored when the store already has state). */
  readonly bootstrapVoters?: readonly NodeId[];
  /** Addresses of known peers (also learned from conf change contexts). */
  readonly peers?: Readonly<Record<NodeId, string>>;
  /** Tick period (default 100 ms). */
  readonly tickMs?: number;
  /** Election timeout in ticks (default 6: 600-1200 ms randomized by the core). */
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  /** Take a snapshot after this many applied entries (default 10,000). */
  readonly snapshotEntries?: number;
  /** ... or after this many bytes of applied entry data (default 64 MiB). */
  readonly snapshotBytes?: number;
  /** Entries kept behind a snapshot for slow followers (default 500)... */
  readonly keepEntries?: number;
  /** ... but no more than this many bytes of them (default 8 MiB). */
  readonly keepBytes?: number;
  readonly maxSizePerMsg?: number;
  readonly maxInflightMsgs?: number;
  readonly maxUncommittedEntriesSize?: number;
  /** Timers and time (default: the system clock); the simulator gives a virtual one. */
  readonly clock?: Clock;
  /** Uniform [0, 1) source for election timeouts and ids (default Math.random). */
  readonly random?: () => number;
  readonly logger?: Logger;
  /** Called once when the node fails (storage fatal error, broken core invariant); the default logs. The process should exit. */
  readonly onFatal?: (err: Error) => void;
}

/** RaftNodeOptions with every default filled in. */
export interface DriverSettings {
  readonly id: NodeId;
  readonly store: LogStore;
  readonly transport: Transport;
  readonly stateMachine: StateMachine;
  readonly createRawNode: (config: RaftConfig) => RawNodeApi;
  readonly decodeConfChange: (data: Uint8Array) => ConfChange;
  readonly bootstrapVoters: readonly NodeId[];
  readonly peers: Readonly<Record<NodeId, string>>;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotEntries: number;
  readonly snapshotBytes: number;
  readonly keepEntries: number;
  readonly keepBytes: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxUncommittedEntriesSize: number;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly onFatal: ((err: Error) => void) | undefined;
}

export function resolveOptions(o: RaftNodeOptions): DriverSettings {
  return {
    id: o.id,
    store: o.store,
    transport: o.transport,
    stateMachine: o.stateMachine,
    createRawNode: o.createRawNode ?? ((config) => new RawNode(config)),
    decodeConfChange: o.decodeConfChange ?? decodeConfChange,
    bootstrapVoters: o.bootstrapVoters ?? [],
    peers: o.peers ?? {},
    tickMs: o.tickMs ?? 100,
    electionTicks: o.electionTicks ?? 6,
    heartbeatTicks: o.heartbeatTicks ?? 1,
    snapshotEntries: o.snapshotEntries ?? 10_000,
    snapshotBytes: o.snapshotBytes ?? 64 * 1024 * 1024,
    keepEntries: o.keepEntries ?? 500,
    keepBytes: o.keepBytes ?? 8 * 1024 * 1024,
    maxSizePerMsg: o.maxSizePerMsg ?? 1024 * 1024,
    maxInflightMsgs: o.maxInflightMsgs ?? 256,
    maxUncommittedEntriesSize: o.maxUncommittedEntriesSize ?? 64 * 1024 * 1024,
    clock: o.clock ?? systemClock,
    random: o.random ?? Math.random,
    logger: o.logger ?? silentLogger(),
    onFatal: o.onFatal,
  };
}

/** The core's configuration for this node (pre-vote and check-quorum always on). */
export function coreConfig(s: DriverSettings, storage: RaftConfig['storage'], applied: number): RaftConfig {
  return {
    id: s.id,
    electionTicks: s.electionTicks,
    heartbeatTicks: s.heartbeatTicks,
    storage,
    applied,
    maxSizePerMsg: s.maxSizePerMsg,
    maxInflightMsgs: s.maxInflightMsgs,
    maxUncommittedEntriesSize: s.maxUncommittedEntriesSize,
    preVote: true,
    checkQuorum: true,
    random: s.random,
  };
}
