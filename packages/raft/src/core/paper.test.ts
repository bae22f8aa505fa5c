/**
 * Paper-section style tests of the core (Raft paper §5, thesis §3-§6, §9): election,
 * replication, commit, ReadIndex, leader transfer, learners, joint consensus, snapshots and
 * flow control, on the in-memory test network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidConfChangeError, InvalidRaftConfigError, ProposalDroppedError } from '../errors.js';
import { decodeConfChange, encodeConfChange } from './conf-codec.js';
import { MemoryStorage } from './memory-storage.js';
import { newMessage } from './messages.js';
import { majorityCommitted, jointVote } from './quorum.js';
import { RawNode } from './raw-node.js';
import { Network, bytes, testConfig } from './test-harness.js';
import type { ConfChange } from './types.js';

const E = new Uint8Array(0);
const cc = (changes: ConfChange['changes'], transition: ConfChange['transition'] = 'auto'): ConfChange => ({
  changes,
  transition,
  context: E,
});

function electByTicks(net: Network, max = 200): string {
  for (let k = 0; k < max; k++) {
    net.tickAll(1);
    net.stabilize();
    const l = net.leader();
    if (l !== undefined) return l;
  }
  throw new Error('no leader');
}

test('election §5.2: a follower times out, wins a majority and becomes the only leader of its term', () => {
  const net = new Network(['a', 'b', 'c', 'd', 'e']);
  const l = electByTicks(net);
  const term = net.get(l).node.raft.term;
  for (const h of net.nodes.values()) {
    assert.equal(h.node.raft.term, term);
    assert.equal(h.node.raft.lead, l);
    if (h.id !== l) assert.equal(h.node.raft.state, 'follower');
  }
});

test('election §5.4.1: a candidate with a shorter log is refused', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.isolated.add('c');
  net.get('a').node.propose(bytes('x'));
  net.stabilize();
  net.isolated.clear();
  const c = net.get('c').node.raft;
  c.step(newMessage('timeoutNow', 'c', { from: 'a', term: c.term })); // force c to campaign (no pre-vote)
  net.stabilize();
  assert.notEqual(c.state, 'leader');
});

test('election §9.6: pre-vote does not bump terms; check-quorum makes an isolated leader step down', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  const term = net.get('a').node.raft.term;
  net.isolated.add('a');
  net.tick('a', 25);
  net.stabilize();
  assert.equal(net.get('a').node.raft.state, 'follower', 'leader without quorum stepped down');
  assert.equal(net.get('a').node.raft.term, term);
  const l = electByTicks(net);
  assert.notEqual(l, 'a');
});

test('replication §5.3: a lagging follower with a conflicting log is repaired to the leader log', () => {
  const net = new Network(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
  net.elect('a');
  // a appends entries only it has, then loses leadership.
  net.isolated.add('a');
  for (const d of ['a1', 'a2', 'a3']) net.get('a').node.propose(bytes(d));
  net.stabilize();
  net.elect('b');
  for (const d of ['b1', 'b2']) net.get('b').node.propose(bytes(d));
  net.stabilize();
  net.isolated.clear();
  net.tickAll(1);
  net.stabilize();
  for (const id of ['a', 'b', 'c']) assert.deepEqual(net.appliedData(id), ['b1', 'b2'], id);
  assert.equal(net.get('a').node.raft.log.lastIndex(), net.get('b').node.raft.log.lastIndex());
});

test('commit §5.3: an entry commits once a majority stored it, and followers learn commit from the leader', () => {
  const net = new Network(['a', 'b', 'c', 'd', 'e']);
  net.elect('a');
  net.isolated.add('d');
  net.isolated.add('e');
  net.get('a').node.propose(bytes('m'));
  net.stabilize();
  assert.deepEqual(net.appliedData('a'), ['m'], 'three of five suffice');
  assert.deepEqual(net.appliedData('b'), ['m']);
  net.isolated.add('c');
  net.get('a').node.propose(bytes('n'));
  net.stabilize();
  assert.deepEqual(net.appliedData('a'), ['m'], 'two of five do not');
});

test('ReadIndex §6.4: reads on leader and followers resolve at the commit index after a heartbeat round', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.get('a').node.propose(bytes('x'));
  net.stabilize();
  net.get('a').node.readIndex(bytes('r'));
  net.stabilize();
  assert.equal(net.get('a').readStates[0]?.index, net.get('a').node.raft.log.committed);
  assert.ok(net.sent.some((m) => m.type === 'heartbeat' && new TextDecoder().decode(m.context) === 'r'));
  net.get('c').node.readIndex(bytes('s'));
  net.stabilize();
  assert.equal(net.get('c').readStates[0]?.index, net.get('a').node.raft.log.committed);
  const solo = new Network(['z']);
  solo.elect('z');
  solo.get('z').node.readIndex(bytes('t'));
  solo.stabilize();
  assert.equal(solo.get('z').readStates.length, 1, 'single voter answers at once');
});

test('ReadIndex: a read before the new leader commits in its term waits for that commit', () => {
  const net = new Network(['a', 'b', 'c']);
  const a = net.get('a').node;
  a.campaign();
  for (let k = 0; k < 6 && a.raft.state !== 'leader'; k++) {
    net.processReady('a');
    net.deliverAll();
    net.processReady('b');
    net.processReady('c');
    net.deliverAll();
  }
  assert.equal(a.raft.state, 'leader');
  assert.equal(a.raft.committedEntryInCurrentTerm(), false);
  a.readIndex(bytes('early'));
  assert.equal(a.raft.pendingReadIndexMessages.length, 1);
  net.stabilize();
  assert.equal(net.get('a').readStates.length, 1);
  assert.ok(net.get('a').readStates[0]!.index >= 2);
});

test('leader transfer §3.10: catches the target up, sends timeoutNow, the target wins', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.isolated.add('c');
  net.get('a').node.propose(bytes('x'));
  net.stabilize();
  net.isolated.clear();
  net.get('a').node.transferLeader('c');
  assert.throws(() => net.get('a').node.propose(bytes('y')), ProposalDroppedError, 'proposals stop during transfer');
  net.stabilize();
  assert.equal(net.leader(), 'c');
  assert.ok(net.sent.some((m) => m.type === 'timeoutNow' && m.to === 'c'));
});

test('leader transfer: aborted after an election timeout when the target does not answer', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.isolated.add('c');
  net.get('a').node.transferLeader('c');
  assert.equal(net.get('a').node.raft.leadTransferee, 'c');
  net.tick('a', 10);
  net.stabilize();
  assert.equal(net.get('a').node.raft.leadTransferee, '');
  assert.equal(net.leader(), 'a');
  net.get('a').node.propose(bytes('ok'));
});

test('learners: receive the log, never count for commit or campaign; promotion makes them voters', () => {
  const net = new Network(['a', 'b'], {}, ['l']);
  net.elect('a');
  net.isolated.add('b');
  net.get('a').node.propose(bytes('x'));
  net.stabilize();
  assert.deepEqual(net.appliedData('a'), [], 'a learner ack is not a quorum');
  assert.equal(net.get('l').node.raft.log.lastIndex(), net.get('a').node.raft.log.lastIndex(), 'learner got the log');
  net.tick('l', 100);
  assert.equal(net.get('l').node.raft.state, 'follower', 'learners never campaign');
  net.isolated.clear();
  net.stabilize();
  net.get('a').node.proposeConfChange(cc([{ type: 'addNode', nodeId: 'l' }]));
  net.stabilize();
  assert.deepEqual(net.get('a').node.status().confState.voters, ['a', 'b', 'l']);
  assert.equal(net.get('l').node.raft.promotable(), true);
});

test('joint consensus §4.3: both majorities needed while joint; explicit leave; demotion to learner via learnersNext', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.addNode('d');
  net.addNode('e');
  net.get('a').node.proposeConfChange(
    cc(
      [
        { type: 'addNode', nodeId: 'd' },
        { type: 'addNode', nodeId: 'e' },
        { type: 'addLearner', nodeId: 'c' },
      ],
      'explicit',
    ),
  );
  net.stabilize();
  const cs = net.get('a').node.status().confState;
  assert.deepEqual(cs.votersOutgoing, ['a', 'b', 'c']);
  assert.deepEqual(cs.voters, ['a', 'b', 'd', 'e']);
  assert.deepEqual(cs.learnersNext, ['c']);
  // Old majority (a,b,c) without the new one (a,b,d,e needs 3): d and e cut off -> no commit.
  net.isolated.add('d');
  net.isolated.add('e');
  const before = net.appliedData('a').length;
  net.get('a').node.propose(bytes('j'));
  net.stabilize();
  assert.equal(net.appliedData('a').length, before, 'joint config needs the new majority too');
  net.isolated.clear();
  net.tickAll(1);
  net.stabilize();
  assert.deepEqual(net.appliedData('a').slice(-1), ['j']);
  assert.throws(
    () => net.get('a').node.proposeConfChange(cc([{ type: 'addNode', nodeId: 'f' }])),
    ProposalDroppedError,
  );
  net.get('a').node.proposeConfChange(cc([]));
  net.stabilize();
  const after = net.get('a').node.status().confState;
  assert.deepEqual(after.votersOutgoing, []);
  assert.deepEqual(after.learners, ['c']);
  assert.deepEqual(after.voters, ['a', 'b', 'd', 'e']);
});

test('joint consensus: auto-leave proposes the leave entry once entering is applied', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.addNode('d');
  net.get('a').node.proposeConfChange(
    cc([
      { type: 'addNode', nodeId: 'd' },
      { type: 'removeNode', nodeId: 'c' },
    ]),
  );
  net.stabilize();
  const cs = net.get('a').node.status().confState;
  assert.deepEqual(cs.votersOutgoing, []);
  assert.deepEqual(cs.voters, ['a', 'b', 'd']);
  assert.equal(
    net.get('a').applied.filter((e) => e.type === 'confChange').length,
    2,
    'enter and leave entries both committed',
  );
});

test('membership: invalid changes are refused with typed errors', () => {
  const net = new Network(['a']);
  net.elect('a');
  const a = net.get('a').node;
  a.proposeConfChange(cc([{ type: 'removeNode', nodeId: 'a' }]));
  assert.throws(() => {
    net.stabilize();
  }, InvalidConfChangeError);
  assert.throws(() => a.applyConfChange(cc([])), InvalidConfChangeError, 'leaving a non-joint config');
  assert.throws(
    () => new RawNode(testConfig('x', new MemoryStorage(), { electionTicks: 1, heartbeatTicks: 1 })),
    InvalidRaftConfigError,
  );
});

test('snapshots §7: a follower behind the compaction point is restored from a snapshot and catches up', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.isolated.add('c');
  for (let k = 0; k < 8; k++) net.get('a').node.propose(bytes(`s${k}`));
  net.stabilize();
  const a = net.get('a');
  const idx = a.node.raft.log.applied;
  a.storage.createSnapshot(idx, a.node.raft.confState(), bytes('image'));
  a.storage.compact(idx);
  net.isolated.clear();
  net.tickAll(1);
  net.stabilize();
  const c = net.get('c');
  const snapReady = c.readys.find((r) => r.snapshot !== undefined);
  assert.ok(snapReady !== undefined, 'c received a snapshot in a Ready');
  assert.equal(snapReady.snapshot!.metadata.index, idx);
  assert.deepEqual(new TextDecoder().decode(snapReady.snapshot!.data), 'image');
  assert.equal(c.storage.firstIndex(), idx + 1);
  net.reportSnapshotAll();
  a.node.propose(bytes('after'));
  net.tickAll(1);
  net.stabilize();
  assert.deepEqual(net.appliedData('c'), ['after']);
});

test('flow control: Replicate state pipelines up to maxInflightMsgs, then waits for acks', () => {
  const net = new Network(['a', 'b'], { maxInflightMsgs: 3, maxSizePerMsg: 1 });
  net.elect('a');
  for (let k = 0; k < 10; k++) net.get('a').node.propose(bytes(`f${k}`));
  net.processReady('a');
  const apps = net.queue.filter((m) => m.type === 'app' && m.to === 'b' && m.entries.length > 0);
  assert.equal(apps.length, 3, 'window of three MsgApps of one entry each');
  const pr = net.get('a').node.raft.trk.progress.get('b')!;
  assert.equal(pr.state, 'replicate');
  assert.equal(pr.isPaused(), true);
  net.stabilize();
  assert.equal(net.appliedData('b').length, 10);
});

test('quorum: majority and joint arithmetic; ConfChange codec round-trips', () => {
  const m = new Map([
    ['a', 5],
    ['b', 3],
    ['c', 9],
  ]);
  assert.equal(
    majorityCommitted(new Set(['a', 'b', 'c']), (id) => m.get(id) ?? 0),
    5,
  );
  assert.equal(
    jointVote(
      new Set(['a', 'b']),
      new Set(['c']),
      new Map([
        ['a', true],
        ['b', true],
      ]),
    ),
    'pending',
  );
  const c: ConfChange = {
    changes: [
      { type: 'addNode', nodeId: 'n1' },
      { type: 'removeNode', nodeId: 'n2' },
      { type: 'addLearner', nodeId: 'n3' },
    ],
    transition: 'explicit',
    context: bytes('ctx'),
  };
  assert.deepEqual(decodeConfChange(encodeConfChange(c)), c);
  assert.throws(() => decodeConfChange(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0])), /unknown version/);
});

test('snapshots: Snapshot state falls back to Probe when neither the ack nor the transport report arrives', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  const a = net.get('a').node.raft;
  const pr = a.trk.progress.get('c')!;
  pr.becomeSnapshot(a.log.lastIndex());
  net.isolated.add('c');
  net.tick('a', 10);
  net.stabilize();
  assert.equal(pr.state, 'snapshot', 'kept for the first election timeout');
  net.tick('a', 10);
  assert.equal(pr.state, 'probe', 'then probed again');
});

test('boot: a torn write that kept entries of a newer term raises the term (vote unknown)', () => {
  const st = new MemoryStorage();
  st.applySnapshot({
    metadata: {
      index: 1,
      term: 1,
      confState: { voters: ['a', 'b', 'c'], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
    data: E,
  });
  st.append([{ index: 2, term: 7, type: 'normal', data: E }]);
  st.setHardState({ term: 3, vote: 'b', commit: 1 });
  const n = new RawNode(testConfig('a', st));
  assert.equal(n.raft.term, 7);
  assert.equal(n.raft.vote, '');
  const rd = n.ready();
  assert.deepEqual(rd.hardState, { term: 7, vote: '', commit: 1 });
  assert.equal(rd.mustSync, true);
});

test('replication §5.3: a follower refuses an AppendEntries whose previous entry has another term', () => {
  const st = new MemoryStorage();
  st.applySnapshot({
    metadata: {
      index: 1,
      term: 1,
      confState: { voters: ['a', 'b', 'c'], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
    data: E,
  });
  st.append([
    { index: 2, term: 1, type: 'normal', data: E },
    { index: 3, term: 2, type: 'normal', data: bytes('old leader') },
  ]);
  st.setHardState({ term: 2, vote: '', commit: 2 });
  const n = new RawNode(testConfig('a', st));
  // The leader of term 3 holds (3, term 3) where we hold (3, term 2): the logs differ at 3.
  n.step(
    newMessage('app', 'a', {
      from: 'b',
      term: 3,
      index: 3,
      logTerm: 3,
      commit: 2,
      entries: [{ index: 4, term: 3, type: 'normal', data: bytes('new leader') }],
    }),
  );
  const log = n.raft.log;
  assert.equal(log.lastIndex(), 3, 'nothing appended after a mismatching previous entry');
  assert.equal(log.term(3), 2);
  const resp = n.ready().messages.find((m) => m.type === 'appResp');
  assert.ok(resp !== undefined && resp.reject, 'the follower answers with a rejection');
  assert.equal(resp.to, 'b');
  // A hint lets the leader skip our conflicting term: the last index whose term is <= 3 and <= 3.
  assert.ok(resp.rejectHint <= 3);
});
