/**
 * RaftNode with the real core, real disk stores and real TCP transports, several members in one
 * process: replication, follower reads, leader transfer, membership changes (learner, promote,
 * remove) and catch-up of a new member by snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@shoal/common';
import { DiskLogStore } from '../snap/disk-store.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import { KvStateMachine } from '../kv/state-machine.js';
import { encodeCommand, type KvResult } from '../kv/command.js';
import { freePorts } from '../kv/process-cluster.js';
import { RaftNode } from './raft-node.js';

interface Member {
  id: string;
  node: RaftNode;
  sm: KvStateMachine;
  addr: string;
}

const until = (f: () => boolean, timeoutMs = 10000): Promise<true> =>
  waitFor(() => (f() ? true : undefined), { timeoutMs, intervalMs: 20 });

let seq = 0;
const put = (key: string, value: string): Uint8Array =>
  encodeCommand({ op: 'put', key, value: Buffer.from(value), clientId: 1, seq: ++seq, firstUnacked: seq });

test(
  'replication, follower reads, transfer, learner → voter, removal, snapshot catch-up',
  { timeout: 60000 },
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'shoal-raft-cluster-'));
    const members: Member[] = [];
    t.after(async () => {
      for (const m of members) await m.node.close();
      await rm(root, { recursive: true, force: true });
    });
    const ports = await freePorts(4);
    const addrs = ports.map((p) => `127.0.0.1:${p}`);
    const ids = ['a', 'b', 'c', 'd'];
    const start = async (i: number, bootstrap: boolean): Promise<Member> => {
      const sm = new KvStateMachine();
      const store = await DiskLogStore.open(join(root, ids[i]!), { segmentSize: 256 * 1024 });
      const peers = Object.fromEntries(ids.slice(0, 3).map((id, k) => [id, addrs[k]!]));
      const node = new RaftNode({
        id: ids[i]!,
        store,
        transport: new TcpTransport({ listen: addrs[i]!, chunkSize: 4096 }),
        stateMachine: sm,
        ...(bootstrap ? { bootstrapVoters: ids.slice(0, 3) } : {}),
        peers,
        tickMs: 20,
        electionTicks: 10,
        snapshotEntries: 100,
        keepEntries: 10,
      });
      await node.start();
      const m = { id: ids[i]!, node, sm, addr: addrs[i]! };
      members.push(m);
      return m;
    };
    for (let i = 0; i < 3; i++) await start(i, true);
    const leader = (): Member | undefined => members.find((m) => m.node.leaderInfo().isLeader);
    await until(() => leader() !== undefined);
    const l = leader()!;
    const r = await l.node.propose<KvResult>(put('x', '1'));
    assert.equal(r.ok, true);
    // A follower read: the barrier makes the write visible on the follower.
    const f = members.find((m) => m !== l)!;
    await f.node.readIndex();
    assert.equal(Buffer.from(f.sm.get('x').value!).toString(), '1');

    // Leader transfer.
    await l.node.transferLeadership(f.id);
    await until(() => f.node.leaderInfo().isLeader);

    // Enough writes for several snapshots and log compaction.
    for (let i = 0; i < 300; i++) await f.node.propose(put(`k${i % 7}`, `v${i}`));

    // A new member joins as a learner: it has to catch up by snapshot (the log was compacted).
    const cs = await f.node.addLearner('d', addrs[3]!);
    assert.deepEqual([...cs.learners], ['d']);
    const d = await start(3, false);
    await until(() => d.sm.get('k6').value !== null && d.node.appliedIndex() >= f.node.appliedIndex());
    assert.equal(Buffer.from(d.sm.get('x').value!).toString(), '1');
    const promoted = await f.node.promote('d');
    assert.ok(promoted.voters.includes('d'));
    // Remove the original leader; the rest keeps working.
    const removed = await f.node.removeMember(l.id);
    assert.ok(!removed.voters.includes(l.id));
    const r2 = await f.node.propose<KvResult>(put('after', 'removal'));
    assert.equal(r2.ok, true);
    await d.node.readIndex();
    assert.equal(Buffer.from(d.sm.get('after').value!).toString(), 'removal');
  },
);
