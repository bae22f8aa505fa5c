import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine } from './state-machine.js';
import { decodeCommand, encodeCommand, type KvCommand } from './command.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from './protocol.js';
import { BinaryWriter } from '../codec/binary.js';

let index = 0;
function run(sm: KvStateMachine, c: KvCommand): ReturnType<KvStateMachine['apply']>[number] {
  index++;
  return sm.apply([{ index, term: 1, data: encodeCommand(c) }])[0]!;
}
const s = (clientId: number, seq: number, firstUnacked = seq) => ({ clientId, seq, firstUnacked });
const v = (x: string) => Buffer.from(x);

test('put, cas, delete with revisions; retried writes apply at most once', () => {
  const sm = new KvStateMachine();
  const r1 = run(sm, { op: 'put', key: 'a', value: v('1'), ...s(7, 1) });
  assert.equal(r1.ok, true);
  assert.equal(sm.get('a').revision, r1.revision);
  assert.equal(run(sm, { op: 'cas', key: 'a', expected: v('0'), value: v('2'), ...s(7, 2) }).ok, false);
  const ok = run(sm, { op: 'cas', key: 'a', expected: v('1'), value: v('2'), ...s(7, 3) });
  assert.equal(ok.ok, true);
  // A retry of seq 3 after another client changed the key returns the first outcome, applies nothing.
  run(sm, { op: 'put', key: 'a', value: v('9'), ...s(8, 1) });
  assert.deepEqual(run(sm, { op: 'cas', key: 'a', expected: v('1'), value: v('2'), ...s(7, 3) }), ok);
  assert.equal(Buffer.from(sm.get('a').value!).toString(), '9');
  assert.equal(run(sm, { op: 'cas', key: 'b', expected: null, value: v('new'), ...s(7, 4) }).ok, true);
  assert.equal(run(sm, { op: 'delete', key: 'b', ...s(7, 5) }).ok, true);
  assert.equal(sm.get('b').value, null);
  // Once the client acknowledged past seq 3, a (bogus) retry of it is refused, not re-applied.
  run(sm, { op: 'put', key: 'c', value: v('x'), ...s(7, 6, 6) });
  assert.equal(run(sm, { op: 'put', key: 'a', value: v('old'), ...s(7, 3, 3) }).revision, -1);
  assert.equal(Buffer.from(sm.get('a').value!).toString(), '9');
});

test('snapshot and restore keep values and sessions', () => {
  const sm = new KvStateMachine();
  run(sm, { op: 'put', key: 'k', value: v('v'), ...s(1, 1) });
  const r = run(sm, { op: 'put', key: 'k2', value: v('w'), ...s(2, 5) });
  const copy = new KvStateMachine();
  copy.restore(sm.snapshot());
  assert.deepEqual(copy.get('k'), sm.get('k'));
  assert.deepEqual(run(copy, { op: 'put', key: 'k2', value: v('w'), ...s(2, 5) }), r, 'dedupe survives a snapshot');
  assert.equal(copy.size(), 2);
});

test('commands and protocol frames round-trip', () => {
  const c: KvCommand = { op: 'cas', key: 'ключ', expected: null, value: v('z'), ...s(2 ** 40, 3, 2) };
  const d = decodeCommand(encodeCommand(c));
  assert.equal(d.op, 'cas');
  assert.equal(d.key, 'ключ');
  assert.equal(d.clientId, 2 ** 40);
  const req = {
    reqId: 5,
    op: 'cas' as const,
    clientId: 9,
    seq: 2,
    firstUnacked: 1,
    key: 'k',
    value: v('n'),
    expected: null,
  };
  const f = encodeRequest(req);
  assert.equal(f.readUInt32LE(0), f.length - 4);
  const back = decodeRequest(f.subarray(4));
  assert.equal(back.expected, null);
  assert.equal(Buffer.from(back.value!).toString(), 'n');
  const w = new BinaryWriter();
  encodeResponse(w, { reqId: 5, status: 'notLeader', leader: '127.0.0.1:9' });
  const out = w.finish();
  assert.deepEqual(decodeResponse(out.subarray(4)), { reqId: 5, status: 'notLeader', leader: '127.0.0.1:9' });
});
