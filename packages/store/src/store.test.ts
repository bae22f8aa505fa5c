/**
 * The store's rules on one manager (LocalLog applies at once): versions, names, atomic
 * transactions, indexes, watches from a revision, snapshots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClusterStore,
  LocalLog,
  ObjectExistsError,
  ObjectNotFoundError,
  StoreStateMachine,
  VersionConflictError,
  WatchCompactedError,
  InvalidTransactionError,
  type Change,
  type StoredObject,
} from './index.js';

function newStore(opts: { historyLimit?: number } = {}): { store: ClusterStore; sm: StoreStateMachine } {
  const sm = new StoreStateMachine(opts);
  let t = Date.parse('2026-01-01T00:00:00Z');
  const store = new ClusterStore({ log: new LocalLog(sm), stateMachine: sm, now: () => new Date((t += 1000)) });
  return { store, sm };
}

const svc = (id: string, name: string, extra: Record<string, unknown> = {}) => ({
  ID: id,
  Spec: { Name: name },
  ...extra,
});

async function take(it: AsyncIterator<Change>, n: number): Promise<Change[]> {
  const out: Change[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done === true) break;
    out.push(r.value);
  }
  return out;
}

test('create sets Version, CreatedAt and UpdatedAt; update bumps the version and keeps CreatedAt', async () => {
  const { store } = newStore();
  const c = await store.update((tx) => tx.create('service', svc('s1', 'web')));
  assert.equal(c.revision, 1);
  const s1 = store.get('service', 's1');
  assert.ok(s1);
  assert.equal(s1.Version.Index, 1);
  assert.equal(s1.CreatedAt, s1.UpdatedAt);
  await store.update((tx) => tx.update('service', { ...s1, Spec: { Name: 'web', Labels: { a: 'b' } } }));
  const s2 = store.get('service', 's1');
  assert.ok(s2);
  assert.equal(s2.Version.Index, 2);
  assert.equal(s2.CreatedAt, s1.CreatedAt);
  assert.notEqual(s2.UpdatedAt, s1.UpdatedAt);
  assert.deepEqual(s2.Spec?.Labels, { a: 'b' });
  assert.ok(Object.isFrozen(s2) && Object.isFrozen(s2.Spec), 'stored objects are frozen');
});

test('an update carrying a stale version is refused and changes nothing', async () => {
  const { store } = newStore();
  await store.update((tx) => tx.create('service', svc('s1', 'web')));
  const read = store.get('service', 's1');
  assert.ok(read);
  await store.update((tx) => tx.update('service', { ...read, Spec: { Name: 'web', Labels: { by: 'first' } } }));
  await assert.rejects(
    store.update((tx) => tx.update('service', { ...read, Spec: { Name: 'web', Labels: { by: 'second' } } })),
    (err: unknown) => err instanceof VersionConflictError && err.kind === 'failed-precondition' && err.actual === 2,
  );
  assert.deepEqual(store.get('service', 's1')?.Spec?.Labels, { by: 'first' });
  assert.equal(store.revision, 2);
  await assert.rejects(store.commit([{ op: 'remove', kind: 'service', id: 's1', version: 1 }]), VersionConflictError);
  assert.ok(store.get('service', 's1'));
});

test('names are unique per kind; a rename frees the old name; IDs are unique', async () => {
  const { store } = newStore();
  await store.update((tx) => tx.create('service', svc('s1', 'web')));
  await assert.rejects(
    store.update((tx) => tx.create('service', svc('s2', 'web'))),
    (err: unknown) =>
      err instanceof ObjectExistsError && err.kind === 'already-exists' && /name 'web'/.test(err.message),
  );
  await assert.rejects(
    store.update((tx) => tx.create('service', svc('s1', 'other'))),
    ObjectExistsError,
  );
  // Another kind may use the same name.
  await store.update((tx) => tx.create('network', svc('n1', 'web')));
  const s1 = store.get('service', 's1');
  assert.ok(s1);
  await store.update((tx) => tx.update('service', { ...s1, Spec: { Name: 'api' } }));
  assert.equal(store.byName('service', 'web'), undefined);
  assert.equal(store.byName('service', 'api')?.ID, 's1');
  await store.update((tx) => tx.create('service', svc('s2', 'web')));
  assert.equal(store.byName('service', 'web')?.ID, 's2');
  // Nodes may share a hostname-like name.
  await store.update((tx) => {
    tx.create('node', svc('a', 'h1'));
    tx.create('node', svc('b', 'h1'));
  });
  assert.equal(store.list('node').length, 2);
});

test('a transaction applies all or nothing', async () => {
  const { store } = newStore();
  await store.update((tx) => tx.create('service', svc('s1', 'web')));
  const before = store.revision;
  await assert.rejects(
    store.update((tx) => {
      tx.create('service', svc('s2', 'api'));
      tx.create('task', { ID: 't1', ServiceID: 's2', NodeID: 'n1', DesiredState: 'running' });
      tx.remove('secret', 'missing');
    }),
    (err: unknown) => err instanceof ObjectNotFoundError && err.kind === 'not-found',
  );
  assert.equal(store.revision, before);
  assert.equal(store.get('service', 's2'), undefined);
  assert.equal(store.get('task', 't1'), undefined);
  assert.equal(store.byName('service', 'api'), undefined);
  // Names taken earlier in the same transaction count.
  await assert.rejects(
    store.update((tx) => {
      tx.create('service', svc('s3', 'dup'));
      tx.create('service', svc('s4', 'dup'));
    }),
    ObjectExistsError,
  );
  assert.equal(store.byName('service', 'dup'), undefined);
  await assert.rejects(store.commit([]), InvalidTransactionError);
  await assert.rejects(
    store.update((tx) => {
      tx.create('service', svc('s5', 'x'));
      tx.remove('service', 's5');
    }),
    /appears twice/,
  );
});

test('indexes follow updates and removes', async () => {
  const { store } = newStore();
  await store.update((tx) => {
    for (let i = 0; i < 6; i++) {
      tx.create('task', { ID: `t${i}`, ServiceID: i < 4 ? 'sa' : 'sb', NodeID: `n${i % 2}`, DesiredState: 'running' });
    }
  });
  assert.equal(store.find('task', 'service', 'sa').length, 4);
  assert.equal(store.find('task', 'node', 'n0').length, 3);
  const t0 = store.get<StoredObject & { NodeID: string }>('task', 't0');
  assert.ok(t0);
  await store.update((tx) => tx.update('task', { ...t0, NodeID: 'n1', DesiredState: 'shutdown' } as StoredObject));
  assert.deepEqual(
    store
      .find('task', 'node', 'n0')
      .map((t) => t.ID)
      .sort(),
    ['t2', 't4'],
  );
  assert.deepEqual(
    store.find('task', 'desiredState', 'shutdown').map((t) => t.ID),
    ['t0'],
  );
  await store.update((tx) => tx.remove('task', 't1'));
  assert.deepEqual(
    store
      .find('task', 'node', 'n1')
      .map((t) => t.ID)
      .sort(),
    ['t0', 't3', 't5'],
  );
});

test('watch from a revision gets every later change once, in order, then live ones', async () => {
  const { store } = newStore();
  for (let i = 1; i <= 5; i++) await store.update((tx) => tx.create('service', svc(`s${i}`, `n${i}`)));
  const it = store.watch({ fromRevision: 2 });
  const first = await take(it, 3);
  assert.deepEqual(
    first.map((c) => c.revision),
    [3, 4, 5],
  );
  await store.update((tx) => tx.create('network', svc('net', 'net')));
  const s1 = store.get('service', 's1');
  assert.ok(s1);
  await store.update((tx) => tx.remove('service', 's1', s1.Version.Index));
  const live = await take(it, 2);
  assert.deepEqual(
    live.map((c) => [c.revision, c.kind, c.action, c.object.ID]),
    [
      [6, 'network', 'create', 'net'],
      [7, 'service', 'remove', 's1'],
    ],
  );
  await it.return?.();
  // A kind filter.
  const onlyNets = store.watch({ fromRevision: 0, kinds: ['network'] });
  assert.deepEqual(
    (await take(onlyNets, 1)).map((c) => c.object.ID),
    ['net'],
  );
  await onlyNets.return?.();
});

test('a watch from a revision older than the kept history fails clearly', async () => {
  const { store } = newStore({ historyLimit: 3 });
  for (let i = 1; i <= 6; i++) await store.update((tx) => tx.create('secret', svc(`x${i}`, `x${i}`)));
  assert.throws(() => store.watch({ fromRevision: 1 }), WatchCompactedError);
  const it = store.watch({ fromRevision: 3 });
  assert.deepEqual(
    (await take(it, 3)).map((c) => c.revision),
    [4, 5, 6],
  );
  await it.return?.();
});

test('a cancelled watch ends', async () => {
  const { store } = newStore();
  const ac = new AbortController();
  const it = store.watch({ signal: ac.signal });
  const next = it.next();
  ac.abort();
  assert.equal((await next).done, true);
});

test('snapshot and restore give the same objects, versions, indexes and revision', async () => {
  const { store, sm } = newStore();
  await store.update((tx) => {
    tx.create('service', svc('s1', 'web'));
    tx.create('task', { ID: 't1', ServiceID: 's1', NodeID: 'n1', DesiredState: 'running' });
  });
  await store.update((tx) => tx.create('cluster', svc('c', 'default')));
  const copy = new StoreStateMachine();
  copy.restore(sm.snapshot());
  assert.equal(copy.state.revision, sm.state.revision);
  assert.deepEqual(copy.state.snapshot(), sm.state.snapshot());
  assert.equal([...copy.state.table('task').find('service', 's1')].length, 1);
  assert.equal(copy.state.table('service').idByName('web'), 's1');
  // Watches on the restored copy may start at its revision, not before.
  assert.throws(() => copy.hub.watch({ fromRevision: 0 }), WatchCompactedError);
  const it = copy.hub.watch({ fromRevision: copy.state.revision });
  await it.return?.();
});

test('bytes (certificates, keys, secret data) survive transactions and snapshots as bytes', async () => {
  const { store, sm } = newStore();
  const data = Buffer.from([0, 1, 2, 250, 255]);
  const plain = new Uint8Array([9, 8, 7]);
  const spec0 = { Name: 'x', Data: data, Other: plain };
  await store.update((tx) => tx.create('secret', { ID: 'x', Spec: spec0 }));
  const spec = store.get<StoredObject & { Spec: { Data: Uint8Array; Other: Uint8Array } }>('secret', 'x')?.Spec;
  assert.ok(spec?.Data instanceof Uint8Array && spec.Other instanceof Uint8Array);
  assert.deepEqual([...spec.Data], [...data]);
  assert.deepEqual([...spec.Other], [...plain]);
  const copy = new StoreStateMachine();
  copy.restore(sm.snapshot());
  const restored = copy.state.table('secret').get('x') as StoredObject & { Spec: { Data: Uint8Array } };
  assert.ok(restored.Spec.Data instanceof Uint8Array);
  assert.deepEqual([...restored.Spec.Data], [...data]);
  // A label map that merely looks like a Buffer's JSON stays what it is only if it is not one:
  await store.update((tx) => tx.create('config', { ID: 'c', Spec: { Name: 'c', Labels: { type: 'Buffer' } } }));
  assert.deepEqual(store.get('config', 'c')?.Spec?.Labels, { type: 'Buffer' });
});
