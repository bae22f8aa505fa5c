/**
 * The orchestrator on three managers over the real Raft driver (WAL on disk, TCP on loopback),
 * one fake clock for all (the stores stamp CreatedAt/UpdatedAt with it). The leader is closed
 * in the middle of a scale to 30, with a restart history and a delayed restart pending: the new
 * leader completes the scale with no slot doubled, keeps counting the restart attempts (they
 * are in the store), and releases the delayed restart. The scheduler's and the workers' parts
 * are played by writing NodeID/assigned and task statuses to the leader's store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { newClusterId } from '@shoal/ca';
import { SECOND_NS, type ServiceSpec } from '@shoal/api';
import { DiskLogStore, RaftNode, RawNode, TcpTransport, decodeConfChange } from '@shoal/raft';
import { ClusterStore, StoreStateMachine } from '@shoal/store';
import { Manager } from '../manager.js';
import type { StoredService, StoredTask } from '../services/objects.js';
import { FakeClock } from '../test-support.js';
import { activeOf, assign, report, root, slotCounts, tasksOf, workerNode } from './test-rig.js';

interface M {
  id: string;
  node: RaftNode;
  store: ClusterStore;
  manager: Manager;
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

async function startManager(id: string, dir: string, peers: Record<string, string>, clock: FakeClock): Promise<M> {
  const logStore = await DiskLogStore.open(join(dir, id), { nodeId: id, segmentSize: 4 * 1024 * 1024 });
  const address = peers[id] ?? '';
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
  });
  await node.start();
  const store = new ClusterStore({ log: node, stateMachine: sm, now: () => new Date(clock.now()) });
  // Heartbeats are not under test: a period of a day keeps the fake workers from going down.
  const manager = new Manager({
    nodeId: id,
    store,
    raft: node,
    rootCA: await root(),
    clock,
    heartbeatPeriodMs: 86_400_000,
  });
  return { id, node, store, manager };
}

async function until<T>(what: string, fn: () => T | undefined): Promise<T> {
  for (let i = 0; i < 750; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function leaderOf(ms: readonly M[]): M | undefined {
  const running = ms.filter((m) => m.manager.leaderLoopsRunning);
  const [only] = running;
  return running.length === 1 && only?.node.leaderInfo().isLeader === true ? only : undefined;
}

function spec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return { Name: name, TaskTemplate: { ContainerSpec: { Image: 'busybox:1' } }, ...over };
}

const OPTS = { timeout: 60_000 };

test(
  'leader closed mid-scale and mid-restart: the new leader completes the scale, no slot doubled, attempts kept, delayed restart released',
  OPTS,
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-orch-raft-'));
    const ids = ['m1', 'm2', 'm3'];
    const peers: Record<string, string> = {};
    for (const id of ids) peers[id] = `127.0.0.1:${await freePort()}`;
    const clock = new FakeClock();
    let ms: M[] = [];
    try {
      ms = await Promise.all(ids.map((id) => startManager(id, dir, peers, clock)));
      const first = await until('a leader', () => ms.find((m) => m.node.leaderInfo().isLeader));
      await first.manager.bootstrapCluster({ clusterId: newClusterId(), advertiseAddr: peers[first.id] ?? '' });
      await first.store.update((tx) => {
        for (const m of ms) {
          if (m !== first)
            tx.create('node', workerNode(m.id, { Spec: { Role: 'manager', Availability: 'active', Labels: {} } }));
        }
        tx.create('node', workerNode('w1'));
        tx.create('node', workerNode('w2'));
      });
      for (const m of ms) {
        // The test places and runs tasks itself: no allocator or scheduler on any leader.
        m.manager.allocator.start = (): void => undefined;
        m.manager.scheduler.start = (): void => undefined;
        m.manager.start();
      }
      assert.equal(await until('loops on the leader', () => leaderOf(ms)), first);
      const api = first.manager.servicesApi;

      /** Places and runs the active task of `slot`, then fails it; waits for the orchestrator's answer. */
      const failSlot = async (m: M, svc: string, slot: number, expectReplacement: boolean): Promise<void> => {
        const cur = await until(`an active task in ${svc}.${slot}`, () =>
          activeOf(m.store, svc).find(
            (t) => t.Slot === slot && t.DesiredState !== 'ready' && t.Status?.State === 'new',
          ),
        );
        await assign(m.store, cur.ID, 'w1');
        await report(m.store, cur.ID, 'running');
        await report(m.store, cur.ID, 'failed', { Err: 'task: non-zero exit (1)' });
        await until(`the orchestrator to shut ${cur.ID} down`, () =>
          m.store.get<StoredTask>('task', cur.ID)?.DesiredState === 'shutdown' ? true : undefined,
        );
        const replaced = activeOf(m.store, svc).some((t) => t.Slot === slot);
        assert.equal(replaced, expectReplacement, `slot ${slot} replaced: ${expectReplacement}`);
      };

      // A service with a bounded restart policy: two attempts used on the first leader.
      const flaky = await api.createService({
        Spec: spec('flaky', {
          Mode: { Replicated: { Replicas: 2 } },
          TaskTemplate: {
            ContainerSpec: { Image: 'busybox:1' },
            RestartPolicy: { Condition: 'on-failure', Delay: 0, MaxAttempts: 3 },
          },
        }),
      });
      const flakyId = flaky.ID ?? '';
      await failSlot(first, flakyId, 1, true);
      await failSlot(first, flakyId, 1, true);

      // A delayed restart pending: the replacement is held back (desired ready) for 10 s.
      const delayed = await api.createService({
        Spec: spec('delayed', {
          Mode: { Replicated: { Replicas: 1 } },
          TaskTemplate: {
            ContainerSpec: { Image: 'busybox:1' },
            RestartPolicy: { Condition: 'any', Delay: 10 * SECOND_NS },
          },
        }),
      });
      const delayedId = delayed.ID ?? '';
      await failSlot(first, delayedId, 1, true);
      const held = activeOf(first.store, delayedId)[0];
      assert.equal(held?.DesiredState, 'ready');

      // A scale from 1 to 30, with the leader closed right behind it.
      const steady = await api.createService({ Spec: spec('steady', { Mode: { Replicated: { Replicas: 1 } } }) });
      const steadyId = steady.ID ?? '';
      await until('steady.1', () => (activeOf(first.store, steadyId).length === 1 ? true : undefined));
      const cur = first.store.get<StoredService>('service', steadyId);
      await api.updateService({
        ServiceID: steadyId,
        ServiceVersion: { Index: cur?.Version.Index ?? 0 },
        Spec: { ...cur?.Spec, Mode: { Replicated: { Replicas: 30 } } },
      });
      // The first leader's pass commits the 29 new tasks; it is closed at once, before the other
      // managers may have learned that entry is committed (so not applied it yet): a new leader
      // passing over its store before applying everything committed would create them again.
      await until('the scale committed on the first leader', () =>
        activeOf(first.store, steadyId).length === 30 ? true : undefined,
      );
      first.manager.stop();
      first.store.close();
      await first.node.close();
      ms = ms.filter((m) => m !== first);

      const next = await until('loops on a survivor', () => leaderOf(ms));
      const counts = await until('30 slots of steady', () => {
        const c = slotCounts(next.store, steadyId);
        return c.size === 30 ? c : undefined;
      });
      for (const [slot, n] of counts) assert.equal(n, 1, `slot ${slot} runs once`);
      assert.deepEqual(
        [...counts.keys()].sort((a, b) => a - b),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      await sleep(200);
      assert.equal(activeOf(next.store, steadyId).length, 30, 'still 30 once settled');
      assert.equal(tasksOf(next.store, steadyId).length, 30, 'no task was ever created twice for a slot');

      // Attempts survive: one more restart is allowed (3rd), then the policy gives the slot up.
      await failSlot(next, flakyId, 1, true);
      await failSlot(next, flakyId, 1, false);
      assert.equal(tasksOf(next.store, flakyId).filter((t) => t.Slot === 1).length, 4, 'the first run and 3 restarts');

      // The delayed restart is released by the new leader once the delay has passed.
      assert.equal(next.store.get<StoredTask>('task', held?.ID ?? '')?.DesiredState, 'ready');
      await clock.advance(10_000);
      await until('the delayed restart released', () =>
        next.store.get<StoredTask>('task', held?.ID ?? '')?.DesiredState === 'running' ? true : undefined,
      );
    } finally {
      for (const m of ms) {
        m.manager.stop();
        m.store.close();
        await m.node.close();
      }
      await rm(dir, { recursive: true, force: true });
    }
  },
);
