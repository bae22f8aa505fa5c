import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine, SESSION_EXPIRED_REVISION } from './state-machine.js';
import { decodeCommand, encodeCommand, type KvCommand } from './command.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from './protocol.js';
import { BinaryWriter } from '../codec/binary.js';
import { RaftDecodeError } from '../errors.js';

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
  const r = run(sm, { op: 'put', key: 'k2', value: v('w'), ...s(2, 5, 1) });
  const copy = new KvStateMachine();
  copy.restore(sm.snapshot());
  assert.deepEqual(copy.get('k'), sm.get('k'));
  assert.deepEqual(run(copy, { op: 'put', key: 'k2', value: v('w'), ...s(2, 5, 1) }), r, 'dedupe survives a snapshot');
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

/** A deterministic mixed workload: puts, overwrites, deletes and cas over 300 keys, 8 clients. */
function workload(n: number, seed: number, tsStep = 1): KvCommand[] {
  let x = seed;
  const rnd = (m: number): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return Math.floor(x / 65536) % m;
  };
  const seqs = new Map<number, number>();
  const out: KvCommand[] = [];
  for (let i = 0; i < n; i++) {
    const clientId = 1 + rnd(8);
    const seq = (seqs.get(clientId) ?? 0) + 1;
    seqs.set(clientId, seq);
    const sess = { clientId, seq, firstUnacked: seq, ts: 1000 + i * tsStep };
    const key = `k${rnd(300)}`;
    const op = rnd(10);
    if (op < 6) out.push({ op: 'put', key, value: v(`${i}-${'x'.repeat(rnd(50))}`), ...sess });
    else if (op < 8) out.push({ op: 'delete', key, ...sess });
    else out.push({ op: 'cas', key, expected: null, value: v(`c${i}`), ...sess });
  }
  return out;
}

function applyAll(sm: KvStateMachine, cmds: readonly KvCommand[], from = 1): void {
  sm.apply(cmds.map((c, k) => ({ index: from + k, term: 1, data: encodeCommand(c) })));
}

test('a snapshot taken while writes continue holds exactly the applied prefix at its index', async () => {
  const cmds = workload(3000, 7);
  const sm = new KvStateMachine({ chunkBytes: 256 });
  applyAll(sm, cmds.slice(0, 1500));
  const atIndex = new KvStateMachine();
  applyAll(atIndex, cmds.slice(0, 1500));
  const src = sm.beginSnapshot();
  const chunks: Uint8Array[] = [];
  let k = 1500;
  // Interleave: pull a chunk, apply a few more writes (overwrites, deletes of frozen keys).
  for (const c of src.chunks()) {
    chunks.push(Buffer.from(c));
    if (k < 3000) {
      applyAll(sm, cmds.slice(k, k + 40), k + 1);
      k += 40;
    }
  }
  assert.ok(chunks.length > 10, `the state was streamed in many chunks (${chunks.length})`);
  applyAll(sm, cmds.slice(k), k + 1);
  src.close();
  const restored = new KvStateMachine();
  await restored.restoreChunks(chunks);
  assert.equal(restored.digest(), atIndex.digest(), 'snapshot = state at its index, none of the later writes');
  const all = new KvStateMachine();
  applyAll(all, cmds);
  assert.equal(sm.digest(), all.digest(), 'the live machine kept every write made during the snapshot');
  // And the folded machine snapshots again correctly.
  const again = new KvStateMachine();
  again.restore(sm.snapshot());
  assert.equal(again.digest(), all.digest());
});

test('sessions expire by the log clock, identically on every replica', () => {
  const ttl = 5000;
  const cmds = workload(2000, 11, 10); // ts advances 10 ms per entry: 20 s of log
  // Client 99 writes once at the start, then comes back after its session expired.
  const early: KvCommand = { op: 'put', key: 'z', value: v('1'), clientId: 99, seq: 1, firstUnacked: 1, ts: 1000 };
  const late: KvCommand = {
    op: 'put',
    key: 'z',
    value: v('2'),
    clientId: 99,
    seq: 2,
    firstUnacked: 2,
    ts: 1000 + 1999 * 10,
  };
  const log = [early, ...cmds.slice(0, 1998), late, { ...late, key: 'y', clientId: 100, seq: 1, firstUnacked: 1 }];
  const a = new KvStateMachine({ sessionTtlMs: ttl });
  const b = new KvStateMachine({ sessionTtlMs: ttl });
  const results: ReturnType<KvStateMachine['apply']>[] = [[], []];
  for (let i = 0; i < log.length; i++) {
    const e = { index: i + 1, term: 1, data: encodeCommand(log[i]!) };
    results[0]!.push(...a.apply([e]));
    // Replica b restarts from a's snapshot half-way, as a follower catching up would.
    if (i === 1000) b.restore(a.snapshot());
    else if (i > 1000) results[1]!.push(...b.apply([e]));
    if (i > 1000) assert.deepEqual(b.sessionIds(), a.sessionIds(), `same sessions after entry ${i + 1}`);
  }
  assert.equal(a.digest(), b.digest());
  const lateResult = results[0]![log.length - 2]!;
  assert.equal(lateResult.revision, SESSION_EXPIRED_REVISION, 'a write from an expired session is refused');
  assert.equal(Buffer.from(a.get('z').value!).toString(), '1', 'and not applied');
  assert.equal(results[0]![log.length - 1]!.ok, true, 'a new session (firstUnacked 1) is accepted');
  assert.deepEqual(a.sessionIds(), [1, 2, 3, 4, 5, 6, 7, 8, 100], 'the idle session was dropped');
  // Without expiry the idle client would still be remembered.
  const forever = new KvStateMachine({ sessionTtlMs: 1e12 });
  applyAll(forever, log);
  assert.ok(forever.sessionIds().includes(99));
});

test('a malformed logged command decodes to RaftDecodeError and applies as a no-op result', () => {
  const bad = Buffer.from(encodeCommand({ op: 'put', key: 'k', value: v('x'), ...s(3, 1) }));
  bad[0] = 99; // unknown op
  assert.throws(() => decodeCommand(bad), RaftDecodeError);
  assert.throws(() => decodeCommand(bad.subarray(0, 5)), RaftDecodeError);
  const sm = new KvStateMachine();
  const [r] = sm.apply([{ index: 1, term: 1, data: bad }]);
  assert.equal(r!.ok, false);
  assert.equal(sm.size(), 0);
});
