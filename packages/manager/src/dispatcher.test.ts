/**
 * Sessions and heartbeats on a fake clock: the first session marks a node ready with its
 * address and description; heartbeats keep it ready; silence for period x 3 marks it down; a
 * step-down ends every session and stops the deadlines; a new leadership gives every node a
 * fresh (doubled) grace so nobody is marked down by the failover itself; a session the node
 * loses (its daemon killed, its link cut) marks it down after SESSION_LOSS_GRACE_MS unless it
 * reconnects, or said it was stopping (a restart). Also Raft membership
 * (join/leave) and the role manager (demoted managers leave Raft).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@shoal/common';
import type { SessionMessage } from '@shoal/api';
import type { StoredNode } from './context.js';
import type { CallerIdentity } from './identity.js';
import { DOWN_HEARTBEAT, DOWN_SESSION_LOST, SESSION_LOSS_GRACE_MS } from './dispatcher.js';
import { newCsr, rig, settle, type Rig } from './test-support.js';

const PERIOD = 5000;

async function joinWorker(r: Rig): Promise<CallerIdentity> {
  const { NodeID: id = '' } = await r.manager.ca.issueNodeCertificate(
    { CSR: await newCsr(), Token: r.tokens().worker },
    { addr: '' },
  );
  return { nodeId: id, role: 'worker', addr: '198.18.0.3' };
}

interface Open {
  messages: SessionMessage[];
  done: Promise<unknown>;
  cancel(): void;
}

function openSession(r: Rig, who: CallerIdentity): Open {
  const messages: SessionMessage[] = [];
  const ac = new AbortController();
  const done = r.manager.dispatcher
    .session({ Description: { Hostname: 'h-worker' } }, who, (m) => messages.push(m), ac.signal)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  return { messages, done, cancel: () => ac.abort() };
}

const state = (r: Rig, id: string | undefined): string | undefined =>
  r.store.get<StoredNode>('node', id ?? '')?.Status?.State;

test('dispatcher: a session marks the node ready; heartbeats keep it; silence marks it down', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  assert.equal(state(r, w.nodeId), 'unknown');
  const s = openSession(r, w);
  await settle();
  const node = r.store.get<StoredNode>('node', w.nodeId ?? '');
  assert.equal(node?.Status?.State, 'ready');
  assert.equal(node?.Status?.Addr, '198.18.0.3');
  assert.equal(node?.Description?.Hostname, 'h-worker');
  const first = s.messages[0];
  assert.ok(first, 'the session sends a first message');
  assert.equal(first.Node?.ID, w.nodeId);
  assert.equal(first.HeartbeatPeriod, PERIOD * 1e6);
  assert.deepEqual(
    first.Managers?.map((p) => p.Peer),
    [{ NodeID: 'mgr1', Addr: '198.18.0.2:2377' }],
  );
  const sid = first.SessionID ?? '';

  // Heartbeats every period for a minute: never down.
  for (let i = 0; i < 12; i++) {
    await r.clock.advance(PERIOD);
    assert.equal(r.manager.dispatcher.heartbeat({ SessionID: sid }, w).Period, PERIOD * 1e6);
  }
  assert.equal(state(r, w.nodeId), 'ready');
  assert.throws(
    () => r.manager.dispatcher.heartbeat({ SessionID: 'other' }, w),
    (e) => hasCode(e, 'MANAGER_SESSION_INVALID'),
  );

  // Silence: still ready just before period x 3, down after.
  await r.clock.advance(3 * PERIOD - 1);
  assert.equal(state(r, w.nodeId), 'ready');
  await r.clock.advance(2);
  assert.equal(state(r, w.nodeId), 'down');
  assert.equal(r.store.get<StoredNode>('node', w.nodeId ?? '')?.Status?.Message, 'heartbeat failure');
  assert.ok(hasCode(await s.done, 'MANAGER_SESSION_INVALID'), 'the session ended');
  assert.throws(
    () => r.manager.dispatcher.heartbeat({ SessionID: sid }, w),
    (e) => hasCode(e, 'MANAGER_SESSION_INVALID'),
  );

  // A new session brings it back.
  const s2 = openSession(r, w);
  await settle();
  assert.equal(state(r, w.nodeId), 'ready');
  s2.cancel();
  await s2.done;
});

test('dispatcher: a node that joins and never opens a session goes from unknown to down', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  await settle();
  assert.equal(state(r, w.nodeId), 'unknown');
  await r.clock.advance(3 * PERIOD - 1);
  assert.equal(state(r, w.nodeId), 'unknown');
  await r.clock.advance(2);
  assert.equal(state(r, w.nodeId), 'down');
});

test('dispatcher: the session carries node changes; a removed node loses its session', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  const s = openSession(r, w);
  await settle();
  const n = r.store.get<StoredNode>('node', w.nodeId ?? '');
  await r.manager.control.updateNode({ NodeID: n?.ID, NodeVersion: n?.Version, Spec: { ...n?.Spec, Role: 'manager' } });
  await settle();
  assert.equal(s.messages.at(-1)?.Node?.Spec?.Role, 'manager', 'the node learns its new role from its session');
  await r.manager.control.removeNode({ NodeID: w.nodeId, Force: true }).catch((e: unknown) => e);
  // A promoted node is a manager: demote it back, then remove.
  const n2 = r.store.get<StoredNode>('node', w.nodeId ?? '');
  await r.manager.control.updateNode({
    NodeID: n2?.ID,
    NodeVersion: n2?.Version,
    Spec: { ...n2?.Spec, Role: 'worker' },
  });
  await r.manager.control.removeNode({ NodeID: w.nodeId, Force: true });
  assert.ok(hasCode(await s.done, 'MANAGER_NODE_NOT_FOUND'));
  await assert.rejects(
    r.manager.dispatcher.session({}, w, () => undefined, new AbortController().signal),
    (e) => hasCode(e, 'MANAGER_NODE_NOT_FOUND'),
  );
});

test('dispatcher: step-down ends sessions and deadlines; a new leadership gives a fresh grace', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  const s = openSession(r, w);
  await settle();
  assert.equal(r.manager.leaderLoopsRunning, true);

  r.raft.setLeader('mgr2');
  assert.equal(r.manager.leaderLoopsRunning, false);
  assert.ok(hasCode(await s.done, 'MANAGER_NOT_LEADER'), 'sessions end on step-down');
  assert.throws(
    () => r.manager.dispatcher.heartbeat({}, w),
    (e) => hasCode(e, 'MANAGER_NOT_LEADER'),
  );
  await assert.rejects(
    r.manager.dispatcher.session({}, w, () => undefined, new AbortController().signal),
    (e) => hasCode(e, 'MANAGER_NOT_LEADER'),
  );
  // Long after any deadline: a follower marks nobody down.
  await r.clock.advance(10 * PERIOD);
  assert.equal(state(r, w.nodeId), 'ready');

  // Leadership comes back: the node has twice the grace to find this leader.
  r.raft.setLeader('mgr1');
  assert.equal(r.manager.leaderLoopsRunning, true);
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + PERIOD * 3 * 2);
  await r.clock.advance(PERIOD * 3 + 1);
  assert.equal(state(r, w.nodeId), 'ready', 'not down after the normal grace: failover grace applies');
  const s2 = openSession(r, w);
  await settle();
  const sid = s2.messages[0]?.SessionID ?? '';
  for (let i = 0; i < 6; i++) {
    await r.clock.advance(PERIOD);
    r.manager.dispatcher.heartbeat({ SessionID: sid }, w);
  }
  assert.equal(state(r, w.nodeId), 'ready');
  await r.clock.advance(PERIOD * 3 + 1);
  assert.equal(state(r, w.nodeId), 'down');
  await s2.done;
});

test('dispatcher: a session lost without a new one marks the node down after the grace, not period x 3', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  const s = openSession(r, w);
  await settle();
  assert.equal(state(r, w.nodeId), 'ready');
  assert.ok(SESSION_LOSS_GRACE_MS < PERIOD, 'the grace is shorter than one heartbeat period');
  // The worker's daemon dies (kill -9): its connection closes, the session's call is cancelled.
  s.cancel();
  await s.done;
  await settle();
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + SESSION_LOSS_GRACE_MS);
  await r.clock.advance(SESSION_LOSS_GRACE_MS - 1);
  assert.equal(state(r, w.nodeId), 'ready');
  await r.clock.advance(2);
  assert.equal(state(r, w.nodeId), 'down');
  assert.equal(r.store.get<StoredNode>('node', w.nodeId ?? '')?.Status?.Message, DOWN_SESSION_LOST);
  // It comes back: a new session makes it ready again, with the heartbeat deadline.
  const s2 = openSession(r, w);
  await settle();
  assert.equal(state(r, w.nodeId), 'ready');
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + PERIOD * 3);
  s2.cancel();
  await s2.done;
});

test('dispatcher: a node that reconnects within the grace stays ready; a replaced session shortens nothing', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  const s = openSession(r, w);
  await settle();
  s.cancel(); // a transient error: the worker reconnects at once
  await s.done;
  await settle();
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + SESSION_LOSS_GRACE_MS);
  await r.clock.advance(SESSION_LOSS_GRACE_MS / 2);
  const s2 = openSession(r, w);
  await settle();
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + PERIOD * 3);
  await r.clock.advance(SESSION_LOSS_GRACE_MS * 2);
  assert.equal(state(r, w.nodeId), 'ready', 'not down: it reconnected within the grace');
  // A new session from the same node replaces the old one (the old one ends on this side only).
  const s3 = openSession(r, w);
  await settle();
  assert.equal(await s2.done, undefined, 'the replaced session ends');
  s2.cancel();
  await settle();
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + PERIOD * 3);
  await r.clock.advance(SESSION_LOSS_GRACE_MS * 2);
  assert.equal(state(r, w.nodeId), 'ready');
  // Heartbeats on the current session keep it ready for a minute.
  const sid = s3.messages[0]?.SessionID ?? '';
  for (let i = 0; i < 12; i++) {
    await r.clock.advance(PERIOD);
    r.manager.dispatcher.heartbeat({ SessionID: sid }, w);
  }
  assert.equal(state(r, w.nodeId), 'ready');
  s3.cancel();
  await s3.done;
});

test('dispatcher: a session-loss deadline that fires late (a stalled leader) gives one more grace', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  const s = openSession(r, w);
  await settle();
  s.cancel();
  await s.done;
  await settle();
  r.clock.stall(SESSION_LOSS_GRACE_MS * 3);
  await r.clock.advance(0);
  assert.equal(state(r, w.nodeId), 'ready', 'the node had no chance to reconnect to a stalled leader');
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + SESSION_LOSS_GRACE_MS);
  await r.clock.advance(SESSION_LOSS_GRACE_MS + 1);
  assert.equal(state(r, w.nodeId), 'down');
  assert.equal(r.store.get<StoredNode>('node', w.nodeId ?? '')?.Status?.Message, DOWN_HEARTBEAT);
});

test('dispatcher: a node that said it is stopping keeps its heartbeat deadline when its session ends', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  const s = openSession(r, w);
  await settle();
  const sid = s.messages[0]?.SessionID ?? '';
  await r.clock.advance(PERIOD);
  r.manager.dispatcher.heartbeat({ SessionID: sid, Stopping: true }, w);
  s.cancel(); // an orderly daemon stop (a restart)
  await s.done;
  await settle();
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + PERIOD * 3);
  await r.clock.advance(PERIOD * 3 - 1);
  assert.equal(state(r, w.nodeId), 'ready', 'a restart within the heartbeat deadline keeps the node');
  await r.clock.advance(2);
  assert.equal(state(r, w.nodeId), 'down');
  assert.equal(r.store.get<StoredNode>('node', w.nodeId ?? '')?.Status?.Message, DOWN_HEARTBEAT);
});

test('dispatcher: sessions ended by a leader change mark nobody down; the new leader gives the failover grace', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  const s = openSession(r, w);
  await settle();
  r.raft.setLeader('mgr2');
  assert.ok(hasCode(await s.done, 'MANAGER_NOT_LEADER'));
  s.cancel(); // the worker leaves for the new leader
  await settle();
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), undefined, 'a follower keeps no deadline');
  await r.clock.advance(SESSION_LOSS_GRACE_MS * 10);
  assert.equal(state(r, w.nodeId), 'ready');
  // Leadership comes back here: no session for the node yet, and still no session-loss grace.
  r.raft.setLeader('mgr1');
  assert.equal(r.manager.dispatcher.deadlineOf(w.nodeId ?? ''), r.clock.now() + PERIOD * 3 * 2);
  await r.clock.advance(PERIOD * 3 * 2 - 1);
  assert.equal(state(r, w.nodeId), 'ready', 'the node has the failover grace to find the new leader');
  const s2 = openSession(r, w);
  await settle();
  await r.clock.advance(PERIOD);
  assert.equal(state(r, w.nodeId), 'ready');
  s2.cancel();
  await s2.done;
});

test('raft membership: a promoted manager joins with its manager certificate; bad joins are refused', async () => {
  const r = await rig();
  const w = await joinWorker(r);
  await assert.rejects(r.manager.raftMembership.join({ Addr: '198.18.0.3:2377' }, w), (e) =>
    hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'),
  );
  // Its certificate says manager but the cluster did not promote it.
  await assert.rejects(r.manager.raftMembership.join({ Addr: '198.18.0.3:2377' }, { ...w, role: 'manager' }), (e) =>
    hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'),
  );
  const n = r.store.get<StoredNode>('node', w.nodeId ?? '');
  await r.manager.control.updateNode({ NodeID: n?.ID, NodeVersion: n?.Version, Spec: { ...n?.Spec, Role: 'manager' } });
  const m = { ...w, role: 'manager' as const };
  await assert.rejects(r.manager.raftMembership.join({ Addr: 'nowhere' }, m), (e) =>
    hasCode(e, 'MANAGER_INVALID_REQUEST'),
  );
  const res = await r.manager.raftMembership.join({ Addr: '198.18.0.3:2377' }, m);
  assert.deepEqual(r.raft.added, [{ id: w.nodeId, addr: '198.18.0.3:2377' }]);
  assert.deepEqual(
    res.Members?.map((x) => [x.NodeID, x.Addr]),
    [
      ['mgr1', '198.18.0.2:2377'],
      [w.nodeId, '198.18.0.3:2377'],
    ],
  );
  const view = r.manager.control.getNode({ NodeID: w.nodeId }).Node;
  assert.equal(view?.ManagerStatus?.Addr, '198.18.0.3:2377');
  assert.equal(view?.ManagerStatus?.Reachability, 'reachable');
  // Joining again (a restart) changes nothing.
  await r.manager.raftMembership.join({ Addr: '198.18.0.3:2377' }, m);
  assert.equal(r.raft.added.length, 1);
  // A follower refuses (the daemon forwards to the leader).
  r.raft.setLeader('other');
  await assert.rejects(r.manager.raftMembership.join({ Addr: '198.18.0.3:2377' }, m), (e) =>
    hasCode(e, 'MANAGER_NOT_LEADER'),
  );
});

test('role manager: a demoted manager leaves raft; a demoted leader hands leadership over first', async () => {
  const r = await rig();
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const w = await joinWorker(r);
    const n = r.store.get<StoredNode>('node', w.nodeId ?? '');
    await r.manager.control.updateNode({
      NodeID: n?.ID,
      NodeVersion: n?.Version,
      Spec: { ...n?.Spec, Role: 'manager' },
    });
    await r.manager.raftMembership.join({ Addr: `198.18.0.${3 + i}:2377` }, { ...w, role: 'manager' });
    ids.push(w.nodeId ?? '');
  }
  const [m2 = '', m3 = ''] = ids;
  assert.deepEqual(r.raft.voters, ['mgr1', m2, m3]);
  const n2 = r.store.get<StoredNode>('node', m2);
  await r.manager.control.updateNode({ NodeID: m2, NodeVersion: n2?.Version, Spec: { ...n2?.Spec, Role: 'worker' } });
  await settle();
  await r.manager.roles.idle();
  await settle();
  assert.deepEqual(r.raft.removed, [m2], 'the demoted manager left raft');
  assert.deepEqual(r.raft.voters, ['mgr1', m3]);
  assert.equal(r.store.get<StoredNode>('node', m2)?.ManagerStatus, undefined);
  assert.equal(r.manager.control.getNode({ NodeID: m2 }).Node?.ManagerStatus, undefined);

  // Demoting the leader itself: leadership goes to the other manager first.
  const self = r.store.get<StoredNode>('node', 'mgr1');
  await r.manager.control.updateNode({
    NodeID: 'mgr1',
    NodeVersion: self?.Version,
    Spec: { ...self?.Spec, Role: 'worker' },
  });
  await settle();
  await r.manager.roles.idle();
  assert.deepEqual(r.raft.transfers, [m3]);
  assert.deepEqual(r.raft.removed, [m2], 'the leader does not remove itself');
});
