/**
 * Simulated clients: put/get(ReadIndex)/cas/delete on a few keys through random members, with a
 * recorded history (invoke/complete in virtual time; timeouts complete as unknown) for the
 * linearizability checker, and the acknowledged writes whose durability is checked at the end.
 * Clients use the driver's API: a write is acknowledged when propose() resolves (committed and
 * applied on the node it was proposed to), a read is served when readIndex() resolves.
 */
import { AbortedError } from '@shoal/common';
import { checkLinearizability, formatOperation, type KvOperation } from '../check/linearizability.js';
import { ProposalDroppedError } from '../errors.js';
import { encodeCommand, type KvCommand } from './kv-machine.js';
import type { Prng } from './prng.js';
import type { SimApplyResult, SimMember } from './sim-member.js';
import { HistoryError, type Simulation } from './simulator.js';

export type HistoryOp = KvOperation;

interface Pending {
  readonly client: number;
  readonly seq: number;
  readonly node: string;
  readonly life: number;
  readonly op: {
    kind: KvOperation['kind'];
    key: string;
    value?: string;
    expected?: string | null;
    call: number;
  };
  readonly abort: AbortController;
  done: boolean;
}

const KEYS = ['a', 'b', 'c'];
const CLIENTS = 3;
const OP_TIMEOUT = 600;
/** Search steps per key before the linearizability checker gives up (a give-up fails the seed). */
export const LINEARIZABILITY_STEPS = 2_000_000;

export class Workload {
  readonly history: HistoryOp[] = [];
  private readonly pending = new Map<string, Pending>();
  private readonly seqs: number[] = new Array<number>(CLIENTS + 1).fill(0);
  private readonly acked: { index: number; term: number }[] = [];
  private running = false;
  private finalState: 'none' | 'pending' | 'done' = 'none';

  constructor(
    private readonly sim: Simulation,
    private readonly rng: Prng,
  ) {}

  get ackedCount(): number {
    return this.acked.length;
  }

  start(): void {
    this.running = true;
    for (let c = 1; c <= CLIENTS; c++) this.sim.q.after(this.rng.float() * 20, `client ${c}`, () => this.issue(c));
  }

  stop(): void {
    this.running = false;
  }

  private next(c: number): void {
    if (!this.running) return;
    this.sim.q.after(this.rng.range(2, 30), `client ${c}`, () => this.issue(c));
  }

  private issue(c: number): void {
    if (!this.running) return;
    const live = this.sim.live();
    if (live.length === 0) return this.next(c);
    const node = this.rng.pick(live);
    const s = ++this.seqs[c]!;
    const key = this.rng.pick(KEYS);
    const x = this.rng.int(10);
    const now = this.sim.q.now;
    const id = `${c}:${s}`;
    const abort = new AbortController();
    let started: boolean;
    if (x < 3) {
      const p: Pending = {
        client: c,
        seq: s,
        node: node.id,
        life: node.life,
        op: { kind: 'get', key, call: now },
        abort,
        done: false,
      };
      this.pending.set(id, p);
      started = node.call((d) =>
        d.readIndex({ signal: abort.signal }).then(
          () => this.readDone(id, node),
          (err: unknown) => this.failed(id, err),
        ),
      );
    } else {
      let cmd: KvCommand;
      const value = `${c}.${s}`;
      if (x < 7) cmd = { c, s, op: 'put', k: key, v: value };
      else if (x < 9) {
        const cur = this.rng.chance(0.5) ? this.lastValue(key) : null;
        cmd = { c, s, op: 'cas', k: key, v: value, e: cur };
      } else cmd = { c, s, op: 'delete', k: key };
      const op: Pending['op'] =
        cmd.op === 'put'
          ? { kind: 'put', key, value, call: now }
          : cmd.op === 'cas'
            ? { kind: 'cas', key, value, expected: cmd.e ?? null, call: now }
            : { kind: 'delete', key, call: now };
      const p: Pending = { client: c, seq: s, node: node.id, life: node.life, op, abort, done: false };
      this.pending.set(id, p);
      started = node.call((d) =>
        d.propose<SimApplyResult>(encodeCommand(cmd), { signal: abort.signal }).then(
          (res) => this.writeDone(id, res),
          (err: unknown) => this.failed(id, err),
        ),
      );
    }
    if (!started) {
      // The node is paused or still booting: nothing was asked, nothing is recorded.
      this.pending.delete(id);
      return this.next(c);
    }
    this.sim.q.after(OP_TIMEOUT, `timeout ${id}`, () => {
      const p = this.pending.get(id);
      if (p === undefined || p.done) return;
      this.sim.touched = true; // the abort rejects a driver promise
      p.abort.abort();
      this.unknown(id);
    });
  }

  /** A recently written value of `key` (to make some cas operations succeed). */
  private lastValue(key: string): string | null {
    for (let k = this.history.length - 1; k >= 0; k--) {
      const h = this.history[k]!;
      if (h.key === key && h.kind === 'put' && h.return !== Infinity) return h.value ?? null;
    }
    return null;
  }

  private take(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined || p.done) return undefined;
    p.done = true;
    this.pending.delete(id);
    return p;
  }

  private complete(id: string, out: KvOperation['output']): void {
    const p = this.take(id);
    if (p === undefined) return;
    this.history.push({ clientId: p.client, ...p.op, output: out, return: this.sim.q.now });
    this.next(p.client);
  }

  /** No answer, or an answer that does not tell: a write may take effect at any time after the call, or never; a read constrains nothing. */
  private unknown(id: string): void {
    const p = this.take(id);
    if (p === undefined) return;
    if (p.op.kind !== 'get') this.history.push({ clientId: p.client, ...p.op, return: Infinity });
    this.next(p.client);
  }

  private writeDone(id: string, res: SimApplyResult): void {
    // A duplicate was applied before under another entry, whose outcome this client did not see.
    if (res.duplicate) return this.unknown(id);
    if (this.pending.get(id)?.done === false) this.acked.push({ index: res.index, term: res.term });
    // Completed writes carry an output: the checker treats a write without one as unknown.
    this.complete(id, { ok: res.ok });
  }

  private readDone(id: string, node: SimMember): void {
    const p = this.pending.get(id);
    if (p === undefined || p.done) return;
    this.complete(id, { value: node.kv.get(p.op.key) });
  }

  private failed(id: string, err: unknown): void {
    if (err instanceof AbortedError) return; // our own timeout, already recorded
    this.sim.expected(err);
    const p = this.pending.get(id);
    if (p === undefined || p.done) return;
    if (err instanceof ProposalDroppedError) {
      // Refused by the core: certainly not in the log, so it constrains nothing.
      this.take(id);
      this.next(p.client);
      return;
    }
    // Leader changed, superseded, node stopped: the outcome is unknown.
    this.unknown(id);
  }

  /** After the final heal: one marker write through the leader, retried until it applies. */
  finalWrite(): void {
    this.finalState = 'pending';
    let s = 0;
    const attempt = (): void => {
      if (this.finalState !== 'pending') return;
      const l = this.sim.leader();
      s++;
      const cmd: KvCommand = { c: 0, s, op: 'put', k: 'final', v: `${s}` };
      l?.call((d) =>
        d.propose<SimApplyResult>(encodeCommand(cmd)).then(
          (res) => {
            if (res.duplicate || this.finalState !== 'pending') return;
            this.finalState = 'done';
            this.acked.push({ index: res.index, term: res.term });
          },
          (err: unknown) => this.sim.expected(err),
        ),
      );
      this.sim.q.after(100, 'final write retry', attempt);
    };
    attempt();
  }

  finalDone(): boolean {
    return this.finalState === 'done';
  }

  /** Every acknowledged write is committed at its index and still in the final leader's log or snapshot. */
  checkAcked(sim: Simulation): void {
    const l = sim.leader();
    for (const a of this.acked) {
      const at = sim.checker.appliedEntry(a.index);
      if (at === undefined || at.term !== a.term) {
        throw new HistoryError(`durability: acknowledged write at ${a.index}:${a.term} is not the committed entry`);
      }
      if (l !== undefined) {
        const log = l.raft.log;
        if (a.index >= log.firstIndex() && log.termOr0(a.index) !== a.term) {
          throw new HistoryError(`durability: acknowledged write ${a.index}:${a.term} missing from leader ${l.id}`);
        }
        if (a.index > log.lastIndex())
          throw new HistoryError(`durability: acknowledged write ${a.index} beyond leader log`);
      }
    }
  }

  /** The history must be linearizable; a check that gives up (step cap) fails too. */
  checkHistory(): void {
    // Writes still pending when the run ends have an unknown outcome.
    for (const p of this.pending.values()) {
      if (!p.done && p.op.kind !== 'get') this.history.push({ clientId: p.client, ...p.op, return: Infinity });
    }
    this.pending.clear();
    const res = checkLinearizability(this.history, { maxStepsPerKey: LINEARIZABILITY_STEPS });
    if (res.verdict === 'violation') {
      throw new HistoryError(
        `linearizability: key ${res.key}: ${res.message}\n  ${res.counterexample.map(formatOperation).join('\n  ')}`,
      );
    }
    if (res.verdict === 'unknown') {
      throw new HistoryError(`linearizability: check gave up on key ${res.key}: ${res.reason}`);
    }
  }
}
