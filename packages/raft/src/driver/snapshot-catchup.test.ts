/**
 * Streamed snapshots end to end, with the real core, disk stores and TCP transports: snapshots
 * are taken by bytes while writes continue, a member that fell behind the compacted log gets the
 * leader's snapshot file streamed over TCP, restores it chunk by chunk and ends with a state
 * identical to the leader's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@shoal/common';
import { DiskLogStore } from '../snap/disk-store.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import { KvStateMachine } from '../kv/state-machine.js';
import { encodeCommand } from '../kv/command.js';
import { freePorts } from '../kv/process-cluster.js';
import { RaftNode } from './raft-node.js';

interface Member {
  id: string;
  node: RaftNode;
  sm: KvStateMachine;
}

const until = (f: () => boolean, timeoutMs = 20000): Promise<true> =>
  waitFor(() => (f() ? true : undefined), { timeoutMs, intervalMs: 20 });

test(
  'a member behind the compacted log gets a streamed snapshot and catches up to the same state',
  { timeout: 90000 },
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'shoal-raft-snapstream-'));
    const members = new Map<string, Member>();
    t.after(async () => {
      for (const m of members.values()) await m.node.close();
      await rm(root, { recursive: true, force: true });
    });
    const ids = ['a', 'b', 'c'];
    const addrs = (await freePorts(3)).map((p) => `127.0.0.1:${p}`);
    const peers = Object.fromEntries(ids.map((id, k) => [id, addrs[k]!]));
    const start = async (i: number): Promise<Member> => {
      const sm = new KvStateMachine({ chunkBytes: 16 * 1024 });
      const store = await DiskLogStore.open(join(root, ids[i]!), { segmentSize: 256 * 1024 });
      const node = new RaftNode({
        id: ids[i]!,
        store,
        transport: new TcpTransport({ listen: addrs[i]! }),
        stateMachine: sm,
        bootstrapVoters: ids,
        peers,
        tickMs: 50,
        electionTicks: 10,
        snapshotEntries: 1_000_000, // by bytes only
        snapshotBytes: 256 * 1024,
        keepEntries: 5,
        keepBytes: 16 * 1024,
      });
      await node.start();
      const m = { id: ids[i]!, node, sm };
      members.set(m.id, m);
      return m;
    };
    for (let i = 0; i < 3; i++) await start(i);
    const leader = (): Member | undefined => [...members.values()].find((m) => m.node.leaderInfo().isLeader);
    await until(() => leader() !== undefined);
    let l = leader()!;
    // Stop a follower, then write ~2.4 MB (several byte-triggered snapshots, log compacted).
    const lagging = ids.find((id) => id !== l.id)!;
    const behind = members.get(lagging)!;
    const behindApplied = behind.node.appliedIndex();
    await behind.node.close();
    members.delete(lagging);
    // Writes go to whoever leads; a retry keeps its (client, seq), so it applies at most once.
    const propose = async (data: Uint8Array): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        const cur = leader();
        try {
          if (cur === undefined) throw new Error('no leader yet');
          await cur.node.propose(data);
          return;
        } catch (err) {
          if (attempt > 100) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    let seq = 0;
    const value = Buffer.alloc(4096, 'v');
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) {
      seq++;
      const v = Buffer.from(value);
      v.write(`${i}`, 0);
      writes.push(
        propose(
          encodeCommand({ op: 'put', key: `k${i % 150}`, value: v, clientId: 7, seq, firstUnacked: 1, ts: 1000 + i }),
        ),
      );
      if (i % 50 === 49) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    await until(() => leader() !== undefined);
    l = leader()!;
    const snaps = (await readdir(join(root, l.id, 'snap'))).filter((n) => n.endsWith('.snap'));
    assert.ok(snaps.length >= 1, 'the leader took snapshots by bytes');
    // The lagging member's next entry was compacted away: it can only catch up by snapshot.
    const back = await start(ids.indexOf(lagging));
    await until(() => leader() !== undefined);
    l = leader()!;
    await until(() => back.node.appliedIndex() >= l.node.appliedIndex());
    const received = (await readdir(join(root, lagging, 'snap'))).filter((n) => n.endsWith('.snap'));
    const newest = Math.max(...received.map((n) => parseInt(n.slice(17, 33), 16)));
    assert.ok(newest > behindApplied + 1, `a snapshot past its old log was installed (${newest} > ${behindApplied})`);
    assert.equal(back.sm.size(), 150);
    assert.equal(back.sm.digest(), l.sm.digest(), 'same state as the leader, sessions included');
  },
);
