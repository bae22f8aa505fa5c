/**
 * One simulated member: a real RawNode over a MemoryStorage view and a SimDisk, driven the way
 * the production driver drives it: take a Ready, write it to disk (fsync when mustSync, which
 * takes virtual time), then send its messages, apply its snapshot and committed entries to the
 * KV state machine (and conf changes to the core), then advance. Snapshots every K applied
 * entries, with compaction that keeps a random tail. Crash/restart rebuild from durable data.
 */
import { ProposalDroppedError } from '../errors.js';
import { decodeConfChange } from '../core/conf-codec.js';
import { MemoryStorage } from '../core/memory-storage.js';
import { RawNode } from '../core/raw-node.js';
import type { ConfState, Entry, Message, NodeId, Ready, Snapshot } from '../core/types.js';
import { EMPTY_CONF_STATE } from '../core/util.js';
import type { EventQueue } from './event-queue.js';
import { KvMachine, decodeCommand, type KvApplyResult, type KvCommand } from './kv-machine.js';
import type { Prng } from './prng.js';
import { SimDisk } from './sim-disk.js';

export interface SimNodeHooks {
  send(m: Message): void;
  /** A committed entry was applied on `node` (result undefined for non-KV entries). */
  applied(node: SimNode, e: Entry, cmd: KvCommand | undefined, res: KvApplyResult | undefined): void;
  /** A read index is ready to serve on `node` (applied >= index). */
  readReady(node: SimNode, ctx: Uint8Array, index: number): void;
  /** Called after the node persisted a Ready (before sending): invariant checks. */
  persisted(node: SimNode, rd: Ready, prevTerm: number): void;
  /** Called after every state change of the node. */
  changed(node: SimNode): void;
  trace(line: string): void;
}

export interface SimNodeOptions {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxUncommittedEntriesSize: number;
  readonly snapshotEvery: number;
  readonly fsyncMin: number;
  readonly fsyncMax: number;
}

export class SimNode {
  readonly id: NodeId;
  readonly disk: SimDisk;
  raw!: RawNode;
  storage!: MemoryStorage;
  kv = new KvMachine();
  confState: ConfState = EMPTY_CONF_STATE;
  up = true;
  paused = false;
  /** Incremented on every restart: events scheduled by an older life are ignored. */
  life = 0;
  private inbox: Message[] = [];
  private busy = false;
  private processScheduled = false;
  private pendingReads: { ctx: Uint8Array; index: number }[] = [];
  private lastSnapIndex = 0;
  /** When set, the node loses power during its next fsync (set by the simulator). */
  crashDuringNextSync: (() => void) | undefined = undefined;
  /** Highest term this node ever sent a message in (durable by construction). */
  sentTerm = 0;

  constructor(
    id: NodeId,
    initial: Snapshot | undefined,
    private readonly q: EventQueue,
    private readonly rng: Prng,
    private readonly opts: SimNodeOptions,
    private readonly hooks: SimNodeHooks,
  ) {
    this.id = id;
    this.disk = new SimDisk(initial);
    this.boot();
  }

  /** Builds the in-memory state from the durable disk image (first start and restarts). */
  private boot(): void {
    const img = this.disk.load();
    const st = new MemoryStorage();
    if (img.snap.metadata.index > 0) st.applySnapshot(img.snap);
    st.append(img.entries);
    st.setHardState(img.hard);
    this.storage = st;
    this.kv = new KvMachine();
    this.kv.restore(img.snap.data);
    this.confState = img.snap.metadata.confState;
    this.lastSnapIndex = img.snap.metadata.index;
    const rng = this.rng.fork();
    this.raw = new RawNode({
      id: this.id,
      electionTicks: this.opts.electionTicks,
      heartbeatTicks: this.opts.heartbeatTicks,
      storage: st,
      applied: img.snap.metadata.index,
      maxSizePerMsg: this.opts.maxSizePerMsg,
      maxInflightMsgs: this.opts.maxInflightMsgs,
      maxUncommittedEntriesSize: this.opts.maxUncommittedEntriesSize,
      preVote: true,
      checkQuorum: true,
      random: () => rng.float(),
    });
    this.busy = false;
    this.processScheduled = false;
    this.pendingReads = [];
    this.inbox = [];
  }

  get applied(): number {
    return this.raw.raft.log.applied;
  }

  /** Power loss: unsynced writes may be lost; in-memory state is gone. */
  crash(): void {
    const lost = this.disk.crash(this.rng);
    this.up = false;
    this.paused = false;
    this.life++;
    this.hooks.trace(`${this.id} crash (lost ${lost} unsynced writes)`);
  }

  restart(): void {
    this.life++;
    this.up = true;
    this.boot();
    this.hooks.trace(`${this.id} restart term=${this.raw.raft.term} commit=${this.raw.raft.log.committed}`);
    this.hooks.changed(this);
    this.schedule();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const msgs = this.inbox;
    this.inbox = [];
    for (const m of msgs) this.receive(m);
    this.schedule();
  }

  /** Runs `fn` against the core if the node is up and not paused; the Ready loop follows. */
  private input(fn: () => void): boolean {
    if (!this.up || this.paused) return false;
    fn();
    this.hooks.changed(this);
    this.schedule();
    return true;
  }

  tick(): void {
    this.input(() => this.raw.tick());
  }

  receive(m: Message): void {
    if (!this.up) return;
    if (this.paused) {
      this.inbox.push(m);
      return;
    }
    this.input(() => this.raw.step(m));
  }

  /** Client entry point; returns false (and why) when the core refused at once. */
  call(fn: (raw: RawNode) => void): string | undefined {
    if (!this.up || this.paused) return 'node down';
    try {
      this.input(() => fn(this.raw));
      return undefined;
    } catch (err) {
      if (err instanceof ProposalDroppedError) return err.reason;
      throw err;
    }
  }

  private schedule(): void {
    if (this.busy || this.processScheduled || !this.up) return;
    if (!this.raw.hasReady()) return;
    this.processScheduled = true;
    const life = this.life;
    this.q.after(0, `ready ${this.id}`, () => {
      if (life !== this.life) return;
      this.processScheduled = false;
      this.process();
    });
  }

  private process(): void {
    if (!this.up || this.paused || this.busy || !this.raw.hasReady()) {
      if (this.paused) {
        // Retry after the pause.
        const life = this.life;
        this.q.after(1, `ready-retry ${this.id}`, () => {
          if (life === this.life) this.schedule();
        });
      }
      return;
    }
    const rd = this.raw.ready();
    // Term of the entry before the batch, as the batch was cut (later steps may rewrite it).
    const prevTerm = rd.entries.length > 0 ? this.raw.raft.log.termOr0(rd.entries[0]!.index - 1) : 0;
    this.busy = true;
    if (rd.snapshot !== undefined) this.disk.write({ kind: 'snap', snap: rd.snapshot, wipe: true });
    if (rd.entries.length > 0) this.disk.write({ kind: 'entries', entries: rd.entries });
    if (rd.hardState !== undefined) this.disk.write({ kind: 'hard', hs: rd.hardState });
    const life = this.life;
    const delay = rd.mustSync ? this.opts.fsyncMin + this.rng.float() * (this.opts.fsyncMax - this.opts.fsyncMin) : 0;
    const crash = this.crashDuringNextSync;
    if (crash !== undefined && rd.mustSync) {
      // Power loss in the middle of this fsync: the batch is volatile, its acks never leave.
      this.crashDuringNextSync = undefined;
      this.q.after(delay * this.rng.float(), `crash-in-sync ${this.id}`, () => {
        if (life === this.life && this.up) crash();
      });
    }
    this.q.after(delay, `persisted ${this.id}`, () => {
      if (life !== this.life) return;
      this.finishWhenRunning(rd, life, prevTerm);
    });
  }

  private finishWhenRunning(rd: Ready, life: number, prevTerm: number): void {
    if (life !== this.life) return;
    if (this.paused) {
      this.q.after(1, `persisted-retry ${this.id}`, () => this.finishWhenRunning(rd, life, prevTerm));
      return;
    }
    this.finish(rd, prevTerm);
  }

  private finish(rd: Ready, prevTerm: number): void {
    if (rd.mustSync) this.disk.fsync();
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    this.hooks.persisted(this, rd, prevTerm);
    for (const m of rd.messages) {
      if (m.term > this.sentTerm) this.sentTerm = m.term;
      this.hooks.send(m);
    }
    if (rd.snapshot !== undefined) {
      this.kv.restore(rd.snapshot.data);
      this.confState = rd.snapshot.metadata.confState;
      this.lastSnapIndex = rd.snapshot.metadata.index;
    }
    for (const e of rd.committedEntries) this.applyEntry(e);
    for (const rs of rd.readStates) this.pendingReads.push({ ctx: rs.requestCtx, index: rs.index });
    this.raw.advance();
    this.busy = false;
    this.serveReads();
    this.maybeSnapshot();
    this.hooks.changed(this);
    this.schedule();
  }

  private applyEntry(e: Entry): void {
    if (e.type === 'confChange') {
      this.confState = this.raw.applyConfChange(decodeConfChange(e.data));
      this.hooks.trace(`${this.id} apply conf@${e.index} -> ${fmtConf(this.confState)}`);
      this.hooks.applied(this, e, undefined, undefined);
      return;
    }
    if (e.data.byteLength === 0) {
      this.hooks.applied(this, e, undefined, undefined);
      return;
    }
    const cmd = decodeCommand(e.data);
    const res = this.kv.apply(cmd);
    this.hooks.applied(this, e, cmd, res);
  }

  private serveReads(): void {
    if (this.pendingReads.length === 0) return;
    const applied = this.raw.raft.log.applied;
    const keep: { ctx: Uint8Array; index: number }[] = [];
    for (const r of this.pendingReads) {
      if (r.index <= applied) this.hooks.readReady(this, r.ctx, r.index);
      else keep.push(r);
    }
    this.pendingReads = keep;
  }

  private maybeSnapshot(): void {
    const applied = this.raw.raft.log.applied;
    if (applied - this.lastSnapIndex < this.opts.snapshotEvery) return;
    if (applied > this.storage.lastIndex()) return;
    const snap = this.storage.createSnapshot(applied, this.confState, this.kv.snapshot());
    // Snapshot files are written with tmp + fsync + rename: durable at once.
    this.disk.write({ kind: 'snap', snap, wipe: false });
    this.disk.fsync();
    this.lastSnapIndex = applied;
    const keep = this.rng.pick([0, 2, 10, 50]);
    this.storage.compact(Math.max(this.storage.firstIndex() - 1, applied - keep));
    this.hooks.trace(`${this.id} snapshot@${applied} compact keep=${keep}`);
  }
}

export function fmtConf(cs: ConfState): string {
  let s = `v[${cs.voters.join(',')}]`;
  if (cs.votersOutgoing.length > 0) s += `&o[${cs.votersOutgoing.join(',')}]`;
  if (cs.learners.length > 0) s += ` l[${cs.learners.join(',')}]`;
  if (cs.learnersNext.length > 0) s += ` ln[${cs.learnersNext.join(',')}]`;
  return s;
}
