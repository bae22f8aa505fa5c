/**
 * `npm run bench -- manager`: the manager's handlers on three real Raft managers in this process
 * (WAL on disk, TCP on loopback, the daemon's Raft timings): join (token check, CSR signing,
 * Node created, session opened, node ready, all committed through Raft), UpdateNode throughput
 * with 64 concurrent clients, and a failover of the leader until the next acknowledged write.
 * Ends with one JSON line of named figures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCsr, generateNodeKey, newClusterId, RootCA } from '@shoal/ca';
import { DiskLogStore, RaftNode, RawNode, TcpTransport, decodeConfChange } from '@shoal/raft';
import { ClusterStore, StoreStateMachine, StoreUnavailableError } from '@shoal/store';
import type { Node } from '@shoal/api';
import type { StoredCluster, StoredNode } from '../context.js';
import { Manager } from '../manager.js';
import { NotLeaderError } from '../errors.js';

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

async function start(id: string, dir: string, peers: Record<string, string>, root: RootCA): Promise<M> {
  const logStore = await DiskLogStore.open(join(dir, id), { nodeId: id });
  const transport = new TcpTransport({
    listen: peers[id] ?? '',
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
    tickMs: 100,
    electionTicks: 6,
  });
  await node.start();
  const store = new ClusterStore({ log: node, stateMachine: sm });
  const manager = new Manager({ nodeId: id, store, raft: node, rootCA: root });
  return { id, node, store, manager };
}

async function leader(ms: readonly M[]): Promise<M> {
  for (;;) {
    const l = ms.find((m) => m.node.leaderInfo().isLeader && m.manager.leaderLoopsRunning);
    if (l !== undefined) return l;
    await sleep(5);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const round = (x: number, d = 1): number => Number(x.toFixed(d));

const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-manager-'));
const ids = ['m1', 'm2', 'm3'];
const peers: Record<string, string> = {};
for (const id of ids) peers[id] = `127.0.0.1:${await freePort()}`;
const root = await RootCA.create();
let ms: M[] = await Promise.all(ids.map((id) => start(id, dir, peers, root)));
const aborts: AbortController[] = [];
try {
  for (const m of ms) m.manager.start();
  const l = await leader(ms);
  await l.manager.bootstrapCluster({ clusterId: newClusterId(), advertiseAddr: peers[l.id] ?? '' });
  await l.store.update((tx) => {
    for (const m of ms) {
      if (m === l) continue;
      const n: Node & { ID: string } = {
        ID: m.id,
        Spec: { Name: '', Labels: {}, Role: 'manager', Availability: 'active' },
        Status: { State: 'ready', Message: '', Addr: '127.0.0.1' },
        ManagerStatus: { Addr: peers[m.id] ?? '' },
      };
      tx.create('node', { ...n });
    }
  });
  const token = l.store.list<StoredCluster>('cluster')[0]?.JoinTokens?.Worker ?? '';

  // Join until ready: CSR made beforehand (the node's work), then CA + store + session.
  const joinMs: number[] = [];
  const workers: string[] = [];
  for (let i = 0; i < 30; i++) {
    const csr = Buffer.from(await createCsr(generateNodeKey()));
    const t0 = performance.now();
    const { NodeID: id = '' } = await l.manager.ca.issueNodeCertificate({ CSR: csr, Token: token }, { addr: '' });
    const ac = new AbortController();
    aborts.push(ac);
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    void l.manager.dispatcher
      .session(
        { Description: { Hostname: `w${i}` } },
        { nodeId: id, role: 'worker', addr: '127.0.0.1' },
        (msg) => {
          if (msg.Node?.Status?.State === 'ready') ready();
        },
        ac.signal,
      )
      .catch(() => undefined);
    await isReady;
    joinMs.push(performance.now() - t0);
    workers.push(id);
  }

  // UpdateNode from 64 concurrent clients, each on its own node (labels), read-modify-write.
  const clients = 64;
  const perClient = 40;
  for (let i = workers.length; i < clients; i++) {
    const csr = Buffer.from(await createCsr(generateNodeKey()));
    const { NodeID: id = '' } = await l.manager.ca.issueNodeCertificate({ CSR: csr, Token: token }, { addr: '' });
    workers.push(id);
  }
  const t1 = performance.now();
  await Promise.all(
    workers.slice(0, clients).map(async (id, c) => {
      for (let k = 0; k < perClient; k++) {
        const n = l.store.get<StoredNode>('node', id);
        await l.manager.control.updateNode({
          NodeID: id,
          NodeVersion: n?.Version,
          Spec: { ...n?.Spec, Labels: { client: String(c), k: String(k) } },
        });
      }
    }),
  );
  const writesPerS = (clients * perClient) / ((performance.now() - t1) / 1000);

  // Leader failover: close the leader, time until a write through the new leader is acknowledged.
  const failoverMs: number[] = [];
  for (let round = 0; round < 3 && ms.length === 3; round++) {
    const old = await leader(ms);
    const t2 = performance.now();
    old.manager.stop();
    old.store.close();
    await old.node.close();
    const rest = ms.filter((m) => m !== old);
    for (;;) {
      const m = rest.find((x) => x.node.leaderInfo().isLeader);
      if (m !== undefined) {
        const n = m.store.get<StoredNode>('node', workers[0] ?? '');
        try {
          await m.manager.control.updateNode({
            NodeID: n?.ID,
            NodeVersion: n?.Version,
            Spec: { ...n?.Spec, Labels: { failover: String(round) } },
          });
          break;
        } catch (err) {
          if (!(err instanceof StoreUnavailableError) && !(err instanceof NotLeaderError)) throw err;
        }
      }
      await sleep(5);
    }
    failoverMs.push(performance.now() - t2);
    // Bring the old leader back for the next round.
    ms = [...rest, await start(old.id, dir, peers, root)];
    ms.at(-1)?.manager.start();
    for (let i = 0; i < 400 && ms.some((m) => m.store.revision < (rest[0]?.store.revision ?? 0)); i++) await sleep(10);
  }
  console.log(
    'join = token + CSR signing + Node create + session + ready, committed via Raft (3 managers, loopback, 100 ms ticks, 6-tick elections)',
  );
  console.log(
    JSON.stringify({
      join_ms: round(median(joinMs)),
      update_node_writes_per_s_64_clients: round(writesPerS, 0),
      leader_failover_ms: round(median(failoverMs), 0),
    }),
  );
} finally {
  for (const a of aborts) a.abort();
  for (const m of ms) {
    m.manager.stop();
    m.store.close();
    await m.node.close();
  }
  await rm(dir, { recursive: true, force: true });
}
