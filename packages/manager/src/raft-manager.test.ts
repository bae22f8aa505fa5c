/**
 * Three managers on the real Raft driver (WAL on disk, TCP on loopback) in one process, each
 * with its store and Manager on one fake clock for heartbeats. The leader-only loops run on
 * exactly the leader and move with leadership (a transfer, then the leader closed); a worker
 * that keeps its session is never marked down by either failover, and is marked down by the
 * new leader once it really stops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RootCA, newClusterId } from '@shoal/ca';
import { hasCode } from '@shoal/common';
import { DiskLogStore, RaftNode, RawNode, TcpTransport, decodeConfChange } from '@shoal/raft';
import { ClusterStore, StoreStateMachine } from '@shoal/store';
import type { Node } from '@shoal/api';
import type { StoredCluster, StoredNode } from './context.js';
import type { CallerIdentity } from './identity.js';
import { Manager } from './manager.js';
import { FakeClock, newCsr, settle } from './test-support.js';

const PERIOD = 5000;

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

async function startManager(
  id: string,
  dir: string,
  peers: Record<string, string>,
  root: RootCA,
  clock: FakeClock,
): Promise<M> {
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
  });
  await node.start();
  const store = new ClusterStore({ log: node, stateMachine: sm });
  const manager = new Manager({ nodeId: id, store, raft: node, rootCA: root, clock, heartbeatPeriodMs: PERIOD });
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

/** The one manager whose leader loops run (and that Raft says leads), once there is exactly one. */
function loopsOn(ms: readonly M[]): M | undefined {
  const running = ms.filter((m) => m.manager.leaderLoopsRunning);
  const [only] = running;
  return running.length === 1 && only?.node.leaderInfo().isLeader === true ? only : undefined;
}

async function stateOn(m: M, id: string): Promise<string | undefined> {
  await m.store.linearizable();
  return m.store.get<StoredNode>('node', id)?.Status?.State;
}

test('leader loops follow raft leadership; failovers mark no live node down', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-manager-raft-'));
  const ids = ['m1', 'm2', 'm3'];
  const peers: Record<string, string> = {};
  for (const id of ids) peers[id] = `127.0.0.1:${await freePort()}`;
  const root = await RootCA.create();
  const clock = new FakeClock();
  let ms: M[] = [];
  const sessions: { ac: AbortController; done: Promise<unknown> }[] = [];
  try {
    ms = await Promise.all(ids.map((id) => startManager(id, dir, peers, root, clock)));
    const first = await until('a leader', () => ms.find((m) => m.node.leaderInfo().isLeader));
    await first.manager.bootstrapCluster({ clusterId: newClusterId(), advertiseAddr: peers[first.id] ?? '' });
    await first.store.update((tx) => {
      for (const m of ms) {
        if (m === first) continue;
        const n: Node & { ID: string } = {
          ID: m.id,
          Spec: { Name: '', Labels: {}, Role: 'manager', Availability: 'active' },
          Status: { State: 'ready', Message: '', Addr: '127.0.0.1' },
          ManagerStatus: { Addr: peers[m.id] ?? '' },
        };
        tx.create('node', { ...n });
      }
    });
    for (const m of ms) m.manager.start();
    assert.equal(await until('loops on the leader', () => loopsOn(ms)), first);

    // A worker joins and keeps a session with heartbeats on the leader.
    const { NodeID: wid = '' } = await first.manager.ca.issueNodeCertificate(
      { CSR: await newCsr(), Token: first.store.list<StoredCluster>('cluster')[0]?.JoinTokens?.Worker ?? '' },
      { addr: '' },
    );
    const worker: CallerIdentity = { nodeId: wid, role: 'worker', addr: '127.0.0.9' };
    const open = (m: M): (() => string) => {
      const ac = new AbortController();
      let sid = '';
      const done = m.manager.dispatcher
        .session({}, worker, (msg) => (sid = msg.SessionID ?? sid), ac.signal)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      sessions.push({ ac, done });
      return () => sid;
    };
    let sid = open(first);
    await until('the worker ready', () =>
      first.store.get<StoredNode>('node', wid)?.Status?.State === 'ready' ? true : undefined,
    );
    await until('a session id', () => (sid() !== '' ? true : undefined));
    for (let i = 0; i < 3; i++) {
      await clock.advance(PERIOD);
      first.manager.dispatcher.heartbeat({ SessionID: sid() }, worker);
    }

    // 1. Leadership moves by transfer: the loops move with it; the old session ends.
    const target = ms.find((m) => m !== first);
    assert.ok(target);
    await first.node.transferLeadership(target.id);
    assert.equal(await until('loops on the new leader', () => loopsOn(ms)), target);
    assert.equal(first.manager.leaderLoopsRunning, false);
    assert.ok(hasCode(await sessions[0]?.done, 'MANAGER_NOT_LEADER'), 'the old leader ended the session');
    assert.equal(target.manager.dispatcher.deadlineOf(wid), clock.now() + PERIOD * 3 * 2, 'a fresh failover grace');
    // The node takes a while to find the new leader: longer than the normal grace.
    await clock.advance(PERIOD * 4);
    assert.equal(await stateOn(target, wid), 'ready', 'not marked down by the transfer');
    sid = open(target);
    await until('a session id', () => (sid() !== '' ? true : undefined));
    for (let i = 0; i < 3; i++) {
      await clock.advance(PERIOD);
      target.manager.dispatcher.heartbeat({ SessionID: sid() }, worker);
    }

    // 2. The leader is closed: a survivor takes over the loops; the worker is not marked down.
    target.manager.stop();
    target.store.close();
    await target.node.close();
    ms = ms.filter((m) => m !== target);
    const third = await until('loops on a survivor', () => loopsOn(ms));
    await settle();
    await clock.advance(PERIOD * 4);
    assert.equal(await stateOn(third, wid), 'ready', 'not marked down by the failover');
    const closedView = third.manager.control.getNode({ NodeID: target.id }).Node?.ManagerStatus;
    assert.equal(closedView?.Leader, false);

    // 3. The worker really stops: the new leader marks it down.
    await clock.advance(PERIOD * 3 * 2 + 1);
    const down = await until('the worker down', () =>
      third.store.get<StoredNode>('node', wid)?.Status?.State === 'down' ? true : undefined,
    );
    assert.equal(down, true);
    for (const m of ms) assert.equal(await stateOn(m, wid), 'down');
  } finally {
    for (const s of sessions) s.ac.abort();
    for (const m of ms) {
      m.manager.stop();
      m.store.close();
      await m.node.close();
    }
    await rm(dir, { recursive: true, force: true });
  }
});
