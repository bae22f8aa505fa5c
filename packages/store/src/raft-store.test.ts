/**
 * The store replicated by the real Raft driver: three managers in this process, each with its
 * own WAL on disk and a TCP transport on loopback. The leader is closed in the middle of a
 * stream of writes: a watch that moves to another manager from the last revision it saw gets
 * every change once; no acknowledged write is lost; a restarted manager catches up from its
 * snapshot and log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiskLogStore, RaftNode, RawNode, TcpTransport, decodeConfChange } from '@shoal/raft';
import {
  ClusterStore,
  ObjectExistsError,
  StoreStateMachine,
  StoreUnavailableError,
  VersionConflictError,
  type Change,
} from './index.js';

interface Manager {
  id: string;
  node: RaftNode;
  store: ClusterStore;
  sm: StoreStateMachine;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

async function startManager(id: string, dir: string, peers: Record<string, string>): Promise<Manager> {
  const logStore = await DiskLogStore.open(join(dir, id), { nodeId: id, segmentSize: 4 * 1024 * 1024 });
  const address = peers[id];
  assert.ok(address);
  const transport = new TcpTransport({
    listen: address,
    peers: Object.fromEntries(Object.entries(peers).filter(([p]) => p !== id)),
  });
  const sm = new StoreStateMachine();
  const node = new RaftNode({
    id,
    store: logStore,
    transport,
    stateMachine: sm,
    createRawNode: (c) => new RawNode(c),
    decodeConfChange,
    bootstrapVoters: Object.keys(peers).sort(),
    tickMs: 20,
    electionTicks: 10,
    snapshotEntries: 25,
    keepEntries: 5,
  });
  await node.start();
  return { id, node, sm, store: new ClusterStore({ log: node, stateMachine: sm }) };
}

async function leaderOf(managers: readonly Manager[]): Promise<Manager> {
  for (let i = 0; i < 500; i++) {
    const l = managers.find((m) => m.node.leaderInfo().isLeader);
    if (l !== undefined) return l;
    await sleep(20);
  }
  throw new Error('no leader elected');
}

/** Creates a service through whichever manager leads, retrying while leadership moves. */
async function createThroughLeader(live: () => readonly Manager[], i: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const leader = await leaderOf(live());
    try {
      await leader.store.update((tx) => {
        if (tx.byName('service', `svc-${i}`) === undefined)
          tx.create('service', { ID: `id-${i}`, Spec: { Name: `svc-${i}` } });
      });
      return;
    } catch (err) {
      // A retried create whose first attempt did commit (its answer was lost with the leader)
      // finds its own ID: that is success, not a duplicate.
      if (attempt > 0 && err instanceof ObjectExistsError && err.field === 'ID' && err.value === `id-${i}`) return;
      if (!(err instanceof StoreUnavailableError)) throw err;
      await sleep(20);
    }
  }
  throw new Error(`write ${i} never committed`);
}

test('store on raft: leader loss loses no acknowledged write; watches resume without gaps or repeats', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-store-raft-'));
  const ids = ['m1', 'm2', 'm3'];
  const peers: Record<string, string> = {};
  for (const id of ids) peers[id] = `127.0.0.1:${await freePort()}`;
  let managers: Manager[] = [];
  try {
    managers = await Promise.all(ids.map((id) => startManager(id, dir, peers)));
    const first = await leaderOf(managers);
    for (let i = 0; i < 40; i++) await createThroughLeader(() => managers, i);

    // Optimistic concurrency through Raft.
    const s0 = first.store.get('service', 'id-0');
    assert.ok(s0);
    await first.store.update((tx) => tx.update('service', { ...s0, Spec: { Name: 'svc-0', Labels: { v: '1' } } }));
    await assert.rejects(
      first.store.update((tx) => tx.update('service', { ...s0, Spec: { Name: 'svc-0', Labels: { v: 'stale' } } })),
      VersionConflictError,
    );

    // A watcher on a follower reads part of the stream, then its manager changes.
    const follower = managers.find((m) => m !== first);
    assert.ok(follower);
    await follower.store.linearizable();
    const seen: Change[] = [];
    const w1 = follower.store.watch({ fromRevision: 0, kinds: ['service'] });
    for (;;) {
      const r = await w1.next();
      assert.equal(r.done, false);
      seen.push(r.value);
      if (seen.length === 20) break;
    }
    await w1.return?.();

    // Close the leader while writes continue through whichever manager leads.
    const writes = (async () => {
      for (let i = 40; i < 80; i++) await createThroughLeader(() => managers, i);
    })();
    await sleep(50);
    managers = managers.filter((m) => m !== first);
    first.store.close();
    await first.node.close();
    await writes;
    const second = await leaderOf(managers);
    assert.notEqual(second.id, first.id);

    // Resume the watch on the other surviving manager from the last revision seen.
    const other = managers.find((m) => m !== follower);
    assert.ok(other);
    await other.store.linearizable();
    const last = seen[seen.length - 1]?.revision ?? 0;
    const w2 = other.store.watch({ fromRevision: last, kinds: ['service'] });
    while (seen.filter((c) => c.action === 'create').length < 80) {
      const r = await w2.next();
      assert.equal(r.done, false);
      seen.push(r.value);
    }
    await w2.return?.();
    const revisions = seen.map((c) => c.revision);
    assert.deepEqual(
      revisions,
      [...revisions].sort((a, b) => a - b),
      'changes arrive in revision order',
    );
    assert.equal(new Set(revisions).size, revisions.length, 'no change is delivered twice');
    const created = seen.filter((c) => c.action === 'create').map((c) => c.object.Spec?.Name);
    assert.deepEqual(new Set(created), new Set(Array.from({ length: 80 }, (_, i) => `svc-${i}`)), 'no create missed');

    // Every acknowledged write is on every surviving manager.
    for (const m of managers) {
      await m.store.linearizable();
      assert.equal(m.store.list('service').length, 80, `${m.id} holds all 80 services`);
    }

    // The closed manager restarts from its snapshot and log and catches up.
    const back = await startManager(first.id, dir, peers);
    managers.push(back);
    for (let i = 80; i < 90; i++) await createThroughLeader(() => managers, i);
    for (let t = 0; t < 500 && back.store.list('service').length < 90; t++) await sleep(20);
    assert.equal(back.store.list('service').length, 90);
    const leaderNow = await leaderOf(managers);
    await back.store.linearizable();
    assert.deepEqual(back.sm.state.snapshot(), leaderNow.sm.state.snapshot(), 'same objects, versions and revision');
  } finally {
    for (const m of managers) {
      m.store.close();
      await m.node.close();
    }
    await rm(dir, { recursive: true, force: true });
  }
});
