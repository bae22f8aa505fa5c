/**
 * The store as a streaming state machine: a snapshot is a frozen view encoded lazily in chunks of
 * about 1 MiB (never one whole-state string), taken while writes go on; restores parse chunk by
 * chunk, replace the state only at the end, and still read version 1 snapshots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStore, LocalLog, StoreStateMachine, StoreDecodeError } from './index.js';
import { encodeJson } from './codec.js';

function newStore(): { store: ClusterStore; sm: StoreStateMachine } {
  const sm = new StoreStateMachine();
  let t = Date.parse('2026-01-01T00:00:00Z');
  const store = new ClusterStore({ log: new LocalLog(sm), stateMachine: sm, now: () => new Date((t += 1000)) });
  return { store, sm };
}

/** A config object with bytes (the store's Spec type names only Name and Labels). */
function config(id: string, data: Uint8Array): { ID: string; Spec: { Name: string } } {
  const spec = { Name: id, Data: data };
  return { ID: id, Spec: spec };
}

const blob = (i: number): string => `${i}-`.padEnd(64 * 1024, 'x');

test('a snapshot taken while writes go on restores to the state at its start, in many chunks', async () => {
  const { store, sm } = newStore();
  for (let i = 0; i < 64; i++) {
    await store.update((tx) => tx.create('config', config(`c${i}`, Buffer.from(blob(i)))));
  }
  const before = sm.state.snapshot();
  const src = sm.beginSnapshot();
  const it = src.chunks()[Symbol.iterator]();
  const chunks: Uint8Array[] = [it.next().value as Uint8Array];
  // writes between the chunks: an update, a remove and a create
  const c0 = store.get('config', 'c0')!;
  await store.update((tx) => tx.update('config', { ...c0, Spec: config('c0', Buffer.from('changed')).Spec }));
  await store.update((tx) => tx.remove('config', 'c1'));
  await store.update((tx) => tx.create('config', { ID: 'new', Spec: { Name: 'new' } }));
  for (let r = it.next(); r.done !== true; r = it.next()) chunks.push(r.value);
  src.close();
  assert.ok(chunks.length >= 5, `${chunks.length} chunks for 4 MiB+ of objects`);
  assert.ok(
    chunks.every((c) => c.byteLength < 2 * 1024 * 1024),
    'no chunk holds the whole state',
  );

  const copy = new StoreStateMachine();
  await copy.restoreChunks(chunks);
  assert.equal(copy.state.revision, before.revision);
  assert.deepEqual(copy.state.snapshot(), before);
  assert.equal(copy.state.table('config').idByName('c1'), 'c1');
  // the live store kept every write
  assert.equal(store.get('config', 'c1'), undefined);
  assert.ok(store.get('config', 'new'));
  // the whole-buffer form is the same chunks concatenated
  const whole = new StoreStateMachine();
  whole.restore(Buffer.concat(chunks));
  assert.deepEqual(whole.state.snapshot(), before);
});

test('a restore that fails part way (a bad line or a failing stream) changes nothing', async () => {
  const { store, sm } = newStore();
  await store.update((tx) => tx.create('config', { ID: 'a', Spec: { Name: 'a' } }));
  const good = [...sm.beginSnapshot().chunks()];
  const target = new StoreStateMachine();
  await target.restoreChunks(good);
  const kept = target.state.snapshot();
  await assert.rejects(
    target.restoreChunks([good[0]!, Buffer.from('{"k":"config","o":\n')]),
    (e: unknown) => e instanceof StoreDecodeError,
  );
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield good[0]!;
    await Promise.resolve();
    throw new Error('snapshot file CRC mismatch');
  }
  await assert.rejects(target.restoreChunks(failing()), /CRC mismatch/);
  assert.deepEqual(target.state.snapshot(), kept);
});

test('a version 1 snapshot (one JSON document) still restores, whole or in pieces', async () => {
  const v1 = encodeJson({
    v: 1,
    revision: 7,
    objects: { config: [{ ID: 'x', Version: { Index: 7 }, Spec: { Name: 'x', Data: Buffer.from([1, 2, 3]) } }] },
  });
  const sm = new StoreStateMachine();
  await sm.restoreChunks([v1.subarray(0, 10), v1.subarray(10)]);
  assert.equal(sm.state.revision, 7);
  const data = (sm.state.table('config').get('x') as unknown as { Spec: { Data: Uint8Array } }).Spec.Data;
  assert.deepEqual([...data], [1, 2, 3]);
});
