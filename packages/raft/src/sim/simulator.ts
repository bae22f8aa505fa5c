/**
 * The seeded deterministic simulator: a cluster of SimMembers — each the real driver (RaftNode)
 * and core over simulated storage, transport and clock — on a SimNet and a virtual clock.
 * A seed determines everything: the schedule of chaos windows (partitions, loss, duplication,
 * delays, pauses, crashes losing unsynced writes, restarts, membership changes, leader
 * transfers) alternating with heals, the client workload, and every timeout. After the final
 * heal a leader must emerge and the KV converge on every member within a bound.
 */
import { setImmediate as macrotask } from 'node:timers/promises';
import { ShoalError } from '@shoal/common';
import type { ConfChange, ConfState, Entry, Message, NodeId } from '../core/types.js';
import { ProposalDroppedError } from '../errors.js';
import { EventQueue } from './event-queue.js';
import { InvariantChecker, InvariantViolation } from './invariants.js';
import { Prng } from './prng.js';
import { SimNet } from './sim-net.js';
import { figure8, isolatedSlowLeader, type ScenarioHost } from './scenarios.js';
import { SimMember, type SimMemberOptions } from './sim-member.js';
import { Workload, type HistoryOp } from './workload.js';

export interface SimOptions {
  readonly nodes: 3 | 5;
  /** Chaos windows before the final heal. */
  readonly windows: number;
  /** Milliseconds of virtual time per tick. */
  readonly tickMs: number;
  readonly electionTicks: number;
  /** Keep the last N trace lines for failure reports. */
  readonly traceLines: number;
  readonly verbose: boolean;
}

export const DEFAULT_SIM_OPTIONS: SimOptions = {
  nodes: 3,
  windows: 3,
  tickMs: 10,
  electionTicks: 10,
  traceLines: 60,
  verbose: false,
};

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly trace: string[];
  readonly events: number;
  readonly virtualMs: number;
  readonly acked: number;
  readonly history: HistoryOp[];
  readonly stats: string;
}

const ELECTION_MS = (o: SimOptions): number => o.tickMs * o.electionTicks;

export class Simulation {
  readonly q = new EventQueue();
  readonly rng: Prng;
  readonly net: SimNet;
  readonly nodes = new Map<NodeId, SimMember>();
  readonly checker = new InvariantChecker();
  readonly workload: Workload;
  private readonly trace: string[] = [];
  private readonly nodeOpts: SimMemberOptions;
  /** Set when an event ran driver code: the drivers' continuations run before the next event. */
  touched = false;
  /** Set when a driver stopped itself or an unexpected error surfaced in a callback. */
  private fatal: Error | undefined;
  private nextId: number;
  /** Nodes removed from the configuration (never reused, stopped at the final heal). */
  private readonly retired = new Set<NodeId>();
  private crashed = new Set<NodeId>();
  events = 0;
  private chaos = false;
  /** Coverage counters (reported in stats). */
  readonly count = { snaps: 0, crashes: 0, confs: 0, leaders: 0, transfers: 0, reads: 0 };

  constructor(
    readonly seed: number,
    readonly o: SimOptions,
  ) {
    this.rng = new Prng(seed);
    this.net = new SimNet(
      this.q,
      this.rng.fork(),
      (m) => this.deliver(m),
      (m, delivered, cut) => this.feedback(m, delivered, cut),
    );
    this.nodeOpts = {
      tickMs: o.tickMs,
      electionTicks: o.electionTicks,
      heartbeatTicks: 1,
      maxSizePerMsg: this.rng.pick([1, 256, 4096, 1 << 20]),
      maxInflightMsgs: this.rng.pick([2, 8, 256]),
      maxUncommittedEntriesSize: this.rng.pick([0, 0, 4096]),
      snapshotEvery: this.rng.pick([10, 40, 200]),
      keepEntries: this.rng.pick([0, 2, 10, 50]),
      fsyncMin: 0.1,
      fsyncMax: this.rng.pick([0.5, 2, 8]),
    };
    const ids: NodeId[] = [];
    for (let k = 1; k <= o.nodes; k++) ids.push(`n${k}`);
    this.nextId = o.nodes + 1;
    for (const id of ids) this.startNode(id, ids);
    this.workload = new Workload(this, this.rng.fork());
  }

  log(line: string): void {
    const s = `${this.q.now.toFixed(2).padStart(9)} ${line}`;
    this.trace.push(s);
    if (this.trace.length > this.o.traceLines * 4) this.trace.splice(0, this.trace.length - this.o.traceLines);
    if (this.o.verbose) process.stderr.write(s + '\n');
  }

  private startNode(id: NodeId, bootstrapVoters: readonly NodeId[] | undefined): SimMember {
    const node = new SimMember(id, this.q, this.rng.fork(), this.nodeOpts, {
      send: (m) => {
        this.checker.sent(m);
        if (m.type === 'snap') this.count.snaps++;
        else if (m.type === 'timeoutNow') this.count.transfers++;
        this.net.send(m);
      },
      applied: (n, e) => this.onApplied(n, e),
      persisted: (n, entries, prevTerm) => this.checker.persisted(n, entries, prevTerm),
      touch: () => {
        this.touched = true;
      },
      changed: (n) => this.onChanged(n),
      // An invariant check that fails inside a core call stops that driver: report the check.
      fatal: (n, err) =>
        this.fail(
          err instanceof InvariantViolation ? err : new Error(`${n.id}: driver stopped: ${err.stack ?? err.message}`),
        ),
      trace: (l) => this.log(l),
    });
    this.nodes.set(id, node);
    node.start(bootstrapVoters);
    return node;
  }

  /** Records an unexpected failure; the run stops after the current event. */
  fail(err: Error): void {
    this.fatal ??= err;
  }

  /** A rejection the simulation expects (a RaftError, an abort); anything else fails the seed. */
  expected(err: unknown): void {
    if (err instanceof ShoalError) return;
    this.fail(err instanceof Error ? err : new Error(String(err)));
  }

  private lastRole = new Map<NodeId, string>();
  private readonly watchers = new Set<(n: SimMember) => void>();
  /** A scripted scenario runs this window: no random actions, a clean network. */
  private scripted = false;

  private onChanged(n: SimMember): void {
    this.checker.changed(n);
    for (const w of this.watchers) w(n);
    const r = n.raft;
    const role = `${r.state}@${r.term}`;
    if (this.lastRole.get(n.id) !== role) {
      this.lastRole.set(n.id, role);
      if (r.state === 'leader') this.count.leaders++;
      if (r.state === 'leader' || r.state === 'candidate')
        this.log(`${n.id} becomes ${role} last=${r.log.lastIndex()}`);
    }
  }

  private onApplied(n: SimMember, e: Entry): void {
    if (e.type === 'confChange' && this.checker.appliedEntry(e.index) === undefined) this.count.confs++;
    this.checker.applied(n, e);
    if (e.type === 'confChange') this.log(`${n.id} apply conf@${e.index}`);
  }

  private deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (n === undefined) return;
    n.receive(m);
  }

  /** What a transport reports back to the sending node's core. */
  private feedback(m: Message, delivered: boolean, cut: boolean): void {
    const from = this.nodes.get(m.from);
    if (from === undefined) return;
    from.feedback(m, delivered, cut);
  }

  // ---- cluster views ----

  live(): SimMember[] {
    return [...this.nodes.values()].filter((n) => n.running && !this.retired.has(n.id));
  }

  leader(): SimMember | undefined {
    let best: SimMember | undefined;
    for (const n of this.nodes.values()) {
      if (!n.running || n.raft.state !== 'leader') continue;
      if (best === undefined || n.raft.term > best.raft.term) best = n;
    }
    return best;
  }

  /** Members of the newest configuration any node applied. */
  members(): { voters: NodeId[]; all: NodeId[] } {
    let best: SimMember | undefined;
    for (const n of this.nodes.values()) {
      if (!n.hasCore) continue;
      if (best === undefined || n.applied > best.applied) best = n;
    }
    const cs = best!.confState;
    const voters = [...new Set([...cs.voters, ...cs.votersOutgoing])].sort();
    return { voters, all: [...new Set([...voters, ...cs.learners, ...cs.learnersNext])].sort() };
  }

  // ---- faults ----

  private allIds(): NodeId[] {
    return [...this.nodes.keys()];
  }

  private scenarioHost(): ScenarioHost {
    return {
      net: this.net,
      rng: this.rng,
      leader: () => this.leader(),
      memberIds: () => this.allIds().filter((id) => !this.retired.has(id)),
      allIds: () => this.allIds(),
      watch: (fn) => {
        this.watchers.add(fn);
        return () => this.watchers.delete(fn);
      },
      log: (l) => this.log(l),
    };
  }

  private startChaos(): void {
    this.chaos = true;
    const r = this.rng;
    const ids = this.allIds().filter((id) => !this.retired.has(id));
    const kind = r.int(10);
    this.scripted = false;
    switch (kind) {
      case 0: {
        const sh = r.shuffle(ids);
        const k = r.range(1, Math.floor(sh.length / 2));
        this.net.split(sh.slice(0, k), sh.slice(k));
        this.log(`chaos: split [${sh.slice(0, k).join(',')}] | [${sh.slice(k).join(',')}]`);
        break;
      }
      case 1: {
        const l = this.leader();
        if (l !== undefined) {
          this.net.isolate(l.id, this.allIds());
          this.log(`chaos: isolate leader ${l.id}`);
        }
        break;
      }
      case 2: {
        // Bridge: two groups that only talk through one node.
        const sh = r.shuffle(ids);
        const bridge = sh[0]!;
        const rest = sh.slice(1);
        const k = Math.max(1, Math.floor(rest.length / 2));
        this.net.split(rest.slice(0, k), rest.slice(k));
        this.log(`chaos: bridge via ${bridge}: [${rest.slice(0, k).join(',')}] | [${rest.slice(k).join(',')}]`);
        break;
      }
      case 3: {
        // One-way cuts.
        for (let k = 0; k < r.range(1, 3); k++) {
          const a = r.pick(ids);
          const b = r.pick(ids);
          if (a !== b) this.net.cut(a, b);
        }
        this.log(`chaos: one-way cuts`);
        break;
      }
      case 4:
        isolatedSlowLeader(this.scenarioHost());
        break;
      case 5:
      case 6:
        this.scripted = figure8(this.scenarioHost());
        break;
      default:
        break;
    }
    this.net.loss = r.chance(0.6) ? r.float() * 0.3 : 0;
    this.net.dup = r.chance(0.5) ? r.float() * 0.15 : 0;
    this.net.delayMax = r.pick([3, 10, 30]);
    this.net.longTail = r.chance(0.4) ? 0.05 : 0;
    if (this.scripted) {
      this.net.loss = 0;
      this.net.dup = 0;
      this.net.longTail = 0;
    }
    this.log(`chaos: net ${this.net.describe()}`);
  }

  private heal(final: boolean): void {
    this.chaos = !final;
    this.scripted = false;
    this.watchers.clear();
    this.net.heal();
    for (const n of this.nodes.values()) {
      n.crashDuringNextSync = undefined;
      n.clockRate = 1;
      if (this.retired.has(n.id)) continue;
      if (n.paused) n.resume();
      if (!n.up) {
        n.restart();
        this.crashed.delete(n.id);
      }
    }
    this.log(`heal${final ? ' (final)' : ''}`);
  }

  /** One random fault or operation during a chaos window. */
  private randomAction(): void {
    if (this.scripted) return;
    const r = this.rng;
    const ids = this.allIds().filter((id) => !this.retired.has(id));
    const x = r.int(100);
    if (x < 25) {
      const n = this.nodes.get(r.pick(ids))!;
      if (n.up && this.crashed.size < Math.floor((ids.length - 1) / 2) + 1) {
        const restartAfter = r.range(20, 400);
        const crash = (): void => {
          if (!n.up || this.crashed.has(n.id)) return;
          n.crash();
          this.count.crashes++;
          this.crashed.add(n.id);
          this.q.after(restartAfter, `restart ${n.id}`, () => {
            if (!n.up && !this.retired.has(n.id)) {
              n.restart();
              this.crashed.delete(n.id);
            }
          });
        };
        // Half of the crashes hit the middle of an fsync (unsynced writes lost), half at once.
        if (r.chance(0.5)) n.crashDuringNextSync = crash;
        else crash();
      }
    } else if (x < 40) {
      const n = this.nodes.get(r.pick(ids))!;
      if (n.up && !n.paused) {
        n.pause();
        this.log(`${n.id} paused`);
        this.q.after(r.range(20, 500), `resume ${n.id}`, () => {
          if (n.paused) {
            this.log(`${n.id} resumed`);
            n.resume();
          }
        });
      }
    } else if (x < 60) {
      this.membershipChange();
    } else if (x < 70) {
      const l = this.leader();
      if (l !== undefined) {
        const voters = l.confState.voters.filter((v) => v !== l.id);
        if (voters.length > 0) {
          const to = r.pick(voters);
          this.log(`transfer ${l.id} -> ${to}`);
          l.call((d) =>
            d.transferLeadership(to).then(
              () => this.log(`transfer to ${to} done`),
              (err: unknown) => this.expected(err),
            ),
          );
        }
      }
    } else if (x < 80) {
      // Change network conditions mid-window.
      this.net.loss = r.chance(0.5) ? r.float() * 0.3 : 0;
      this.net.dup = r.chance(0.5) ? r.float() * 0.15 : 0;
    }
  }

  /** Proposes a random membership change through the current leader. */
  private membershipChange(): void {
    const l = this.leader();
    if (l === undefined) return;
    const r = this.rng;
    const cs = l.confState;
    if (cs.votersOutgoing.length > 0) return;
    const voters = cs.voters;
    const learners = cs.learners;
    const newId = (): NodeId => `n${this.nextId++}`;
    let cc: ConfChange | undefined;
    let start: NodeId | undefined;
    const c = r.int(5);
    if (c === 0 && voters.length + learners.length < 6) {
      start = newId();
      cc = { changes: [{ type: 'addLearner', nodeId: start }], transition: 'auto', context: new Uint8Array(0) };
    } else if (c === 1 && learners.length > 0 && voters.length < 5) {
      cc = { changes: [{ type: 'addNode', nodeId: r.pick(learners) }], transition: 'auto', context: new Uint8Array(0) };
    } else if (c === 2 && voters.length > 3) {
      cc = {
        changes: [{ type: 'removeNode', nodeId: r.pick(voters) }],
        transition: 'auto',
        context: new Uint8Array(0),
      };
    } else if (c === 3 && voters.length >= 3) {
      // Replace a voter (maybe the leader) in one joint step.
      start = newId();
      const out = r.pick(voters);
      cc = {
        changes: [
          { type: 'addNode', nodeId: start },
          { type: 'removeNode', nodeId: out },
        ],
        transition: r.chance(0.7) ? 'auto' : 'explicit',
        context: new Uint8Array(0),
      };
    } else if (c === 4 && learners.length > 0) {
      cc = {
        changes: [{ type: 'removeNode', nodeId: r.pick(learners) }],
        transition: 'auto',
        context: new Uint8Array(0),
      };
    }
    if (cc === undefined) return;
    const desc = cc.changes.map((ch) => `${ch.type} ${ch.nodeId}`).join(', ');
    this.log(`conf change via ${l.id} (${fmtConf(cs)}): ${desc} ${cc.transition}`);
    this.proposeConf(l, cc.changes, cc.transition);
    // A new member starts empty; if the change is refused it just idles.
    if (start !== undefined) this.startNode(start, undefined);
    if (cc.transition === 'explicit') {
      // Leave the explicit joint configuration a little later.
      this.q.after(r.range(50, 300), 'leave joint', () => {
        const ll = this.leader();
        if (ll === undefined || ll.confState.votersOutgoing.length === 0) return;
        this.log(`leave joint via ${ll.id}`);
        this.proposeConf(ll, [], 'auto');
      });
    }
  }

  private proposeConf(via: SimMember, changes: ConfChange['changes'], transition: ConfChange['transition']): void {
    via.call((d) =>
      d.changeMembership(changes, { transition }).then(
        (cs) => this.log(`conf change applied on ${via.id}: ${fmtConf(cs)}`),
        (err: unknown) => {
          if (err instanceof ProposalDroppedError) this.log(`conf change via ${via.id} refused: ${err.reason}`);
          else this.expected(err);
        },
      ),
    );
  }

  /** Removed nodes are retired once the removal is applied by a leader. */
  private retireRemoved(): void {
    const { all } = this.members();
    for (const n of this.nodes.values()) {
      if (this.retired.has(n.id)) continue;
      const everMember = n.applied > 1 || n.confState.voters.length > 0;
      if (!all.includes(n.id) && everMember && this.leader()?.applied === this.checker.maxApplied) {
        this.retired.add(n.id);
        n.stop();
        this.log(`${n.id} retired (not in ${all.join(',')})`);
      }
    }
  }

  // ---- run ----

  /**
   * Runs events up to virtual time `t`. After each event the drivers' promise continuations run
   * (a macrotask turn drains the microtask queue) before the next event: virtual time does not
   * pass while a driver works, as if its CPU were infinitely fast.
   */
  private async runUntil(t: number): Promise<void> {
    for (;;) {
      const ev = this.q.pop();
      if (ev === undefined) return;
      if (ev.time > t) {
        // Put it back: it belongs to the next phase.
        this.q.at(ev.time, ev.label, ev.run);
        this.q.now = t;
        return;
      }
      this.events++;
      this.touched = false;
      ev.run();
      if (this.touched) await macrotask();
      if (this.fatal !== undefined) throw this.fatal;
    }
  }

  async run(): Promise<SimResult> {
    const em = ELECTION_MS(this.o);
    let error: string | undefined;
    try {
      this.workload.start();
      // Let the cluster elect a first leader.
      await this.runUntil(this.q.now + 3 * em);
      for (let w = 0; w < this.o.windows; w++) {
        this.startChaos();
        // A scripted scenario needs a few elections to play out.
        const len = Math.max(this.rng.range(5, 20), this.scripted ? 15 : 0) * em;
        const end = this.q.now + len;
        const actions = this.rng.range(2, 8);
        for (let k = 0; k < actions; k++)
          this.q.at(this.q.now + this.rng.float() * len, 'action', () => this.randomAction());
        await this.runUntil(end);
        this.heal(false);
        this.retireRemoved();
        await this.runUntil(this.q.now + this.rng.range(2, 8) * em);
      }
      this.heal(true);
      this.workload.stop();
      const healAt = this.q.now;
      // Liveness: a leader within a bound of election timeouts.
      const leaderBound = healAt + 10 * em;
      while (this.q.now < leaderBound && this.leader() === undefined) await this.runUntil(this.q.now + this.o.tickMs);
      if (this.leader() === undefined)
        throw new LivenessError(`no leader ${10} election timeouts after the final heal`);
      // Progress: a marker write commits and every member converges.
      this.retireRemoved();
      this.workload.finalWrite();
      const convergeBound = healAt + 40 * em;
      while (this.q.now < convergeBound && !this.converged()) await this.runUntil(this.q.now + this.o.tickMs);
      if (!this.converged())
        throw new LivenessError(`no convergence 40 election timeouts after the final heal: ${this.progressLine()}`);
      this.workload.checkAcked(this);
      this.workload.checkHistory();
    } catch (err) {
      if (err instanceof InvariantViolation || err instanceof LivenessError || err instanceof HistoryError) {
        error = err.message;
      } else {
        error = `exception: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
      }
    }
    return {
      seed: this.seed,
      nodes: this.o.nodes,
      ok: error === undefined,
      ...(error === undefined ? {} : { error }),
      trace: this.trace.slice(-this.o.traceLines),
      events: this.events,
      virtualMs: Math.round(this.q.now),
      acked: this.workload.ackedCount,
      history: this.workload.history,
      stats: `events=${this.events} t=${Math.round(this.q.now)}ms msgs=${this.net.sent} dropped=${this.net.dropped} ops=${this.workload.history.length} acked=${this.workload.ackedCount} applied=${this.checker.maxApplied} leaders=${this.count.leaders} crashes=${this.count.crashes} confs=${this.count.confs} snaps=${this.count.snaps} transfers=${this.count.transfers}`,
    };
  }

  progressLine(): string {
    const { all } = this.members();
    return all
      .map((id) => {
        const n = this.nodes.get(id);
        if (n === undefined) return `${id}:absent`;
        if (!n.hasCore) return `${id}:booting`;
        const r = n.raft;
        return `${id}:${n.running ? r.state : 'down'}@${r.term} last=${r.log.lastIndex()} commit=${r.log.committed} applied=${r.log.applied}`;
      })
      .join(' ');
  }

  /** Every member of the final configuration is up and applied the same state as the leader. */
  converged(): boolean {
    const l = this.leader();
    if (l === undefined || !this.workload.finalDone()) return false;
    const { all } = this.members();
    const fp = l.kv.fingerprint();
    for (const id of all) {
      const n = this.nodes.get(id);
      if (n === undefined || !n.running) return false;
      if (n.applied < l.raft.log.committed || n.kv.fingerprint() !== fp) return false;
    }
    return true;
  }
}

export class LivenessError extends Error {
  constructor(message: string) {
    super(`liveness: ${message}`);
  }
}

export class HistoryError extends Error {
  constructor(message: string) {
    super(message);
  }
}

/** Runs one seed. */
export function runSeed(seed: number, opts: Partial<SimOptions> = {}): Promise<SimResult> {
  return new Simulation(seed, { ...DEFAULT_SIM_OPTIONS, ...opts }).run();
}

export function fmtConf(cs: ConfState): string {
  let s = `v[${cs.voters.join(',')}]`;
  if (cs.votersOutgoing.length > 0) s += `&o[${cs.votersOutgoing.join(',')}]`;
  if (cs.learners.length > 0) s += ` l[${cs.learners.join(',')}]`;
  if (cs.learnersNext.length > 0) s += ` ln[${cs.learnersNext.join(',')}]`;
  return s;
}
