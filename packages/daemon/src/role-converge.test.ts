/**
 * A promotion that fails halfway converges once the failure clears, without a restart: a manager
 * whose cluster port other nodes reach only through a TCP relay the test controls (its advertised
 * address), and a worker. The relay refuses new connections (the open dispatcher session stays),
 * the worker is promoted: it sees the new role on its session, but its certificate renewal cannot
 * reach the CA. Then the relay lets connections through again, and the same worker process ends
 * as a manager (manager certificate, Raft member, Control available).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unary, type Node } from '@shoal/api';
import { sleep } from '@shoal/common';
import { ShoaldProcess, controlClient, freePort, swarmClient, TEST_ADDR_POOL } from './test-util.js';

interface Host {
  dir: string;
  port: number;
  socket: string;
  p: ShoaldProcess;
}

const procs: ShoaldProcess[] = [];
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  for (const c of closers) await c();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A TCP relay to `target` on loopback that can refuse new connections (open ones keep flowing). */
class Relay {
  refuseNew = false;
  refused = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  private constructor(target: number) {
    this.server = createServer((client) => this.relay(client, target));
  }

  static async start(port: number, target: number): Promise<Relay> {
    const relay = new Relay(target);
    await new Promise<void>((resolve, reject) => {
      relay.server.once('error', reject);
      relay.server.listen(port, '127.0.0.1', resolve);
    });
    return relay;
  }

  private relay(client: Socket, target: number): void {
    if (this.refuseNew) {
      this.refused++;
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function host(name: string, port: number, advertise?: string): Promise<Host> {
  const dir = await mkdtemp(join(tmpdir(), `shoald-role-${name}-`));
  dirs.push(dir);
  await writeFile(join(dir, 'none.json'), '{}');
  const socket = join(dir, 'shoal.sock');
  const p = new ShoaldProcess([
    '--data-root',
    join(dir, 'data'),
    '--run-root',
    join(dir, 'run'),
    '--socket',
    socket,
    '--listen-addr',
    `127.0.0.1:${port}`,
    ...(advertise ? ['--advertise-addr', advertise] : []),
    '--config',
    join(dir, 'none.json'),
  ]);
  procs.push(p);
  await p.ready();
  return { dir, port, socket, p };
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

async function listNodes(h: Host): Promise<Node[]> {
  const c = controlClient(h.socket);
  try {
    return (await unary(c.listNodes.bind(c), {}, { deadline: Date.now() + 10_000 })).Nodes ?? [];
  } finally {
    c.close();
  }
}

const certRole = async (h: Host): Promise<string> =>
  new X509Certificate(await readFile(join(h.dir, 'data', 'swarm', 'certificates', 'node.crt'), 'utf8')).subject.match(
    /OU=swarm-(\w+)/,
  )?.[1] ?? '';

interface Cluster {
  relay: Relay;
  m1: Host;
  w: Host;
  wid: string;
}

/** A manager reached only through the relay (its advertised address) and a worker joined through it. */
async function cluster(): Promise<Cluster> {
  const [listen, advertised, workerPort] = [await freePort(), await freePort(), await freePort()];
  const relay = await Relay.start(advertised, listen);
  closers.push(() => relay.close());
  const m1 = await host('m1', listen, `127.0.0.1:${advertised}`);
  const w = await host('w', workerPort);
  const s1 = swarmClient(m1.socket);
  await unary(s1.init.bind(s1), { ...TEST_ADDR_POOL });
  s1.close();
  const c1 = controlClient(m1.socket);
  const tokens = (await unary(c1.getCluster.bind(c1), {})).Cluster?.JoinTokens ?? {};
  c1.close();
  const sw = swarmClient(w.socket);
  const wid = (await unary(sw.join.bind(sw), { JoinToken: tokens.Worker!, RemoteAddrs: [`127.0.0.1:${advertised}`] }))
    .NodeID!;
  sw.close();
  await eventually(
    () => listNodes(m1),
    (ns) => ns.length === 2 && ns.every((n) => n.Status?.State === 'ready'),
  );
  return { relay, m1, w, wid };
}

async function promote(m1: Host, wid: string): Promise<void> {
  const c = controlClient(m1.socket);
  try {
    const cur = (await unary(c.getNode.bind(c), { NodeID: wid })).Node!;
    await unary(c.updateNode.bind(c), {
      NodeID: wid,
      NodeVersion: cur.Version,
      Spec: { ...cur.Spec, Role: 'manager' },
    });
  } finally {
    c.close();
  }
}

async function controlAvailable(h: Host): Promise<boolean> {
  const s = swarmClient(h.socket);
  try {
    return (await unary(s.info.bind(s), {})).ControlAvailable === true;
  } finally {
    s.close();
  }
}

/** The promoted node ends a manager: certificate, Raft member seen by the leader, Control, same process. */
async function assertConverged(cl: Cluster): Promise<void> {
  await eventually(
    () => controlAvailable(cl.w),
    (ok) => ok,
  );
  assert.equal(await certRole(cl.w), 'manager', 'a manager certificate');
  const nodes = await eventually(
    () => listNodes(cl.m1),
    (ns) => ns.filter((n) => n.Spec?.Role === 'manager' && n.ManagerStatus?.Reachability === 'reachable').length === 2,
  );
  assert.ok(nodes.find((n) => n.ID === cl.wid)?.ManagerStatus, 'the promoted node is a Raft member');
  assert.equal(cl.w.p.proc.exitCode, null, 'no restart');
  assert.equal(cl.w.p.proc.signalCode, null, 'no restart');
}

describe('role switch convergence', () => {
  it('a promotion whose certificate renewal fails (CA unreachable) completes once the CA is back, without restart', async () => {
    const cl = await cluster();
    const { relay, w } = cl;
    assert.equal(await certRole(w), 'worker');
    // the CA becomes unreachable for new connections; the open session stays
    relay.refuseNew = true;
    await promote(cl.m1, cl.wid);
    await w.p.waitLog((l) => /role change failed/.test(String(l.msg)), 60_000);
    assert.ok(relay.refused > 0, 'the relay refused connections');
    assert.equal(await certRole(w), 'worker', 'half-switched: still a worker certificate');
    assert.equal(await controlAvailable(w), false);
    // the failure clears: the same process converges to a manager
    relay.refuseNew = false;
    await assertConverged(cl);
  });

  it('a promotion whose Raft join fails after the new certificate completes once the manager is reachable', async () => {
    const cl = await cluster();
    const { relay, w } = cl;
    relay.refuseNew = true;
    await promote(cl.m1, cl.wid);
    // the first renewal is refused; let connections through until a renewal succeeds (other
    // streams of the node may take a connection too, so no fixed count), then refuse again
    await w.p.waitLog((l) => /role change failed/.test(String(l.msg)), 60_000);
    relay.refuseNew = false;
    await w.p.waitLog((l) => l.msg === 'node certificate renewed', 60_000);
    relay.refuseNew = true;
    const renewedAt = w.p.lines.findIndex((l) => l.msg === 'node certificate renewed');
    await w.p.waitLog((l) => /role change failed/.test(String(l.msg)) && w.p.lines.indexOf(l) > renewedAt, 60_000);
    assert.equal(await certRole(w), 'manager', 'half-switched: a manager certificate');
    assert.equal(await controlAvailable(w), false, 'half-switched: not a manager yet');
    relay.refuseNew = false;
    await assertConverged(cl);
  });
});
