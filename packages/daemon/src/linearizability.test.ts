/**
 * Store linearizability under kill -9 of real shoald processes: 3 managers on loopback, several
 * clients doing register writes (a node label set by UpdateNode at the version just read) and
 * reads (GetNode) through the Control API on the unix sockets of random managers, while the test
 * kill -9s the leader or a random manager and restarts it. The history (invoke, ok, failed,
 * unknown) goes to raft's linearizability checker; after healing, every register is read through
 * every manager (those reads are part of the history, so an acknowledged write that got lost is
 * a violation). `SHOAL_DAEMON_LIN_SECONDS` (default 30) sets the fault window.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { ControlClient, unary, type Node } from '@shoal/api';
import { decodeKeyFile } from '@shoal/ca';
import { hasCode, sleep } from '@shoal/common';
import { checkLinearizability, type KvOperation } from '@shoal/raft/testing';
import { ShoaldProcess, controlClient, freePort, swarmClient, TEST_ADDR_POOL } from './test-util.js';
import { clusterChannelOptions } from './grpc-raft-transport.js';

interface Host {
  name: string;
  dir: string;
  port: number;
  socket: string;
  p: ShoaldProcess;
  nodeId: string;
}

const SECONDS = Number(process.env['SHOAL_DAEMON_LIN_SECONDS'] ?? 30);
const CLIENTS = 6;
const MIN_KILLS = 3;
const LABEL = 'lin-register';

const procs: ShoaldProcess[] = [];
const dirs: string[] = [];
after(async () => {
  if (process.env['SHOALD_TEST_LOGS']) {
    const fs = await import('node:fs/promises');
    for (const p of procs) await fs.appendFile(process.env['SHOALD_TEST_LOGS'], `==== ${p.proc.pid}\n${p.stderr}\n`);
  }
  for (const p of procs) await p.stop('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function startShoald(h: Omit<Host, 'p'>): ShoaldProcess {
  const p = new ShoaldProcess([
    '--data-root',
    join(h.dir, 'data'),
    '--run-root',
    join(h.dir, 'run'),
    '--socket',
    h.socket,
    '--listen-addr',
    `127.0.0.1:${h.port}`,
    '--config',
    join(h.dir, 'none.json'),
  ]);
  procs.push(p);
  return p;
}

async function host(name: string): Promise<Host> {
  const dir = await mkdtemp(join(tmpdir(), `shoald-lin-${name}-`));
  dirs.push(dir);
  await writeFile(join(dir, 'none.json'), '{}');
  const base = { name, dir, port: await freePort(), socket: join(dir, 'shoal.sock'), nodeId: '' };
  const h = { ...base, p: startShoald(base) };
  await h.p.ready();
  return h;
}

/** Where a client's Control call goes: a manager's unix socket, or its cluster port (mTLS). */
interface Target {
  h: Host;
  tls?: ChannelCredentials;
}

async function call<T>(to: string | Target, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const c =
    typeof to === 'string'
      ? controlClient(to)
      : to.tls === undefined
        ? controlClient(to.h.socket)
        : new ControlClient(`127.0.0.1:${to.h.port}`, to.tls, clusterChannelOptions());
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 90_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (ok(v)) return v;
      last = new Error(`not yet: ${JSON.stringify(v).slice(0, 400)}`);
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw last instanceof Error ? last : new Error(String(last));
    await sleep(250);
  }
}

const listNodes = (h: Host): Promise<Node[]> =>
  call(h.socket, async (c) => (await unary(c.listNodes.bind(c), {}, { deadline: Date.now() + 10_000 })).Nodes ?? []);

async function joinAsManager(h: Host, token: string, remote: Host): Promise<string> {
  const s = swarmClient(h.socket);
  try {
    return (await unary(s.join.bind(s), { JoinToken: token, RemoteAddrs: [`127.0.0.1:${remote.port}`] })).NodeID ?? '';
  } finally {
    s.close();
  }
}

/** Client credentials from a manager's certificate files (a manager calling another's cluster port). */
async function managerCredentials(h: Host): Promise<ChannelCredentials> {
  const dir = join(h.dir, 'data', 'swarm', 'certificates');
  const key = decodeKeyFile(await readFile(join(dir, 'node.key'), 'utf8')).key.export({ format: 'pem', type: 'pkcs8' });
  return credentials.createSsl(
    await readFile(join(dir, 'root.crt')),
    Buffer.from(key),
    await readFile(join(dir, 'node.crt')),
    { checkServerIdentity: () => undefined },
  );
}

/** Seeded PRNG (mulberry32), so a failing schedule can be told apart from another. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An error the client knows the write did not apply with (the store refused the transaction). */
const definitelyNotApplied = (err: unknown): boolean =>
  hasCode(err, 'STORE_VERSION_CONFLICT') || hasCode(err, 'MANAGER_NODE_NOT_FOUND');

describe('store linearizability under kill -9 of shoald managers', () => {
  it('register writes and reads through the Control API stay linearizable; nothing acknowledged is lost', async () => {
    const seed = Number(process.env['SHOAL_DAEMON_LIN_SEED'] ?? Date.now() % 1_000_000);
    const rnd = prng(seed);
    const managers = await Promise.all(['m1', 'm2', 'm3'].map((n) => host(n)));
    const [h1, h2, h3] = managers as [Host, Host, Host];
    const s1 = swarmClient(h1.socket);
    h1.nodeId = (await unary(s1.init.bind(s1), { ...TEST_ADDR_POOL })).NodeID ?? '';
    s1.close();
    const cluster = await call(h1.socket, async (c) => (await unary(c.getCluster.bind(c), {})).Cluster);
    const token = cluster?.JoinTokens?.Manager ?? '';
    h2.nodeId = await joinAsManager(h2, token, h1);
    h3.nodeId = await joinAsManager(h3, token, h1);
    await eventually(
      () => listNodes(h1),
      (ns) =>
        ns.length === 3 &&
        ns.filter((n) => n.ManagerStatus?.Reachability === 'reachable').length === 3 &&
        ns.filter((n) => n.ManagerStatus?.Leader).length === 1,
    );
    // The registers: one label on each manager's Node object.
    const keys = managers.map((h) => h.nodeId);

    const history: KvOperation[] = [];
    const t0 = performance.now();
    const now = (): number => performance.now() - t0;
    let stop = false;
    const counts = { writesOk: 0, writesFailed: 0, writesUnknown: 0, readsOk: 0, readsFailed: 0, kills: 0 };

    // Half the clients use the unix sockets (the CLI's path: followers forward to the leader), the
    // other half call the managers' cluster ports directly with a manager certificate.
    const tls = await managerCredentials(h3);
    const targetOf = (i: number, h: Host): Target => (i % 2 === 0 ? { h } : { h, tls });

    const read = async (clientId: string, to: Target, key: string): Promise<Node | undefined> => {
      const start = now();
      try {
        const node = await call(
          to,
          async (c) => (await unary(c.getNode.bind(c), { NodeID: key }, { deadline: Date.now() + 5000 })).Node,
        );
        const value = node?.Spec?.Labels?.[LABEL] ?? null;
        history.push({ clientId, kind: 'get', key, call: start, return: now(), output: { value } });
        counts.readsOk++;
        return node;
      } catch (err) {
        // An unknown read is dropped by the checker: it observed nothing.
        counts.readsFailed++;
        if (!(err instanceof Error)) throw err;
        return undefined;
      }
    };

    const client = async (i: number): Promise<void> => {
      const clientId = `c${i}`;
      let seq = 0;
      while (!stop) {
        const h = managers[Math.floor(rnd() * managers.length)]!;
        const key = keys[Math.floor(rnd() * keys.length)]!;
        const to = targetOf(i, h);
        const cur = await read(clientId, to, key);
        if (cur === undefined) {
          await sleep(100);
          continue;
        }
        if (rnd() < 0.3) continue; // a read-only round now and then
        const value = `${clientId}-${++seq}`;
        const start = now();
        try {
          await call(to, (c) =>
            unary(
              c.updateNode.bind(c),
              {
                NodeID: key,
                NodeVersion: cur.Version,
                Spec: { ...cur.Spec, Labels: { ...(cur.Spec?.Labels ?? {}), [LABEL]: value } },
              },
              { deadline: Date.now() + 5000 },
            ),
          );
          history.push({ clientId, kind: 'put', key, value, call: start, return: now(), output: {} });
          counts.writesOk++;
        } catch (err) {
          if (definitelyNotApplied(err)) {
            counts.writesFailed++;
          } else {
            // Outcome unknown: it may apply at any point after its invocation, or never.
            history.push({ clientId, kind: 'put', key, value, call: start, return: Infinity });
            counts.writesUnknown++;
          }
        }
      }
    };

    const leaderOf = async (): Promise<Host | undefined> => {
      for (const h of managers) {
        if (h.p.proc.exitCode !== null || h.p.proc.signalCode !== null) continue;
        try {
          const ns = await listNodes(h);
          const id = ns.find((n) => n.ManagerStatus?.Leader)?.ID;
          const l = managers.find((m) => m.nodeId === id);
          if (l) return l;
        } catch (err) {
          if (!(err instanceof Error)) throw err;
        }
      }
      return undefined;
    };

    const faults = async (): Promise<void> => {
      const until = Date.now() + SECONDS * 1000;
      // At least MIN_KILLS kills, however slow the machine is.
      while (Date.now() < until || counts.kills < MIN_KILLS) {
        await sleep(1000 + rnd() * 2500);
        const victim = rnd() < 0.6 ? await leaderOf() : managers[Math.floor(rnd() * managers.length)];
        if (victim === undefined) continue;
        await victim.p.stop('SIGKILL');
        counts.kills++;
        await sleep(500 + rnd() * 2000);
        victim.p = startShoald(victim);
        await victim.p.ready();
        // Wait until the restarted manager is back in the quorum before the next kill.
        await eventually(
          () => listNodes(victim),
          (ns) => ns.filter((n) => n.ManagerStatus?.Leader).length === 1,
        );
      }
    };

    const workers = Array.from({ length: CLIENTS }, (_, i) => client(i));
    await faults();
    stop = true;
    await Promise.all(workers);

    // Healed: every register read through every manager, as part of the history.
    await eventually(
      () => leaderOf(),
      (l) => l !== undefined,
    );
    for (const h of managers) {
      for (const key of keys) {
        await eventually(
          () => read('final', { h }, key),
          (n) => n !== undefined,
        );
      }
    }

    for (const h of managers) {
      for (const key of keys) {
        await eventually(
          () => read('final-tls', { h, tls }, key),
          (n) => n !== undefined,
        );
      }
    }

    const result = checkLinearizability(history, { maxStepsPerKey: 5_000_000 });
    const summary = { seed, seconds: SECONDS, operations: history.length, ...counts, verdict: result.verdict };
    process.stderr.write(`linearizability run: ${JSON.stringify(summary)}\n`);
    assert.ok(counts.kills >= MIN_KILLS, `only ${counts.kills} kills`);
    assert.ok(counts.writesOk > 0 && counts.readsOk > 0, JSON.stringify(summary));
    assert.equal(result.verdict, 'ok', result.verdict === 'violation' ? result.message : JSON.stringify(summary));
  });
});
