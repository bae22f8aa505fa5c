import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizability, type KvOperation } from './linearizability.js';

let t0 = 0;
function op(p: Partial<KvOperation> & Pick<KvOperation, 'kind' | 'call' | 'return'>): KvOperation {
  return { clientId: p.clientId ?? 'c' + t0++, key: p.key ?? 'k', ...p };
}
const put = (value: string, call: number, ret: number, key = 'k'): KvOperation =>
  op({ kind: 'put', value, call, return: ret, key, output: {} });
const get = (value: string | null, call: number, ret: number, key = 'k'): KvOperation =>
  op({ kind: 'get', call, return: ret, key, output: { value } });
const cas = (expected: string | null, value: string, ok: boolean, call: number, ret: number): KvOperation =>
  op({ kind: 'cas', expected, value, call, return: ret, output: { ok } });
const del = (call: number, ret: number): KvOperation => op({ kind: 'delete', call, return: ret, output: {} });

test('sequential and concurrent good histories are linearizable', () => {
  assert.equal(checkLinearizability([put('1', 0, 1), get('1', 2, 3), del(4, 5), get(null, 6, 7)]).verdict, 'ok');
  // A read overlapping a write may see either value; two overlapping reads may even disagree in order.
  assert.equal(checkLinearizability([put('1', 0, 1), put('2', 2, 10), get('2', 3, 4), get('1', 2, 3)]).verdict, 'ok');
  assert.equal(
    checkLinearizability([cas(null, 'a', true, 0, 5), cas(null, 'b', false, 1, 6), get('a', 7, 8)]).verdict,
    'ok',
  );
  const r = checkLinearizability([put('x', 0, 1, 'a'), put('y', 0, 1, 'b'), get('x', 2, 3, 'a'), get('y', 2, 3, 'b')]);
  assert.deepEqual(r, { verdict: 'ok', keys: 2, operations: 4 });
});

test('a stale read is a violation with a minimal counterexample', () => {
  const h = [put('1', 0, 1), put('2', 2, 3), get('2', 4, 5), put('3', 4, 20), get('1', 6, 7)];
  const r = checkLinearizability(h);
  assert.equal(r.verdict, 'violation');
  if (r.verdict !== 'violation') return;
  assert.equal(r.key, 'k');
  assert.ok(r.counterexample.length <= 3, r.message);
  assert.ok(
    r.counterexample.some((o) => o.kind === 'get' && o.output?.value === '1'),
    r.message,
  );
  assert.match(r.message, /get\(k\) -> "1"/);
});

test('a lost acknowledged write is a violation; an unknown write may or may not apply', () => {
  assert.equal(checkLinearizability([put('1', 0, 1), get(null, 2, 3)]).verdict, 'violation');
  const maybe = op({ kind: 'put', value: '9', call: 0, return: Infinity });
  assert.equal(checkLinearizability([maybe, get(null, 2, 3)]).verdict, 'ok');
  assert.equal(checkLinearizability([maybe, get('9', 2, 3), get(null, 4, 5)]).verdict, 'violation');
  // An unknown write may take effect long after its call, even after later operations.
  assert.equal(checkLinearizability([maybe, get(null, 2, 3), get('9', 4, 5)]).verdict, 'ok');
});

test('cas anomalies are caught', () => {
  // Two sequential CAS from the same expected value cannot both succeed.
  assert.equal(
    checkLinearizability([put('0', 0, 1), cas('0', 'a', true, 2, 3), cas('0', 'b', true, 4, 5)]).verdict,
    'violation',
  );
  // A failed CAS must have seen a different value.
  assert.equal(checkLinearizability([put('0', 0, 1), cas('0', 'a', false, 2, 3)]).verdict, 'violation');
  // A successful CAS on an absent key after a delete.
  assert.equal(
    checkLinearizability([put('0', 0, 1), del(2, 3), cas(null, 'n', true, 4, 5), get('n', 6, 7)]).verdict,
    'ok',
  );
  // Concurrent CAS racing from the same value: exactly one may win.
  assert.equal(
    checkLinearizability([put('0', 0, 1), cas('0', 'a', true, 2, 6), cas('0', 'b', true, 3, 7)]).verdict,
    'violation',
  );
  assert.equal(
    checkLinearizability([put('0', 0, 1), cas('0', 'a', true, 2, 6), cas('0', 'b', false, 3, 7), get('a', 8, 9)])
      .verdict,
    'ok',
  );
});

function randomHistory(seed: number, n: number, keys: number): KvOperation[] {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  // Linearization points are increasing; each op's interval is stretched around its point.
  const state = new Map<string, string | null>();
  const out: KvOperation[] = [];
  for (let i = 0; i < n; i++) {
    const point = i * 10 + 5;
    const call = point - Math.floor(rnd() * 30);
    const ret = point + Math.floor(rnd() * 30);
    const key = `k${Math.floor(rnd() * keys)}`;
    const cur = state.get(key) ?? null;
    const r = rnd();
    if (r < 0.35) {
      state.set(key, `v${i}`);
      out.push(put(`v${i}`, call, ret, key));
    } else if (r < 0.7) out.push(get(cur, call, ret, key));
    else if (r < 0.9) {
      const expected = rnd() < 0.6 ? cur : `v${i - 1}`;
      const ok = expected === cur;
      if (ok) state.set(key, `c${i}`);
      out.push({ ...cas(expected, `c${i}`, ok, call, ret), key });
    } else {
      state.set(key, null);
      out.push({ ...del(call, ret), key });
    }
  }
  return out;
}

test('random linearizable histories pass; one corrupted read fails', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const h = randomHistory(seed, 120, 3);
    const r = checkLinearizability(h);
    assert.equal(r.verdict, 'ok', `seed ${seed}`);
    const i = h.findIndex((o) => o.kind === 'get');
    const bad = h.map((o, k) => (k === i ? { ...o, output: { value: 'never-written' } } : o));
    assert.equal(checkLinearizability(bad).verdict, 'violation', `seed ${seed}`);
  }
});

test('a search cap yields unknown instead of running forever', () => {
  // Many fully concurrent writes and reads: the search space explodes.
  const h: KvOperation[] = [];
  for (let i = 0; i < 40; i++) h.push(put(`v${i}`, 0, 1000));
  for (let i = 0; i < 40; i++) h.push(get(`v${(i * 7) % 40}`, 0, 1000));
  h.push(get('nope', 2000, 2001));
  const r = checkLinearizability(h, { maxStepsPerKey: 5000 });
  assert.equal(r.verdict, 'unknown');
});
