/**
 * One simulated member: the real driver (RaftNode) with the real core, over simulated seams:
 * a LogStore on a SimDisk (virtual fsync latency, power loss), a Transport on the SimNet, a
 * virtual clock (ticks with a per-node skew) and a seeded random source. The core is wrapped to
 * report every state change, the batch cut of each Ready and the entries applied, to the
 * invariant checker. Crash/restart rebuild a new driver from the durable disk image; a pause
 * (GC stall) holds every input — timers, messages, fsync completions — until resume.
 */
import type { Clock } from '@shoal/common';
import { RawNode } from '../core/raw-node.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  Message,
  NodeId,
  RaftConfig,
  RawNodeApi,
  Ready,
  Status,
} from '../core/types.js';
import type { Raft } from '../core/raft.js';
import { RaftNode } from '../driver/raft-node.js';
import type { AppliedEntry, StateMachine } from '../driver/options.js';
import type { EventQueue } from './event-queue.js';
import { KvMachine, decodeCommand, type KvApplyResult } from './kv-machine.js';
import type { Prng } from './prng.js';
import { SimDisk } from './sim-disk.js';
import { SimLogStore } from './sim-store.js';
import { SimTransport } from './sim-transport.js';

export interface SimMemberHooks {
  /** A message leaves the node (the checker sees it first). */
  send(m: Message): void;
  /** A committed entry is applied on `node` (every type, before advance). */
  applied(node: SimMember, e: Entry): void;
  /** A batch is durable on `node`; `prevTerm` is the term before its first entry as the batch was cut. */
  persisted(node: SimMember, entries: readonly Entry[], prevTerm: number): void;
  /** After every state change of the node's core. */
  changed(node: SimMember): void;
  /** Driver code ran (or was woken): its promise continuations must run before the next event. */
  touch(): void;
  /** The driver stopped itself (onFatal): the seed fails. */
  fatal(node: SimMember, err: Error): void;
  trace(line: string): void;
}

export interface SimMemberOptions {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxUncommittedEntriesSize: number;
  readonly snapshotEvery: number;
  readonly keepEntries: number;
  readonly fsyncMin: number;
  readonly fsyncMax: number;
}

/** The KV result handed back to a proposer, with the position of its entry. */
export interface SimApplyResult extends KvApplyResult {
  readonly index: number;
  readonly term: number;
}

/** The simulator's KV as the driver's StateMachine. */
class SimKv implements StateMachine {
  readonly kv = new KvMachine();
  apply(entries: readonly AppliedEntry[]): SimApplyResult[] {
    return entries.map((e) => ({ ...this.kv.apply(decodeCommand(e.data)), index: e.index, term: e.term }));
  }
  snapshot(): Uint8Array {
    return this.kv.snapshot();
  }
  restore(data: Uint8Array): void {
    this.kv.restore(data);
  }
}

/** The real RawNode, reporting to the checker after every input and at each Ready and advance. */
class CheckedCore implements RawNodeApi {
  /** The entries of the last Ready and the term before the first of them when it was cut. */
  lastEntries: readonly Entry[] = [];
  lastPrevTerm = 0;
  private committed: readonly Entry[] = [];

  constructor(
    readonly inner: RawNode,
    private readonly changed: () => void,
    private readonly applied: (e: Entry) => void,
  ) {}

  private input<T>(fn: () => T): T {
    try {
      return fn();
    } finally {
      this.changed();
    }
  }

  tick(): void {
    this.input(() => this.inner.tick());
  }
  step(m: Message): void {
    this.input(() => this.inner.step(m));
  }
  propose(data: Uint8Array): void {
    this.input(() => this.inner.propose(data));
  }
  proposeBatch(datas: readonly Uint8Array[]): void {
    this.input(() => this.inner.proposeBatch(datas));
  }
  proposeConfChange(cc: ConfChange): void {
    this.input(() => this.inner.proposeConfChange(cc));
  }
  applyConfChange(cc: ConfChange): ConfState {
    return this.input(() => this.inner.applyConfChange(cc));
  }
  campaign(): void {
    this.input(() => this.inner.campaign());
  }
  readIndex(ctx: Uint8Array): void {
    this.input(() => this.inner.readIndex(ctx));
  }
  transferLeader(to: NodeId): void {
    this.input(() => this.inner.transferLeader(to));
  }
  reportUnreachable(id: NodeId): void {
    this.input(() => this.inner.reportUnreachable(id));
  }
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.input(() => this.inner.reportSnapshot(id, ok));
  }
  hasReady(): boolean {
    return this.inner.hasReady();
  }
  ready(): Ready {
    const rd = this.inner.ready();
    this.lastEntries = rd.entries;
    this.lastPrevTerm = rd.entries.length > 0 ? this.inner.raft.log.termOr0(rd.entries[0]!.index - 1) : 0;
    this.committed = rd.committedEntries;
    return rd;
  }
  advance(): void {
    for (const e of this.committed) this.applied(e);
    this.committed = [];
    this.input(() => this.inner.advance());
  }
  status(): Status {
    return this.inner.status();
  }
}

export class SimMember {
  readonly id: NodeId;
  readonly disk: SimDisk;
  up = false;
  paused = false;
  /** Incremented on every crash and restart: what an older life scheduled is ignored. */
  life = 0;
  driver!: RaftNode;
  private core!: CheckedCore;
  private sm = new SimKv();
  private transport!: SimTransport;
  /** Inputs held during a pause, run in order on resume. */
  private held: (() => void)[] = [];
  /** The life whose driver built `core`. */
  private coreLife = 0;
  /** Per-node clock skew (ticks run ±5 % off). */
  private readonly skew: number;
  /** Timer slowdown (1 = normal): a clock starved or running slow, set by a fault. */
  clockRate = 1;
  /** When set, the node loses power during its next fsync (set by the simulator). */
  crashDuringNextSync: (() => void) | undefined = undefined;

  constructor(
    id: NodeId,
    private readonly q: EventQueue,
    private readonly rng: Prng,
    private readonly opts: SimMemberOptions,
    private readonly hooks: SimMemberHooks,
  ) {
    this.id = id;
    this.disk = new SimDisk();
    this.skew = 0.95 + rng.float() * 0.1;
  }

  get raft(): Raft {
    return this.core.inner.raft;
  }

  get kv(): KvMachine {
    return this.sm.kv;
  }

  get applied(): number {
    return this.raft.log.applied;
  }

  get confState(): ConfState {
    return this.raft.confState();
  }

  /** Starts a life: a new driver over the durable disk image (bootstrapping a founding member). */
  start(bootstrapVoters?: readonly NodeId[]): void {
    this.life++;
    this.up = true;
    this.paused = false;
    this.held = [];
    const life = this.life;
    const rng = this.rng.fork();
    this.sm = new SimKv();
    this.transport = new SimTransport(
      (m) => this.hooks.send(m),
      () => life === this.life && this.up,
    );
    const store = new SimLogStore(this.disk, {
      later: (ms, label, fn) => this.later(ms, label, fn),
      fsyncMs: () => this.opts.fsyncMin + this.rng.float() * (this.opts.fsyncMax - this.opts.fsyncMin),
      persisted: (entries) => {
        const prev = entries.length > 0 && entries === this.core.lastEntries ? this.core.lastPrevTerm : 0;
        this.hooks.persisted(this, entries, prev);
      },
      takeCrashDuringSync: () => {
        const crash = this.crashDuringNextSync;
        if (crash === undefined) return undefined;
        this.crashDuringNextSync = undefined;
        return (delay) =>
          this.q.after(delay * this.rng.float(), `crash-in-sync ${this.id}`, () => {
            if (life === this.life && this.up) crash();
          });
      },
    });
    const clock: Clock = {
      now: () => this.q.now,
      setTimeout: (fn, ms) => {
        let live = true;
        this.later(ms * this.skew * this.clockRate, `timer ${this.id}`, () => {
          if (live) fn();
        });
        return {
          cancel: () => {
            live = false;
          },
        };
      },
    };
    const o = this.opts;
    this.driver = new RaftNode({
      id: this.id,
      store,
      transport: this.transport,
      stateMachine: this.sm,
      createRawNode: (config: RaftConfig) => {
        this.coreLife = life;
        this.core = new CheckedCore(
          new RawNode(config),
          () => {
            if (life === this.life) this.hooks.changed(this);
          },
          (e) => {
            if (life === this.life) this.hooks.applied(this, e);
          },
        );
        return this.core;
      },
      ...(bootstrapVoters === undefined ? {} : { bootstrapVoters }),
      tickMs: o.tickMs,
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      snapshotEntries: o.snapshotEvery,
      keepEntries: o.keepEntries,
      maxSizePerMsg: o.maxSizePerMsg,
      maxInflightMsgs: o.maxInflightMsgs,
      maxUncommittedEntriesSize: o.maxUncommittedEntriesSize,
      clock,
      random: () => rng.float(),
      onFatal: (err) => this.hooks.fatal(this, err),
    });
    this.hooks.touch();
    this.driver.start().then(
      () => {
        if (life === this.life) this.hooks.changed(this);
      },
      (err: unknown) => this.hooks.fatal(this, err instanceof Error ? err : new Error(String(err))),
    );
  }

  /** True when this life's driver built its core (a founding member's start waits for an fsync). */
  get running(): boolean {
    return this.up && this.coreLife === this.life;
  }

  /** True once some life built a core (`raft` is readable, possibly of a crashed life). */
  get hasCore(): boolean {
    return this.coreLife > 0;
  }

  /** Runs a client call on the driver when the node runs and is not paused; false otherwise. */
  call(fn: (driver: RaftNode) => unknown): boolean {
    if (!this.running || this.paused) return false;
    this.hooks.touch();
    fn(this.driver);
    return true;
  }

  /** Runs `fn` after `ms` of virtual time if this life is still running (held while paused). */
  private later(ms: number, label: string, fn: () => void): void {
    const life = this.life;
    this.q.after(ms, label, () => {
      if (life === this.life && this.up) this.whenRunning(fn);
    });
  }

  private whenRunning(fn: () => void): void {
    if (this.paused) {
      this.held.push(fn);
      return;
    }
    this.hooks.touch();
    fn();
  }

  /** Power loss: unsynced writes may be lost; the driver and everything in memory are gone. */
  crash(): void {
    const lost = this.disk.crash(this.rng);
    this.up = false;
    this.paused = false;
    this.held = [];
    this.life++;
    this.hooks.trace(`${this.id} crash (lost ${lost} unsynced writes)`);
  }

  restart(): void {
    this.start();
    this.hooks.trace(`${this.id} restart`);
  }

  /** Removed from the cluster for good: stops without losing anything. */
  stop(): void {
    this.up = false;
    this.life++;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    this.hooks.touch();
    for (const fn of held) {
      if (this.paused || !this.up) break;
      fn();
    }
  }

  receive(m: Message): void {
    if (!this.up) return;
    const t = this.transport;
    this.whenRunning(() => t.deliver(m));
  }

  /** Transport feedback for a message this node sent. */
  feedback(m: Message, delivered: boolean, cut: boolean): void {
    if (!this.up) return;
    const t = this.transport;
    if (m.type === 'snap') this.whenRunning(() => t.snapshotStatus(m.to, delivered));
    else if (!delivered && cut && m.type === 'app') this.whenRunning(() => t.unreachable(m.to));
  }
}
