/**
 * RaftNode: the async driver around the synchronous core. One loop takes each Ready and does:
 * send leader appends early (thesis §10.2.1; safe because the next Ready, which may announce a
 * commit counting this node, is taken only after this one is durable) → persist (one batch, one
 * fsync) → send the rest → apply → advance. Everything proposed or received while an fsync is in
 * flight lands in the next Ready: group commit falls out of the loop.
 *
 * The parts live in their own modules: options (defaults), boot (durable state → memory),
 * persister (Ready → store), applier (committed entries → state machine), wait (proposal
 * waiters), read-barrier (ReadIndex), leadership (leader, listeners, transfers), compaction.
 */
import { AbortedError, type Logger, errorMessage } from '@shoal/common';
import type { ConfChange, ConfState, Entry, NodeId, RawNodeApi, Ready, Role, Status } from '../core/types.js';
import type { MemoryStorage } from '../core/memory-storage.js';
import { NodeClosedError, ProposalOutcomeUnknownError, RaftError, RaftInvariantError } from '../errors.js';
import { Applier } from './applier.js';
import { bootNode } from './boot.js';
import { Compactor } from './compaction.js';
import { encodeConfContext, IdAllocator, proposalIdOf, wrapProposal } from './envelope.js';
import { Leadership, type LeaderInfo } from './leadership.js';
import { coreConfig, resolveOptions, type DriverSettings, type RaftNodeOptions } from './options.js';
import { Persister } from './persister.js';
import { ReadBarrier } from './read-barrier.js';
import { ProposalWaiters } from './wait.js';

export type { AppliedEntry, RaftNodeOptions, StateMachine } from './options.js';
export type { LeaderInfo } from './leadership.js';

/** What exists once start() loaded the durable state. */
interface Running {
  readonly raw: RawNodeApi;
  readonly storage: MemoryStorage;
  readonly persister: Persister;
  readonly applier: Applier;
  readonly compactor: Compactor;
}

export class RaftNode {
  readonly id: NodeId;
  private readonly s: DriverSettings;
  private readonly log: Logger;
  private started: Running | undefined;
  private readonly ids: IdAllocator;
  private readonly waiters = new ProposalWaiters();
  private readonly reads: ReadBarrier;
  private readonly leadership: Leadership;
  private ticker: { cancel(): void } | undefined;
  private wakeUp: (() => void) | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private closed = false;
  private failed: Error | undefined;
  /** Proposals queued in this event-loop turn (or during an fsync), handed to the core as one batch. */
  private queuedIds: number[] = [];
  private queuedData: Uint8Array[] = [];
  /** Resolutions of applied proposals, run after advance() so that callers see the core caught up. */
  private settlements: (() => void)[] = [];

  constructor(opts: RaftNodeOptions) {
    this.s = resolveOptions(opts);
    this.id = this.s.id;
    this.log = this.s.logger;
    this.ids = new IdAllocator(this.s.random);
    this.leadership = new Leadership(this.s.clock);
    this.reads = new ReadBarrier({
      issue: (ctx) => this.run.raw.readIndex(ctx),
      applied: () => this.run.applier.applied,
      wake: () => this.wake(),
      newContext: () => {
        const b = Buffer.allocUnsafe(8);
        b.writeDoubleLE(this.ids.next());
        return b;
      },
      now: () => this.s.clock.now(),
      retryMs: this.s.tickMs * this.s.electionTicks,
    });
  }

  /** The running parts; throws before start(). */
  private get run(): Running {
    if (this.started === undefined) throw new NodeClosedError('raft node not started');
    return this.started;
  }

  /** Loads durable state, restores the state machine, starts the transport, ticker and loop. */
  async start(): Promise<void> {
    const s = this.s;
    const boot = await bootNode(s);
    const raw = s.createRawNode(coreConfig(s, boot.storage, boot.snapshotIndex));
    this.leadership.term = boot.hardState.term;
    this.started = {
      raw,
      storage: boot.storage,
      persister: new Persister(s.store, boot.storage, boot.hardState),
      applier: new Applier(
        {
          id: s.id,
          stateMachine: s.stateMachine,
          store: s.store,
          transport: s.transport,
          decodeConfChange: s.decodeConfChange,
          waiters: this.waiters,
          logger: this.log,
        },
        boot.snapshotIndex,
        boot.confState,
      ),
      compactor: new Compactor(
        {
          store: s.store,
          storage: boot.storage,
          stateMachine: s.stateMachine,
          snapshotEntries: s.snapshotEntries,
          snapshotBytes: s.snapshotBytes,
          keepEntries: s.keepEntries,
          keepBytes: s.keepBytes,
          logger: this.log,
          wake: () => this.wake(),
          fail: (err) => this.fail(err),
        },
        boot.snapshotIndex,
      ),
    };
    for (const [id, addr] of Object.entries(s.peers)) if (id !== s.id) s.transport.setPeer(id, addr);
    await s.transport.start({
      onMessage: (m) => {
        if (m.to === this.id) this.guard(() => raw.step(m));
      },
      onUnreachable: (id) => this.guard(() => raw.reportUnreachable(id)),
      onSnapshotStatus: (id, ok) => this.guard(() => raw.reportSnapshot(id, ok)),
    });
    const tick = (): void => {
      if (this.closed) return;
      this.guard(() => {
        raw.tick();
        this.reads.tick();
      });
      this.ticker = s.clock.setTimeout(tick, s.tickMs);
    };
    this.ticker = s.clock.setTimeout(tick, s.tickMs);
    this.loopDone = this.loop();
  }

  /**
   * Feeds one input to the core. The core refuses some inputs on purpose (a RaftError such as a
   * dropped proposal): logged at debug. A broken invariant, or any other exception, means a bug
   * or corrupt state: the node stops (onFatal) instead of running on.
   */
  private guard(fn: () => void): void {
    if (this.closed) return;
    try {
      fn();
    } catch (err) {
      if (err instanceof RaftError && !(err instanceof RaftInvariantError)) {
        this.log.debug({ err: errorMessage(err) }, 'raft core refused input');
      } else {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
    }
    this.wake();
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
      const raw = this.run.raw;
      if (raw.proposeBatch !== undefined) raw.proposeBatch(datas);
      else for (const d of datas) raw.propose(d);
    } catch (err) {
      const e = err instanceof Error ? err : new RaftError('RAFT_UNKNOWN', String(err));
      for (const id of ids) this.waiters.cancel(id, e);
    }
  }

  private async loop(): Promise<void> {
    const raw = this.run.raw;
    while (!this.closed) {
      try {
        if (this.run.compactor.readyToFinish) await this.run.compactor.finish();
        this.flushProposals();
        if (!raw.hasReady()) {
          await new Promise<void>((resolve) => (this.wakeUp = resolve));
          continue;
        }
        await this.handleReady(raw.ready());
        raw.advance();
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (this.settlements.length > 0) {
        const done = this.settlements;
        this.settlements = [];
        for (const fn of done) fn();
      }
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const { raw, persister, applier, compactor } = this.run;
    const transport = this.s.transport;
    if (rd.softState !== undefined) this.onSoftState(rd.softState.leader, rd.softState.role);
    const { early, later } = persister.splitEarly(rd, this.leadership.isLeader);
    if (early.length > 0) transport.send(early);
    await persister.persist(rd);
    if (rd.entries.length > 0) this.bindProposals(rd.entries);
    if (rd.hardState !== undefined) this.leadership.term = rd.hardState.term;
    if (later.length > 0) transport.send(later);
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > applier.applied) {
      await applier.installSnapshot(rd.snapshot);
      compactor.installed(rd.snapshot.metadata.index, applier.appliedBytes);
    }
    if (rd.committedEntries.length > 0) this.settlements.push(...applier.apply(rd.committedEntries, raw));
    for (const rs of rd.readStates) this.reads.onReadState(rs.index, rs.requestCtx);
    this.reads.release();
    await compactor.maybeCompact(applier.applied, applier.confState, applier.appliedBytes);
  }

  private onSoftState(leader: NodeId, role: Role): void {
    const change = this.leadership.update(leader, role);
    if (change === undefined) return;
    const was = change.previous;
    if (was !== '' && was !== leader) this.failPending(`leader changed from ${was} to ${leader || 'none'}`);
    this.reads.onLeaderChange();
    this.leadership.announce();
  }

  /** Rejects every proposal whose outcome depends on the old leader (it may still commit). */
  private failPending(reason: string): void {
    this.queuedIds = [];
    this.queuedData = [];
    this.waiters.rejectAll(() => new ProposalOutcomeUnknownError(reason));
  }

  /** Binds waiting proposals to the index and term their entries got here. */
  private bindProposals(entries: readonly Entry[]): void {
    if (this.waiters.size === 0) return;
    for (const e of entries) {
      const id = proposalIdOf(e, this.s.decodeConfChange);
      if (id !== undefined) this.waiters.bind(id, e.index, e.term);
    }
  }

  private fail(err: Error): void {
    if (this.failed !== undefined) return;
    this.failed = err;
    this.log.error({ err: err.message, code: err instanceof RaftError ? err.code : undefined }, 'raft node failed');
    this.shutdownPending(new NodeClosedError(`raft node failed: ${err.message}`, { cause: err }));
    this.closed = true;
    this.ticker?.cancel();
    this.wake();
    this.s.onFatal?.(err);
  }

  private shutdownPending(err: Error): void {
    this.queuedIds = [];
    this.queuedData = [];
    this.waiters.rejectAll(() => err);
    this.reads.failAll(err);
  }

  private register<T>(signal: AbortSignal | undefined, start: (id: number) => void): Promise<T> {
    if (this.closed) return Promise.reject(this.failed ?? new NodeClosedError());
    if (signal?.aborted) return Promise.reject(new AbortedError());
    const id = this.ids.next();
    const p = this.waiters.add<T>(id, signal);
    try {
      start(id);
    } catch (err) {
      this.waiters.cancel(id, err instanceof Error ? err : new RaftError('RAFT_UNKNOWN', String(err)));
      return p;
    }
    this.wake();
    return p;
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

  /**
   * Proposes a configuration change: one change with `transition: 'auto'` is a simple change,
   * several (or 'explicit') enter a joint configuration; no changes leave an explicit joint one.
   * `address` is where the added member listens (it updates every member's transport).
   * Resolves with the new ConfState once applied here.
   */
  changeMembership(
    changes: ConfChange['changes'],
    opts: { address?: string; transition?: ConfChange['transition']; signal?: AbortSignal } = {},
  ): Promise<ConfState> {
    return this.register<ConfState>(opts.signal, (id) =>
      this.run.raw.proposeConfChange({
        changes,
        transition: opts.transition ?? 'auto',
        context: encodeConfContext(id, opts.address ?? ''),
      }),
    );
  }

  /** Adds a voter (reachable at `address`); resolves with the new ConfState once applied. */
  addMember(id: NodeId, address: string, opts: { signal?: AbortSignal } = {}): Promise<ConfState> {
    return this.changeMembership([{ type: 'addNode', nodeId: id }], { ...opts, address });
  }

  addLearner(id: NodeId, address: string, opts: { signal?: AbortSignal } = {}): Promise<ConfState> {
    return this.changeMembership([{ type: 'addLearner', nodeId: id }], { ...opts, address });
  }

  /** Promotes a learner to voter. */
  promote(id: NodeId, opts: { signal?: AbortSignal } = {}): Promise<ConfState> {
    return this.changeMembership([{ type: 'addNode', nodeId: id }], opts);
  }

  removeMember(id: NodeId, opts: { signal?: AbortSignal } = {}): Promise<ConfState> {
    return this.changeMembership([{ type: 'removeNode', nodeId: id }], opts);
  }

  /** Hands leadership to `to`; resolves when this node sees `to` as leader. */
  transferLeadership(to: NodeId, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return Promise.reject(this.failed ?? new NodeClosedError());
    const timeoutMs = opts.timeoutMs ?? this.s.tickMs * this.s.electionTicks * 3;
    const p = this.leadership.awaitTransfer(to, timeoutMs, opts.signal, () => this.run.raw.transferLeader(to));
    this.wake();
    return p;
  }

  leaderInfo(): LeaderInfo {
    return this.leadership.info();
  }

  /** Subscribes to leader changes; returns an unsubscribe function. */
  onLeaderChange(fn: (info: LeaderInfo) => void): () => void {
    return this.leadership.subscribe(fn);
  }

  appliedIndex(): number {
    return this.started?.applier.applied ?? 0;
  }

  status(): Status {
    return this.run.raw.status();
  }

  /** Stops the loop and ticker, rejects pending operations, closes transport and store. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.ticker?.cancel();
      this.wake();
    }
    await this.loopDone;
    this.shutdownPending(new NodeClosedError());
    this.leadership.releaseTransfers();
    await this.s.transport.close();
    await this.s.store.close();
  }
}
