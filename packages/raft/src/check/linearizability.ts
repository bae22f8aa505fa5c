/**
 * Linearizability checker for the replicated KV model: Wing & Gong's search with Lowe's
 * memoisation (a configuration = set of linearized operations + model state is explored once),
 * split per key (P-compositionality: a KV history is linearizable iff each key's is).
 *
 * Operations whose outcome is unknown (timed out, client or server crashed) have `output`
 * undefined and `return` = Infinity: they may take effect at any point after their call, or never.
 * Unknown reads constrain nothing and are dropped.
 */

export type KvOpKind = 'put' | 'get' | 'cas' | 'delete';

export interface KvOperation {
  /** Who issued it (for printing only). */
  readonly clientId: number | string;
  readonly kind: KvOpKind;
  readonly key: string;
  /** put, cas: the value written. */
  readonly value?: string;
  /** cas: the value required for the swap (null = key absent). */
  readonly expected?: string | null;
  /** Observed outcome, undefined if unknown. get: `value` (null = absent); cas: `ok`. */
  readonly output?: { readonly value?: string | null; readonly ok?: boolean };
  /** Invocation and completion times (any monotonic clock); `return` is Infinity if unknown. */
  readonly call: number;
  readonly return: number;
}

export type LinearizabilityResult =
  | { readonly verdict: 'ok'; readonly keys: number; readonly operations: number }
  | {
      readonly verdict: 'violation';
      readonly key: string;
      /** A minimal sub-history of that key that is still not linearizable, in call order. */
      readonly counterexample: KvOperation[];
      readonly message: string;
    }
  | { readonly verdict: 'unknown'; readonly key: string; readonly reason: string };

export interface CheckOptions {
  /** Search steps per key before giving up with 'unknown' (default 5,000,000). */
  readonly maxStepsPerKey?: number;
}

type State = string | null;

/** The sequential KV register: returns the next state, or undefined if the output is impossible. */
function step(state: State, op: KvOperation): State | undefined {
  switch (op.kind) {
    case 'put':
      return op.value ?? null;
    case 'delete':
      return null;
    case 'get':
      if (op.output === undefined) return state;
      return (op.output.value ?? null) === state ? state : undefined;
    case 'cas': {
      const matches = (op.expected ?? null) === state;
      if (op.output === undefined) return matches ? (op.value ?? null) : state;
      if (op.output.ok === true) return matches ? (op.value ?? null) : undefined;
      return matches ? undefined : state;
    }
  }
}

interface Node {
  readonly op: number;
  readonly isCall: boolean;
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

type SearchResult = { ok: true } | { ok: false; capped: boolean };

function searchKey(ops: readonly KvOperation[], maxSteps: number): SearchResult {
  const n = ops.length;
  if (n === 0) return { ok: true };
  const events: { t: number; call: boolean; op: number }[] = [];
  for (let i = 0; i < n; i++) {
    events.push({ t: ops[i]!.call, call: true, op: i });
    events.push({ t: ops[i]!.return, call: false, op: i });
  }
  // Ties: calls first, so operations touching at one instant count as concurrent.
  events.sort((a, b) => a.t - b.t || (a.call === b.call ? 0 : a.call ? -1 : 1));
  const head: Node = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  const calls = new Array<Node | undefined>(n);
  let tail = head;
  for (const ev of events) {
    const node: Node = { op: ev.op, isCall: ev.call, match: undefined, prev: tail, next: undefined };
    tail.next = node;
    tail = node;
    if (ev.call) calls[ev.op] = node;
    else calls[ev.op]!.match = node;
  }
  const lift = (e: Node): void => {
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const m = e.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (e: Node): void => {
    const m = e.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };
  const words = new Uint32Array((n + 31) >>> 5);
  const seen = new Set<string>();
  const stack: { node: Node; state: State }[] = [];
  let state: State = null;
  let entry = head.next;
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { ok: false, capped: true };
    if (entry === undefined) return { ok: false, capped: false };
    if (entry.isCall) {
      const next = step(state, ops[entry.op]!);
      let advanced = false;
      if (next !== undefined) {
        words[entry.op >>> 5]! ^= 1 << (entry.op & 31);
        const key = `${words.join(',')}|${next === null ? '\u0000' : next}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ node: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          advanced = true;
        } else {
          words[entry.op >>> 5]! ^= 1 << (entry.op & 31);
        }
      }
      if (!advanced) entry = entry.next;
    } else {
      // A return whose call is not linearized yet: backtrack.
      const top = stack.pop();
      if (top === undefined) return { ok: false, capped: false };
      state = top.state;
      words[top.node.op >>> 5]! ^= 1 << (top.node.op & 31);
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { ok: true };
}

/** Greedily drops operations while the rest stays non-linearizable (small histories only). */
function minimize(ops: KvOperation[], maxSteps: number): KvOperation[] {
  if (ops.length > 80) return ops;
  let cur = ops;
  for (let i = cur.length - 1; i >= 0; i--) {
    const without = cur.filter((_, k) => k !== i);
    const r = searchKey(without, maxSteps);
    if (!r.ok && !r.capped) cur = without;
  }
  return cur;
}

function show(v: string | null | undefined): string {
  return v === null || v === undefined ? '∅' : JSON.stringify(v);
}

/** One line per operation, for counterexample output. */
export function formatOperation(op: KvOperation): string {
  const ret = op.return === Infinity ? '∞' : String(op.return);
  let what: string;
  switch (op.kind) {
    case 'put':
      what = `put(${op.key}, ${show(op.value)})`;
      break;
    case 'delete':
      what = `delete(${op.key})`;
      break;
    case 'get':
      what = `get(${op.key}) -> ${op.output === undefined ? '?' : show(op.output.value)}`;
      break;
    case 'cas':
      what = `cas(${op.key}, ${show(op.expected)} => ${show(op.value)}) -> ${op.output === undefined ? '?' : String(op.output.ok)}`;
      break;
  }
  return `[${op.call}, ${ret}] client ${op.clientId}: ${what}`;
}

/** Checks a whole KV history. */
export function checkLinearizability(history: readonly KvOperation[], opts: CheckOptions = {}): LinearizabilityResult {
  const maxSteps = opts.maxStepsPerKey ?? 5_000_000;
  const byKey = new Map<string, KvOperation[]>();
  let count = 0;
  for (const op of history) {
    if (op.kind === 'get' && op.output === undefined) continue;
    const o = op.output === undefined && op.return !== Infinity ? { ...op, return: Infinity } : op;
    let l = byKey.get(op.key);
    if (l === undefined) byKey.set(op.key, (l = []));
    l.push(o);
    count++;
  }
  for (const [key, ops] of byKey) {
    const r = searchKey(ops, maxSteps);
    if (r.ok) continue;
    if (r.capped) return { verdict: 'unknown', key, reason: `search exceeded ${maxSteps} steps` };
    const counterexample = minimize(ops, maxSteps).sort((a, b) => a.call - b.call);
    const message =
      `history of key ${JSON.stringify(key)} is not linearizable; minimal counterexample:\n` +
      counterexample.map((o) => `  ${formatOperation(o)}`).join('\n');
    return { verdict: 'violation', key, counterexample, message };
  }
  return { verdict: 'ok', keys: byKey.size, operations: count };
}
