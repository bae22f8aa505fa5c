/**
 * Simulated clients: put/get(ReadIndex)/cas/delete on a few keys through random members, with a
 * recorded history (invoke/complete in virtual time; timeouts complete as unknown) for the
 * linearizability checker, and the acknowledged writes whose durability is checked at the end.
 * A write is acknowledged only when it is committed and applied on the node it was proposed to.
 */
import { checkLinearizability, formatOperation, type KvOperation } from '../check/linearizability.js';
import type { Entry } from '../core/types.js';
import { encodeCommand, type KvApplyResult, type KvCommand } from './kv-machine.js';
import type { Prng } from './prng.js';
import type { SimNode } from './sim-node.js';
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
  done: boolean;
}

const KEYS = ['a', 'b', 'c'];
const CLIENTS = 3;
const OP_TIMEOUT = 600;
const enc = new TextEncoder();
const dec = new TextDecoder();

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
    if (x < 3) {
      const p: Pending = {
        client: c,
        seq: s,
        node: node.id,
        life: node.life,
        op: { kind: 'get', key, call: now },
        done: false,
      };
      this.pending.set(id, p);
      const why = node.call((raw) => raw.readIndex(enc.encode(id)));
      if (why !== undefined) {
        this.pending.delete(id);
        return this.next(c);
      }
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
      const p: Pending = { client: c, seq: s, node: node.id, life: node.life, op, done: false };
      this.pending.set(id, p);
      const why = node.call((raw) => raw.propose(encodeCommand(cmd)));
      if (why !== undefined) {
        // Refused at once: certainly not in the log, so it constrains nothing.
        this.pending.delete(id);
        return this.next(c);
      }
    }
    this.sim.q.after(OP_TIMEOUT, `timeout ${id}`, () => {
      const p = this.pending.get(id);
      if (p === undefined || p.done) return;
      this.pending.delete(id);
      // Unknown outcome: may take effect at any time after the call, or never.
      if (p.op.kind !== 'get') this.history.push({ clientId: c, ...p.op, return: Infinity });
      this.next(c);
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

  private complete(id: string, out: KvOperation['output'] | undefined): void {
    const p = this.pending.get(id);
    if (p === undefined || p.done) return;
    p.done = true;
    this.pending.delete(id);
    this.history.push({
      clientId: p.client,
      ...p.op,
      ...(out === undefined ? {} : { output: out }),
      return: this.sim.q.now,
    });
    this.next(p.client);
  }

  applied(n: SimNode, e: Entry, cmd: KvCommand, res: KvApplyResult): void {
    const id = `${cmd.c}:${cmd.s}`;
    if (cmd.c === 0 && this.finalState === 'pending' && !res.duplicate) {
      this.finalState = 'done';
      this.acked.push({ index: e.index, term: e.term });
      return;
    }
    const p = this.pending.get(id);
    if (p === undefined || p.node !== n.id || p.life !== n.life || res.duplicate) return;
    this.acked.push({ index: e.index, term: e.term });
    // Completed writes carry an output: the checker treats a write without one as unknown.
    this.complete(id, { ok: res.ok });
  }

  readReady(n: SimNode, ctx: Uint8Array, _index: number): void {
    const id = dec.decode(ctx);
    const p = this.pending.get(id);
    if (p === undefined || p.node !== n.id || p.life !== n.life) return;
    this.complete(id, { value: n.kv.get(p.op.key) });
  }

  /** After the final heal: one marker write through the leader, retried until it applies. */
  finalWrite(): void {
    this.finalState = 'pending';
    let s = 0;
    const attempt = (): void => {
      if (this.finalState !== 'pending') return;
      const l = this.sim.leader();
      s++;
      if (l !== undefined) l.call((raw) => raw.propose(encodeCommand({ c: 0, s, op: 'put', k: 'final', v: `${s}` })));
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
        const log = l.raw.raft.log;
        if (a.index >= log.firstIndex() && log.termOr0(a.index) !== a.term) {
          throw new HistoryError(`durability: acknowledged write ${a.index}:${a.term} missing from leader ${l.id}`);
        }
        if (a.index > log.lastIndex())
          throw new HistoryError(`durability: acknowledged write ${a.index} beyond leader log`);
      }
    }
  }

  checkHistory(): void {
    // Writes still pending when the run ends have an unknown outcome.
    for (const p of this.pending.values()) {
      if (!p.done && p.op.kind !== 'get') this.history.push({ clientId: p.client, ...p.op, return: Infinity });
    }
    this.pending.clear();
    const res = checkLinearizability(this.history, { maxStepsPerKey: 200_000 });
    if (res.verdict === 'violation') {
      throw new HistoryError(
        `linearizability: key ${res.key}: ${res.message}\n  ${res.counterexample.map(formatOperation).join('\n  ')}`,
      );
    }
  }
}
