/**
 * RaftNode: the async driver around the synchronous core. One loop takes each Ready and does:
 * send leader appends early (thesis §10.2.1; safe because the next Ready, which may announce a
 * commit counting this node, is taken only after this one is durable) → persist (one batch, one
 * fsync) → send the rest → apply → advance. Everything proposed or received while an fsync is in
 * flight lands in the next Ready: group commit falls out of the loop.
 */
import { type Logger, silentLogger, AbortedError, errorMessage } from '@shoal/common';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RawNodeApi,
  RaftConfig,
  Ready,
  Snapshot,
} from '../core/types.js';
import { MemoryStorage } from '../core/memory-storage.js';
import { EMPTY_BYTES } from '../core/util.js';
import {
  InvalidRaftConfigError,
  NodeClosedError,
  ProposalOutcomeUnknownError,
  ProposalSupersededError,
  RaftError,
} from '../errors.js';
import type { Transport } from '../transport/transport.js';
import type { LogStore } from './log-store.js';
import { decodeConfContext, encodeConfContext, IdAllocator, unwrapProposal, wrapProposal } from './envelope.js';
import { ReadBarrier } from './read-barrier.js';
import { Snapshots } from './snapshots.js';

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
  readonly createRawNode: (config: RaftConfig) => RawNodeApi;
  readonly decodeConfChange: (data: Uint8Array) => ConfChange;
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
  /** Entries kept behind a snapshot for slow followers (default 500). */
  readonly keepEntries?: number;
  readonly maxSizePerMsg?: number;
  readonly maxInflightMsgs?: number;
  readonly maxUncommittedEntriesSize?: number;
  readonly logger?: Logger;
  /** Called once when storage fails fatally; the default logs. The process should exit. */
  readonly onFatal?: (err: Error) => void;
}

interface Waiter {
  resolve(v: unknown): void;
  reject(e: Error): void;
  index: number;
  term: number;
  cleanup?: () => void;
}

export interface LeaderInfo {
  readonly leader: NodeId;
  readonly term: number;
  readonly isLeader: boolean;
}

const EARLY_TYPES = new Set<Message['type']>(['app', 'heartbeat', 'snap']);

export class RaftNode {
  readonly id: NodeId;
  private raw!: RawNodeApi;
  private readonly storage = new MemoryStorage();
  private readonly ids = new IdAllocator();
  private readonly waiters = new Map<number, Waiter>();
  private readonly byIndex = new Map<number, number>();
  private readonly reads: ReadBarrier;
  private readonly snaps: Snapshots;
  private readonly log: Logger;
  private ticker: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private closed = false;
  private failed: Error | undefined;
  private applied = 0;
  private confState!: ConfState;
  private leader: NodeId = '';
  private role = 'follower';
  private term = 0;
  private persistedTerm = 0;
  private persistedVote: NodeId = '';
  private readonly leaderListeners = new Set<(info: LeaderInfo) => void>();
  private readonly transfers = new Set<{ to: NodeId; resolve: () => void }>();
  /** Proposals queued in this event-loop turn (or during an fsync), handed to the core as one batch. */
  private queuedIds: number[] = [];
  /** Resolutions of applied proposals, run after advance() so that callers see the core caught up. */
  private settlements: (() => void)[] = [];
  /** Latest commit-only hard state, written with the next batch. */
  private deferredHs: HardState | undefined;
  private queuedData: Uint8Array[] = [];

  constructor(private readonly opts: RaftNodeOptions) {
    this.id = opts.id;
    this.log = opts.logger ?? silentLogger();
    this.reads = new ReadBarrier({
      issue: (ctx) => this.raw.readIndex(ctx),
      applied: () => this.applied,
      wake: () => this.wake(),
      retryMs: (opts.tickMs ?? 100) * (opts.electionTicks ?? 6),
    });
    this.snaps = new Snapshots(opts.store, opts.stateMachine, this.storage, opts, {
      wake: () => this.wake(),
      fail: (err) => this.fail(err),
      log: this.log,
    });
  }

  /** Loads durable state, restores the state machine, starts the transport, ticker and loop. */
  async start(): Promise<void> {
    const o = this.opts;
    const boot = o.store.boot;
    let snapshot = boot.snapshot;
    let hardState = boot.hardState;
    if (snapshot === undefined && boot.entries.length === 0 && hardState.term === 0 && o.bootstrapVoters?.length) {
      // A new cluster: every founding member starts from the same snapshot at index 1.
      const confState: ConfState = {
        voters: [...o.bootstrapVoters],
        learners: [],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      };
      const metadata = { index: 1, term: 1, confState };
      hardState = { term: 1, vote: '', commit: 1 };
      if (this.snaps.inFiles) {
        await this.snaps.writeNow(metadata);
        snapshot = { metadata, data: EMPTY_BYTES };
      } else {
        snapshot = { metadata, data: o.stateMachine.snapshot() };
        await o.store.saveSnapshot(snapshot);
      }
      await o.store.save(hardState, [], true);
    }
    if (this.snaps.inFiles) {
      if (o.transport.useSnapshotFiles === undefined) {
        throw new InvalidRaftConfigError('the store keeps snapshots in files: the transport must stream them');
      }
      o.transport.useSnapshotFiles(this.snaps.files!);
    }
    if (snapshot !== undefined) {
      this.storage.applySnapshot(this.snaps.forStorage(snapshot));
      await this.snaps.restore(snapshot);
      this.applied = snapshot.metadata.index;
    }
    this.storage.setHardState(hardState);
    this.storage.append(boot.entries);
    this.persistedTerm = hardState.term;
    this.persistedVote = hardState.vote;
    this.term = hardState.term;
    this.confState = this.storage.initialState().confState;
    this.raw = o.createRawNode({
      id: o.id,
      electionTicks: o.electionTicks ?? 6,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      storage: this.storage,
      applied: this.applied,
      maxSizePerMsg: o.maxSizePerMsg ?? 1024 * 1024,
      maxInflightMsgs: o.maxInflightMsgs ?? 256,
      maxUncommittedEntriesSize: o.maxUncommittedEntriesSize ?? 64 * 1024 * 1024,
      preVote: true,
      checkQuorum: true,
      random: Math.random,
    });
    for (const [id, addr] of Object.entries(o.peers ?? {})) if (id !== o.id) o.transport.setPeer(id, addr);
    await o.transport.start({
      onMessage: (m) => this.onMessage(m),
      onUnreachable: (id) => this.guard(() => this.raw.reportUnreachable(id)),
      onSnapshotStatus: (id, ok) => this.guard(() => this.raw.reportSnapshot(id, ok)),
    });
    this.ticker = setInterval(() => {
      this.guard(() => this.raw.tick());
      this.reads.tick();
    }, o.tickMs ?? 100);
    this.loopDone = this.loop();
  }

  private guard(fn: () => void): void {
    if (this.closed) return;
    try {
      fn();
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'raft core refused input');
    }
    this.wake();
  }

  private onMessage(m: Message): void {
    if (m.to !== this.id) return;
    this.guard(() => this.raw.step(m));
  }

  private wake(): void {
    const w = this.wakeUp;
    if (w !== undefined) {
      this.wakeUp = undefined;
      w();
    }
  }

  /** Steps all queued proposals as one batch (one MsgApp per follower instead of one per proposal). */
  private flushProposals(): void {
    if (this.queuedIds.length === 0) return;
    const ids = this.queuedIds;
    const datas = this.queuedData;
    this.queuedIds = [];
    this.queuedData = [];
    try {
      const raw = this.raw as RawNodeApi & { proposeBatch?: (d: readonly Uint8Array[]) => void };
      if (raw.proposeBatch !== undefined) raw.proposeBatch(datas);
      else for (const d of datas) raw.propose(d);
    } catch (err) {
      const e = err instanceof Error ? err : new RaftError('RAFT_UNKNOWN', String(err));
      for (const id of ids) {
        const w = this.waiters.get(id);
        if (w === undefined) continue;
        this.waiters.delete(id);
        w.cleanup?.();
        w.reject(e);
      }
    }
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      if (this.snaps.readyToFinish) {
        try {
          await this.snaps.finish();
        } catch (err) {
          this.fail(err instanceof Error ? err : new Error(String(err)));
          return;
        }
      }
      this.flushProposals();
      if (!this.raw.hasReady()) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        continue;
      }
      const rd = this.raw.ready();
      try {
        await this.handleReady(rd);
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.raw.advance();
      if (this.settlements.length > 0) {
        const done = this.settlements;
        this.settlements = [];
        for (const fn of done) fn();
      }
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const o = this.opts;
    if (rd.softState !== undefined) this.onSoftState(rd.softState.leader, rd.softState.role);
    const hs = rd.hardState;
    const voteChange = hs !== undefined && (hs.term !== this.persistedTerm || hs.vote !== this.persistedVote);
    let rest = rd.messages;
    if (this.role === 'leader' && !voteChange && rest.length > 0) {
      o.transport.send(rest.filter((m) => EARLY_TYPES.has(m.type)));
      rest = rest.filter((m) => !EARLY_TYPES.has(m.type));
    }
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) await this.snaps.install(rd.snapshot);
    if (rd.entries.length > 0 || rd.mustSync) {
      await o.store.save(hs ?? this.deferredHs, rd.entries, rd.mustSync);
      this.deferredHs = undefined;
    } else if (hs !== undefined) {
      // A commit-only change needs no durability (a lower commit is re-learned after a restart):
      // it rides along with the next batch instead of costing a write before apply.
      this.deferredHs = hs;
    }
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) {
      this.storage.applySnapshot(this.snaps.forStorage(rd.snapshot));
    }
    if (rd.entries.length > 0) {
      this.storage.append(rd.entries);
      this.trackIndexes(rd.entries);
    }
    if (hs !== undefined) {
      this.storage.setHardState(hs);
      this.persistedTerm = hs.term;
      this.persistedVote = hs.vote;
      if (hs.term !== this.term) this.onTerm(hs.term);
    }
    if (rest.length > 0) o.transport.send(rest);
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > this.applied) await this.installSnapshot(rd.snapshot);
    if (rd.committedEntries.length > 0) this.applyEntries(rd.committedEntries);
    for (const rs of rd.readStates) this.reads.onReadState(rs.index, rs.requestCtx);
    this.reads.release();
    await this.snaps.maybeStart(this.applied, this.confState);
  }

  private onSoftState(leader: NodeId, role: string): void {
    const was = this.leader;
    const wasLeader = this.role === 'leader';
    this.leader = leader;
    this.role = role;
    if (was !== leader || wasLeader !== (role === 'leader')) {
      if (was !== '' && was !== leader) this.failPending(`leader changed from ${was} to ${leader || 'none'}`);
      this.reads.onLeaderChange();
      const info = this.leaderInfo();
      for (const l of this.leaderListeners) l(info);
      for (const t of this.transfers) if (t.to === leader) t.resolve();
    }
  }

  private onTerm(term: number): void {
    this.term = term;
  }

  /** Rejects every proposal whose outcome depends on the old leader (it may still commit). */
  private failPending(reason: string): void {
    this.queuedIds = [];
    this.queuedData = [];
    for (const [id, w] of this.waiters) {
      this.waiters.delete(id);
      if (w.index > 0) this.byIndex.delete(w.index);
      w.cleanup?.();
      w.reject(new ProposalOutcomeUnknownError(reason));
    }
  }

  private trackIndexes(entries: readonly Entry[]): void {
    for (const e of entries) {
      const u = e.type === 'normal' ? unwrapProposal(e.data) : decodeConfContext(this.confContextOf(e));
      if (u === undefined) continue;
      const w = this.waiters.get(u.id);
      if (w === undefined) continue;
      w.index = e.index;
      w.term = e.term;
      this.byIndex.set(e.index, u.id);
    }
  }

  private confContextOf(e: Entry): Uint8Array {
    try {
      return this.opts.decodeConfChange(e.data).context;
    } catch {
      return EMPTY_BYTES;
    }
  }

  private async installSnapshot(s: Snapshot): Promise<void> {
    await this.snaps.restore(s);
    this.applied = s.metadata.index;
    this.confState = s.metadata.confState;
    this.log.info({ index: s.metadata.index, term: s.metadata.term }, 'installed snapshot from leader');
  }

  private applyEntries(entries: readonly Entry[]): void {
    let batch: AppliedEntry[] = [];
    let ids: (number | undefined)[] = [];
    let count = 0;
    let bytes = 0;
    const flush = (): void => {
      if (batch.length === 0) return;
      const results = this.opts.stateMachine.apply(batch);
      for (let k = 0; k < batch.length; k++) {
        const id = ids[k];
        if (id !== undefined) this.settle(id, batch[k]!.index, batch[k]!.term, results[k]);
      }
      batch = [];
      ids = [];
    };
    for (const e of entries) {
      if (e.index <= this.applied) continue;
      count++;
      bytes += e.data.byteLength;
      this.checkSuperseded(e);
      if (e.type === 'normal') {
        const u = unwrapProposal(e.data);
        if (u !== undefined) {
          batch.push({ index: e.index, term: e.term, data: u.payload });
          ids.push(u.id);
        }
      } else {
        flush();
        const cc = this.opts.decodeConfChange(e.data);
        this.confState = this.raw.applyConfChange(cc);
        const ctx = decodeConfContext(cc.context);
        if (ctx !== undefined) {
          for (const ch of cc.changes) {
            if (ch.type === 'removeNode') {
              if (ch.nodeId !== this.id) this.opts.transport.removePeer(ch.nodeId);
            } else if (ctx.address !== '' && ch.nodeId !== this.id) this.opts.transport.setPeer(ch.nodeId, ctx.address);
          }
          this.settle(ctx.id, e.index, e.term, this.confState);
        }
      }
      this.applied = e.index;
    }
    flush();
    this.snaps.noteApplied(count, bytes);
  }

  private checkSuperseded(e: Entry): void {
    const id = this.byIndex.get(e.index);
    if (id === undefined) return;
    this.byIndex.delete(e.index);
    const w = this.waiters.get(id);
    if (w !== undefined && w.term !== e.term) {
      this.waiters.delete(id);
      w.cleanup?.();
      w.reject(new ProposalSupersededError(e.index));
    }
  }

  private settle(id: number, index: number, term: number, result: unknown): void {
    const w = this.waiters.get(id);
    if (w === undefined) return;
    this.waiters.delete(id);
    if (w.index > 0) this.byIndex.delete(w.index);
    w.cleanup?.();
    w.index = index;
    w.term = term;
    this.settlements.push(() => w.resolve(result));
  }

  private fail(err: Error): void {
    if (this.failed !== undefined) return;
    this.failed = err;
    this.log.error({ err: err.message }, 'raft node failed');
    this.shutdownPending(new NodeClosedError(`raft node failed: ${err.message}`, { cause: err }));
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.opts.onFatal?.(err);
  }

  private shutdownPending(err: Error): void {
    this.queuedIds = [];
    this.queuedData = [];
    for (const w of this.waiters.values()) {
      w.cleanup?.();
      w.reject(err);
    }
    this.waiters.clear();
    this.byIndex.clear();
    this.reads.failAll(err);
  }

  private register<T>(signal: AbortSignal | undefined, start: (id: number) => void): Promise<T> {
    if (this.closed) return Promise.reject(this.failed ?? new NodeClosedError());
    if (signal?.aborted) return Promise.reject(new AbortedError());
    const id = this.ids.next();
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = { resolve: resolve, reject, index: 0, term: 0 };
      if (signal !== undefined) {
        const onAbort = (): void => {
          if (this.waiters.delete(id)) reject(new AbortedError());
        };
        signal.addEventListener('abort', onAbort, { once: true });
        w.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.waiters.set(id, w);
      try {
        start(id);
      } catch (err) {
        this.waiters.delete(id);
        w.cleanup?.();
        reject(err instanceof Error ? err : new RaftError('RAFT_UNKNOWN', String(err)));
        return;
      }
      this.wake();
    });
  }

  /**
   * Proposes a command; resolves with the state machine's result once applied on this node.
   * Rejects with ProposalDroppedError (not accepted), ProposalOutcomeUnknownError (leader changed:
   * it may still apply), ProposalSupersededError, AbortedError, NodeClosedError.
   */
  propose<T = unknown>(data: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<T> {
    return this.register<T>(opts.signal, (id) => {
      this.queuedIds.push(id);
      this.queuedData.push(wrapProposal(id, data));
    });
  }

  /** Linearizable read barrier: resolves once this node has applied everything committed before the call. */
  readIndex(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.closed) return Promise.reject(this.failed ?? new NodeClosedError());
    return this.reads.wait(opts.signal);
  }

  private changeMembership(
    changes: ConfChange['changes'],
    address: string,
    signal: AbortSignal | undefined,
  ): Promise<ConfState> {
    return this.register<ConfState>(signal, (id) =>
      this.raw.proposeConfChange({ changes, transition: 'auto', context: encodeConfContext(id, address) }),
    );
  }

  /** Adds a voter (reachable at `address`); resolves with the new ConfState once applied. */
  addMember(id: NodeId, address: string, opts: { signal?: AbortSignal } = {}): Promise<ConfState> {
    return this.changeMembership([{ type: 'addNode', nodeId: id }], address, opts.signal);
  }

  addLearner(id: NodeId, address: string, opts: { signal?: AbortSignal } = {}): Promise<ConfState> {
    return this.changeMembership([{ type: 'addLearner', nodeId: id }], address, opts.signal);
  }

  /** Promotes a learner to voter. */
  promote(id: NodeId, opts: { signal?: AbortSignal } = {}): Promise<ConfState> {
    return this.changeMembership([{ type: 'addNode', nodeId: id }], '', opts.signal);
  }

  removeMember(id: NodeId, opts: { signal?: AbortSignal } = {}): Promise<ConfState> {
    return this.changeMembership([{ type: 'removeNode', nodeId: id }], '', opts.signal);
  }

  /** Hands leadership to `to`; resolves when this node sees `to` as leader. */
  transferLeadership(to: NodeId, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return Promise.reject(this.failed ?? new NodeClosedError());
    if (this.leader === to) return Promise.resolve();
    const timeoutMs = opts.timeoutMs ?? (this.opts.tickMs ?? 100) * (this.opts.electionTicks ?? 6) * 3;
    return new Promise<void>((resolve, reject) => {
      const entry = { to, resolve: () => done() };
      const timer = setTimeout(
        () => finish(new ProposalOutcomeUnknownError(`leadership transfer to ${to} timed out`)),
        timeoutMs,
      );
      const onAbort = (): void => finish(new AbortedError());
      const finish = (err: Error): void => {
        clearTimeout(timer);
        this.transfers.delete(entry);
        opts.signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const done = (): void => {
        clearTimeout(timer);
        this.transfers.delete(entry);
        opts.signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.transfers.add(entry);
      try {
        this.raw.transferLeader(to);
      } catch (err) {
        finish(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.wake();
    });
  }

  leaderInfo(): LeaderInfo {
    return { leader: this.leader, term: this.term, isLeader: this.role === 'leader' };
  }

  /** Subscribes to leader changes; returns an unsubscribe function. */
  onLeaderChange(fn: (info: LeaderInfo) => void): () => void {
    this.leaderListeners.add(fn);
    return () => this.leaderListeners.delete(fn);
  }

  appliedIndex(): number {
    return this.applied;
  }

  status(): ReturnType<RawNodeApi['status']> {
    return this.raw.status();
  }

  /** Stops the loop and ticker, rejects pending operations, closes transport and store. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.ticker) clearInterval(this.ticker);
      this.wake();
    }
    await this.loopDone;
    this.shutdownPending(new NodeClosedError());
    for (const t of this.transfers) t.resolve();
    await this.opts.transport.close();
    await this.opts.store.close();
  }
}
