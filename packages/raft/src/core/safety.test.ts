/**
 * One test per item of the safety checklist (research/raft.md §2), named "<n>. <title>".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProposalDroppedError, RaftInvariantError } from '../errors.js';
import { KvMachine, decodeCommand } from '../sim/kv-machine.js';
import { Prng } from '../sim/prng.js';
import { SimDisk } from '../sim/sim-disk.js';
import { MemoryStorage } from './memory-storage.js';
import { newMessage } from './messages.js';
import { RaftLog } from './raft-log.js';
import { bootstrapSnapshot } from './raw-node.js';
import { Network, bytes } from './test-harness.js';
import type { ConfChange, Entry, Message } from './types.js';

const E = new Uint8Array(0);
const ent = (index: number, term: number, d = ''): Entry => ({ index, term, type: 'normal', data: bytes(d) });
const cc = (changes: ConfChange['changes'], transition: ConfChange['transition'] = 'auto'): ConfChange => ({
  changes,
  transition,
  context: E,
});

test('1. Figure-8 rule: commit only by counting replicas of current-term entries; new leader appends an empty entry', () => {
  const net = new Network(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
  net.elect('a'); // term 2
  // x reaches b only, and a learns nothing.
  net.drop = (m) => m.from === 'a' && m.to === 'c';
  net.get('a').node.propose(bytes('x'));
  net.processReady('a');
  net.deliverAll();
  net.processReady('b');
  net.dropQueued();
  net.isolated.add('a');
  net.drop = () => false;
  // b wins term 3 with c's vote, but its messages are held back.
  net.get('b').node.campaign();
  for (let k = 0; k < 10; k++) {
    net.processReady('b');
    net.processReady('c');
    net.deliverAll();
    if (net.get('b').node.raft.state === 'leader') break;
  }
  const b = net.get('b').node.raft;
  assert.equal(b.state, 'leader');
  const xIndex = 3;
  assert.equal(b.log.term(xIndex), 2, 'x is from the old term');
  const noop = b.log.lastIndex();
  assert.equal(b.log.term(noop), b.term, 'new leader appended an entry of its term');
  assert.equal(b.log.slice(noop, noop + 1, 1e9)[0]!.data.byteLength, 0, 'that entry is empty');
  net.processReady('b');
  net.dropQueued();
  // c acknowledges x only: a majority (b, c) holds x, yet it is from an old term.
  b.step(newMessage('appResp', 'b', { from: 'c', term: b.term, index: xIndex }));
  assert.ok(b.log.committed < xIndex, 'old-term entry not committed by counting replicas');
  // Once the empty entry of the current term is replicated, everything before it commits.
  b.step(newMessage('appResp', 'b', { from: 'c', term: b.term, index: noop }));
  assert.equal(b.log.committed, noop);
});

test('2. Term/vote durability: persist before replying or campaigning; one vote per term across restarts', () => {
  const net = new Network(['a', 'b', 'c'], { preVote: false });
  const req = (from: string, term: number): Message => newMessage('vote', 'b', { from, term, index: 1, logTerm: 1 });
  net.get('b').node.step(req('a', 5));
  const rd = net.processReady('b')!;
  assert.deepEqual(rd.hardState, { term: 5, vote: 'a', commit: 1 });
  assert.equal(rd.mustSync, true, 'a vote must be fsynced');
  const resp = rd.messages.find((m) => m.type === 'voteResp');
  assert.ok(resp !== undefined && !resp.reject, 'the grant leaves in the same Ready, after persistence');
  // Restart from storage: the vote survives, so c cannot get b's vote in term 5.
  net.restart('b');
  assert.equal(net.get('b').node.raft.vote, 'a');
  net.get('b').node.step(req('c', 5));
  const rd2 = net.processReady('b')!;
  const resp2 = rd2.messages.find((m) => m.type === 'voteResp');
  assert.ok(resp2?.reject, 'second vote in the same term is refused');
  // A candidate persists its own term and vote with its requests.
  net.get('c').node.campaign();
  const rd3 = net.processReady('c')!;
  assert.equal(rd3.hardState?.vote, 'c');
  assert.equal(rd3.mustSync, true);
  assert.ok(rd3.messages.some((m) => m.type === 'vote'));
});

test('3. Persist before responding: acks only with the persisted entries; leader counts itself after its own fsync', () => {
  const solo = new Network(['a']);
  solo.elect('a');
  solo.get('a').node.propose(bytes('x'));
  const n = solo.get('a').node;
  const rd = n.ready();
  assert.equal(rd.entries.length, 1);
  assert.equal(rd.committedEntries.length, 0, 'nothing is committed before the leader persisted it');
  assert.equal(n.raft.log.committed < rd.entries[0]!.index, true);
  solo.get('a').storage.append(rd.entries);
  n.advance();
  const rd2 = n.ready();
  assert.deepEqual(
    rd2.committedEntries.map((e) => e.index),
    [rd.entries[0]!.index],
  );
  n.advance();
  // Follower: the appResp for new entries is in the same Ready as the entries (mustSync).
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.get('a').node.propose(bytes('y'));
  net.processReady('a');
  net.deliverAll();
  const f = net.get('b').node.ready();
  assert.ok(f.entries.length > 0 && f.mustSync);
  assert.ok(f.messages.some((m) => m.type === 'appResp' && m.index === f.entries[f.entries.length - 1]!.index));
  net.get('b').node.advance();
});

test('4. Truncation: stale, duplicated or reordered appends never cut a matching suffix nor anything committed', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  const msgs: Message[] = [];
  for (const d of ['x', 'y', 'z']) {
    net.get('a').node.propose(bytes(d));
    net.processReady('a');
    msgs.push(...net.queue.filter((m) => m.to === 'b' && m.type === 'app'));
    net.deliverAll();
    net.stabilize();
  }
  const b = net.get('b').node.raft;
  const last = b.log.lastIndex();
  // Replay old MsgApps (duplicated and reordered).
  for (const m of [...msgs].reverse()) b.step(m);
  assert.equal(b.log.lastIndex(), last, 'matching suffix kept');
  // A conflicting entry at or below commit is an invariant violation, never a truncation.
  const log = new RaftLog(new MemoryStorage());
  log.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
  log.commitTo(2);
  assert.throws(() => log.maybeAppend(1, 1, 3, [ent(2, 2)]), RaftInvariantError);
  assert.equal(log.maybeAppend(2, 1, 3, [ent(3, 2)]), 3, 'uncommitted conflicting suffix is replaced');
  assert.equal(log.term(3), 2);
});

test('5. Async-write ABA: durable acks name (term, index); rewritten indexes are not marked stable', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  const b = net.get('b').node;
  // b receives entries 3..4 of term T and hands them out in a Ready (the write is in flight).
  const T = b.raft.term;
  b.step(
    newMessage('app', 'b', { from: 'a', term: T, index: 2, logTerm: T, entries: [ent(3, T, 'p'), ent(4, T, 'q')] }),
  );
  const rd = b.ready();
  assert.deepEqual(
    rd.entries.map((e) => `${e.index}:${e.term}`),
    [`3:${T}`, `4:${T}`],
  );
  // Meanwhile a new leader (term T+1) overwrites index 3.
  b.step(newMessage('app', 'b', { from: 'c', term: T + 1, index: 2, logTerm: T, entries: [ent(3, T + 1, 'r')] }));
  net.get('b').storage.append(rd.entries);
  b.advance(); // acknowledges (4, T) and (3, T): neither names the current entry at 3
  const rd2 = b.ready();
  assert.deepEqual(
    rd2.entries.map((e) => `${e.index}:${e.term}`),
    [`3:${T + 1}`],
    'the rewritten entry is handed out again',
  );
  const ack = rd2.messages.find((m) => m.type === 'appResp' && m.to === 'c');
  assert.equal(ack?.index, 3);
  b.advance();
});

test('6. Stale responses and progress: old-term replies dropped, match < next, probe left on heartbeat reply, snapshot after compaction', () => {
  const net = new Network(['a', 'b', 'c'], { maxInflightMsgs: 2 });
  net.elect('a');
  const a = net.get('a').node.raft;
  const pr = a.trk.progress.get('b')!;
  const match = pr.match;
  a.step(newMessage('appResp', 'a', { from: 'b', term: a.term - 1, index: match + 100 }));
  assert.equal(pr.match, match, 'old-term reply ignored');
  assert.ok(pr.match < pr.next);
  // Probe paused after a lost MsgApp resumes on a heartbeat response.
  pr.becomeProbe();
  pr.msgAppFlowPaused = true;
  net.dropQueued();
  a.step(newMessage('heartbeatResp', 'a', { from: 'b', term: a.term }));
  assert.ok(
    a.msgs.some((m) => m.type === 'app' && m.to === 'b'),
    'probe resumed',
  );
  net.stabilize();
  // A follower cut off while the log is compacted gets a snapshot.
  net.isolated.add('c');
  for (let k = 0; k < 5; k++) {
    net.get('a').node.propose(bytes(`v${k}`));
    net.stabilize();
  }
  const st = net.get('a').storage;
  const applied = a.log.applied;
  st.createSnapshot(applied, a.confState(), bytes('image'));
  st.compact(applied);
  net.isolated.delete('c');
  net.tickAll(2);
  net.stabilize();
  assert.ok(
    net.sent.some((m) => m.type === 'snap' && m.to === 'c'),
    'snapshot sent',
  );
  net.get('a').node.reportSnapshot('c', true);
  net.tickAll(2);
  net.stabilize();
  assert.equal(net.get('c').node.raft.log.lastIndex(), a.log.lastIndex());
});

test('7. Disruptive servers: partitioned nodes cannot depose the leader; a stale leader steps down; a stranded higher term does not wedge', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  const term = net.get('a').node.raft.term;
  net.isolated.add('c');
  net.tick('c', 100);
  net.stabilize();
  assert.equal(net.get('c').node.raft.term, term, 'pre-vote kept the isolated node at its term');
  net.isolated.delete('c');
  net.tickAll(3);
  net.stabilize();
  assert.equal(net.leader(), 'a', 'rejoining node did not depose the leader');
  // A stale leader that hears a higher term steps down.
  const a = net.get('a').node.raft;
  a.step(newMessage('appResp', 'a', { from: 'b', term: term + 5, index: 0 }));
  assert.equal(a.state, 'follower');
  assert.equal(a.term, term + 5);
  // Now a stranded node at a much higher term (without pre-vote) must not wedge the group.
  const net2 = new Network(['a', 'b', 'c'], { preVote: false });
  net2.elect('a');
  net2.isolated.add('c');
  for (let k = 0; k < 5; k++) net2.get('c').node.campaign();
  net2.stabilize();
  net2.get('a').node.propose(bytes('w'));
  net2.stabilize();
  net2.isolated.delete('c');
  for (let k = 0; k < 60 && net2.appliedData('c').length === 0; k++) {
    net2.tickAll(1);
    net2.stabilize();
  }
  assert.ok(net2.leader() !== undefined);
  assert.deepEqual(net2.appliedData('c'), ['w'], 'the group recovered and caught the stranded node up');
});

test('8. Config changes: one in flight, new leader waits for its own entry, removed leader steps down, learners vote, leader replaced inside a joint config', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  const a = net.get('a').node;
  // New leader: no conf change before its own empty entry is applied.
  const fresh = new Network(['a', 'b', 'c']);
  fresh.get('a').node.campaign();
  for (let k = 0; k < 4 && fresh.get('a').node.raft.state !== 'leader'; k++) {
    fresh.processReady('a');
    fresh.deliverAll();
    fresh.processReady('b');
    fresh.processReady('c');
    fresh.deliverAll();
  }
  assert.equal(fresh.get('a').node.raft.state, 'leader');
  assert.throws(
    () => fresh.get('a').node.proposeConfChange(cc([{ type: 'addLearner', nodeId: 'z' }])),
    ProposalDroppedError,
  );
  // One in flight.
  a.proposeConfChange(cc([{ type: 'addLearner', nodeId: 'd' }]));
  assert.throws(() => a.proposeConfChange(cc([{ type: 'addLearner', nodeId: 'e' }])), /already pending/);
  net.addNode('d');
  net.stabilize();
  assert.deepEqual(a.status().confState.learners, ['d']);
  // Learners vote when asked (they may be voters in a config they have not applied).
  const d = net.get('d').node;
  d.tick();
  for (let k = 0; k < 30; k++) d.tick(); // out of the leader's lease; learners never campaign
  assert.equal(d.raft.state, 'follower');
  d.step(newMessage('vote', 'd', { from: 'b', term: a.raft.term + 1, index: 100, logTerm: 100 }));
  const rd = net.processReady('d')!;
  assert.ok(rd.messages.some((m) => m.type === 'voteResp' && !m.reject));
  net.queue = net.queue.filter((m) => m.from !== 'd');
  // d's higher term disturbs the group once; it settles on a leader again.
  for (let k = 0; k < 100; k++) {
    net.tickAll(1);
    net.stabilize();
    const l = net.leader();
    if (
      l !== undefined &&
      net.get(l).node.raft.committedEntryInCurrentTerm() &&
      net.get(l).node.raft.log.applied === net.get(l).node.raft.log.committed
    )
      break;
  }
  // Replace the leader inside a joint configuration: C(a,b,c) -> C(b,c,d).
  const leader = net.leader()!;
  const ln = net.get(leader).node;
  ln.proposeConfChange(
    cc([
      { type: 'addNode', nodeId: 'd' },
      { type: 'removeNode', nodeId: leader },
    ]),
  );
  net.stabilize();
  assert.equal(ln.raft.state, 'follower', 'removed leader stepped down (not in its own quorum)');
  for (let k = 0; k < 50 && net.leader() === undefined; k++) {
    net.tickAll(1);
    net.stabilize();
  }
  const nl = net.leader();
  assert.ok(nl !== undefined && nl !== leader);
  const cs = net.get(nl).node.status().confState;
  assert.deepEqual(cs.votersOutgoing, [], 'auto-left the joint configuration');
  assert.ok(!cs.voters.includes(leader) && cs.voters.includes('d'));
  net.get(nl).node.propose(bytes('after'));
  net.stabilize();
  assert.ok(net.appliedData('d').includes('after'));
});

test('9. Snapshot install: ignore snapshots <= commit, leave Snapshot state by MsgApp, carry ConfState, crash mid-install leaves old or new', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.get('a').node.propose(bytes('x'));
  net.stabilize();
  const b = net.get('b').node.raft;
  const commit = b.log.committed;
  const stale = { ...bootstrapSnapshot(['a', 'b', 'c']) };
  b.step(newMessage('snap', 'b', { from: 'a', term: b.term, snapshot: stale }));
  assert.equal(b.log.committed, commit);
  assert.equal(b.log.unstable.snapshot, undefined, 'stale snapshot ignored');
  // Leader in Snapshot state for c, c catches up through MsgApp: back to Replicate.
  const a = net.get('a').node.raft;
  const pc = a.trk.progress.get('c')!;
  pc.match = 1;
  pc.becomeSnapshot(a.log.lastIndex());
  a.handleAck('c', a.log.lastIndex());
  assert.equal(pc.state, 'replicate');
  // Snapshot carries the ConfState: a node restored from it knows the members.
  const st = net.get('a').storage;
  const snap = st.createSnapshot(a.log.applied, a.confState(), bytes('img'));
  const fresh = new MemoryStorage();
  fresh.applySnapshot(snap);
  assert.deepEqual(fresh.initialState().confState.voters, ['a', 'b', 'c']);
  // Crash during install: the snapshot record is atomic on the simulated disk.
  const disk = new SimDisk(bootstrapSnapshot(['a', 'b', 'c']));
  disk.write({ kind: 'snap', snap });
  disk.crash(new Prng(1));
  const img = disk.load();
  assert.ok(img.snap.metadata.index === 1 || img.snap.metadata.index === snap.metadata.index);
});

test('10. Reads: a node that only believes it leads cannot serve; a retried ReadIndex never resolves to an older index', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.get('a').node.propose(bytes('x'));
  net.stabilize();
  net.isolated.add('a');
  net.get('a').node.readIndex(bytes('r1'));
  net.stabilize();
  assert.equal(net.get('a').readStates.length, 0, 'no quorum, no read');
  net.isolated.delete('a');
  // The same request retried after more writes resolves at (at least) the newer commit.
  net.get('a').node.propose(bytes('y'));
  net.stabilize();
  net.isolated.add('b');
  net.isolated.add('c');
  net.get('a').node.readIndex(bytes('r2'));
  net.get('a').node.propose(bytes('z'));
  net.processReady('a');
  net.dropQueued();
  net.isolated.clear();
  net.stabilize();
  const commitNow = net.get('a').node.raft.log.committed;
  net.get('a').node.readIndex(bytes('r2'));
  net.stabilize();
  const rs = net.get('a').readStates.filter((r) => new TextDecoder().decode(r.requestCtx) === 'r2');
  assert.ok(rs.length >= 1);
  assert.ok(rs[rs.length - 1]!.index >= commitNow, 'retry resolves at least at the commit of the retry');
  // Follower reads go through the leader.
  net.get('b').node.readIndex(bytes('r3'));
  net.stabilize();
  assert.equal(net.get('b').readStates.at(-1)?.index, net.get('a').node.raft.log.committed);
});

test('11. Applied index: restart at the state machine snapshot index; later entries are re-delivered, earlier ones never', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  for (const d of ['x', 'y', 'z']) net.get('a').node.propose(bytes(d));
  net.stabilize();
  const b = net.get('b');
  const ents = b.applied.filter((e) => e.data.byteLength > 0);
  const mid = ents[1]!.index; // state machine image taken after 'y'
  b.storage.createSnapshot(mid, b.node.raft.confState(), bytes('x,y'));
  net.restart('b');
  net.get('b').node.raft.log.commitTo(net.get('b').node.raft.log.lastIndex());
  net.processReady('b');
  assert.deepEqual(net.appliedData('b'), ['z'], 'only entries after the applied index are re-applied');
});

test('12. Not exactly-once: a duplicated proposal may commit twice; the state machine dedupes by client id + sequence', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  const cmd = bytes(JSON.stringify({ c: 7, s: 1, op: 'put', k: 'k', v: 'v1' }));
  net.get('b').node.propose(cmd);
  net.processReady('b');
  const fwd = net.queue.find((m) => m.type === 'prop')!;
  net.queue.push(fwd); // the network duplicated the forwarded proposal
  net.stabilize();
  const copies = net.get('c').applied.filter((e) => e.data.byteLength > 0);
  assert.equal(copies.length, 2, 'raft itself does not dedupe');
  const kv = new KvMachine();
  const r1 = kv.apply(decodeCommand(copies[0]!.data));
  const r2 = kv.apply(decodeCommand(copies[1]!.data));
  assert.equal(r1.duplicate, false);
  assert.equal(r2.duplicate, true);
});

test('13. Storage faults: a crash loses unsynced writes only; the node recovers from durable state', () => {
  const disk = new SimDisk(bootstrapSnapshot(['a']));
  disk.write({ kind: 'entries', entries: [ent(2, 2, 'x')] });
  disk.write({ kind: 'hard', hs: { term: 2, vote: 'a', commit: 2 } });
  disk.fsync();
  disk.write({ kind: 'entries', entries: [ent(3, 2, 'y')] });
  disk.write({ kind: 'hard', hs: { term: 2, vote: 'a', commit: 3 } });
  const lost = disk.crash(new Prng(3));
  const img = disk.load();
  assert.ok(lost >= 0 && lost <= 2);
  assert.ok(img.entries.length >= 1 && img.entries[0]!.index === 2, 'synced entry survives');
  assert.ok(img.hard.commit >= 2);
  // A node restarted from that image comes back with the durable term and vote.
  const st = new MemoryStorage();
  st.applySnapshot(img.snap);
  st.append(img.entries);
  st.setHardState(img.hard);
  const net = new Network(['a']);
  const h = net.addNode('a', st);
  assert.equal(h.node.raft.term, 2);
  assert.equal(h.node.raft.vote, 'a');
});

test('14. Flow-control liveness: a full window with lost messages recovers; no quorum stops proposals at the uncommitted cap', () => {
  const net = new Network(['a', 'b', 'c'], { maxInflightMsgs: 2, maxSizePerMsg: 1 });
  net.elect('a');
  net.drop = (m) => m.type === 'app' && m.to === 'c';
  for (let k = 0; k < 10; k++) {
    net.get('a').node.propose(bytes(`e${k}`));
    net.stabilize();
  }
  assert.ok(net.get('c').node.raft.log.lastIndex() < net.get('a').node.raft.log.lastIndex());
  net.drop = () => false;
  for (let k = 0; k < 30 && net.appliedData('c').length < 10; k++) {
    net.tickAll(1);
    net.stabilize();
  }
  assert.equal(net.appliedData('c').length, 10, 'follower recovered after the window filled and messages were lost');
  const capped = new Network(['a', 'b', 'c'], { maxUncommittedEntriesSize: 64 });
  capped.elect('a');
  capped.isolated.add('a');
  const big = new Uint8Array(40);
  capped.get('a').node.propose(big);
  assert.throws(() => capped.get('a').node.propose(big), ProposalDroppedError);
});

test('15. Size limits: MsgApp batches respect maxSizePerMsg; a snapshot leaves as one message (chunking is the transport job)', () => {
  const net = new Network(['a', 'b', 'c'], { maxSizePerMsg: 100 });
  net.elect('a');
  net.isolated.add('b');
  for (let k = 0; k < 20; k++) net.get('a').node.propose(new Uint8Array(30));
  net.stabilize();
  net.isolated.delete('b');
  net.tickAll(1);
  net.stabilize();
  const apps = net.sent.filter((m) => m.type === 'app' && m.to === 'b' && m.entries.length > 1);
  assert.ok(apps.length > 0);
  for (const m of apps) {
    const size = m.entries.reduce((s, e) => s + e.data.byteLength + 16, 0);
    assert.ok(size <= 100, `MsgApp of ${size} bytes exceeds the limit`);
  }
  assert.equal(net.get('b').node.raft.log.lastIndex(), net.get('a').node.raft.log.lastIndex());
});
