/**
 * A cluster of real shoald processes on loopback (each with its own data root, socket and port):
 * init + 2 manager joins + 2 worker joins, Control through every manager (followers forward),
 * refused joins (wrong, rotated and foreign-digest tokens), a worker certificate refused on a
 * manager-only RPC, and kill -9 of the leader: a new leader, writes through a survivor, and the
 * killed manager restarts and catches up.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { ControlClient, unary, type Node } from '@shoal/api';
import { decodeKeyFile } from '@shoal/ca';
import { hasCode, sleep } from '@shoal/common';
import { ShoaldProcess, controlClient, freePort, swarmClient, TEST_ADDR_POOL } from './test-util.js';
import { clusterChannelOptions } from './grpc-raft-transport.js';

interface Host {
  name: string;
  dir: string;
  port: number;
  socket: string;
  p: ShoaldProcess;
}

const hosts: Host[] = [];
const dirs: string[] = [];
after(async () => {
  if (process.env['SHOALD_TEST_LOGS']) {
    const fs = await import('node:fs/promises');
    for (const h of hosts) await fs.appendFile(process.env['SHOALD_TEST_LOGS'], `==== ${h.name}\n${h.p.stderr}\n`);
  }
  for (const h of hosts) await h.p.stop('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function startShoald(h: Omit<Host, 'p'>): ShoaldProcess {
  return new ShoaldProcess([
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
}

async function host(name: string): Promise<Host> {
  const dir = await mkdtemp(join(tmpdir(), `shoald-${name}-`));
  dirs.push(dir);
  await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'none.json'), '{}'));
  const base = { name, dir, port: await freePort(), socket: join(dir, 'shoal.sock') };
  const h = { ...base, p: startShoald(base) };
  hosts.push(h);
  await h.p.ready();
  return h;
}

async function restart(h: Host): Promise<void> {
  h.p = startShoald(h);
  hosts.push(h);
  await h.p.ready();
}

async function call<T>(socket: string, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const c = controlClient(socket);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const listNodes = (h: Host): Promise<Node[]> =>
  call(h.socket, async (c) => (await unary(c.listNodes.bind(c), {}, { deadline: Date.now() + 10_000 })).Nodes ?? []);

/** Retries `fn` while it fails with a retryable (unavailable) error, up to `ms`. */
async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000): Promise<T> {
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

async function join_(h: Host, token: string, remote: Host): Promise<string> {
  const s = swarmClient(h.socket);
  try {
    return (await unary(s.join.bind(s), { JoinToken: token, RemoteAddrs: [`127.0.0.1:${remote.port}`] })).NodeID ?? '';
  } finally {
    s.close();
  }
}

describe('shoald cluster on loopback', () => {
  it('3 managers + 2 workers: joins, forwarding, refusals, leader kill -9 and catch-up', async () => {
    const [h1, h2, h3, w1, w2] = await Promise.all(['m1', 'm2', 'm3', 'w1', 'w2'].map((n) => host(n)));
    const s1 = swarmClient(h1!.socket);
    const id1 = (await unary(s1.init.bind(s1), { ...TEST_ADDR_POOL })).NodeID ?? '';
    s1.close();
    const cluster = await call(h1!.socket, async (c) => (await unary(c.getCluster.bind(c), {})).Cluster);
    const tokens = cluster?.JoinTokens ?? {};
    assert.match(tokens.Manager ?? '', /^SWMTKN-1-/);

    // refused joins, each with a clear error on the joiner and nothing changed
    const bad = await host('bad');
    const digestOf = (t: string): string => t.split('-')[2]!;
    const secretOf = (t: string): string => t.split('-')[3]!;
    const wrongSecret = `SWMTKN-1-${digestOf(tokens.Worker!)}-${'0'.repeat(25)}`;
    const wrongDigest = `SWMTKN-1-${'0'.repeat(50)}-${secretOf(tokens.Worker!)}`;
    await assert.rejects(join_(bad, wrongSecret, h1!), (e: unknown) => hasCode(e, 'CA_JOIN_TOKEN_REFUSED'));
    await assert.rejects(join_(bad, wrongDigest, h1!), (e: unknown) => hasCode(e, 'CA_DIGEST_MISMATCH'));
    await assert.rejects(join_(bad, 'SWMTKN-1-nope', h1!), (e: unknown) => hasCode(e, 'CA_INVALID_JOIN_TOKEN'));
    const badInfo = await (async () => {
      const s = swarmClient(bad.socket);
      try {
        return await unary(s.info.bind(s), {});
      } finally {
        s.close();
      }
    })();
    assert.equal(badInfo.LocalNodeState, 'inactive', 'a refused join leaves the node outside');

    const m2 = await join_(h2!, tokens.Manager!, h1!);
    const m3 = await join_(h3!, tokens.Manager!, h1!);
    const wk1 = await join_(w1!, tokens.Worker!, h1!);
    const wk2 = await join_(w2!, tokens.Worker!, h1!);
    await assert.rejects(join_(h2!, tokens.Manager!, h1!), (e: unknown) => hasCode(e, 'DAEMON_ALREADY_IN_SWARM'));

    // 5 ready nodes, 3 managers (1 leader), seen through every manager (followers forward)
    for (const h of [h1!, h2!, h3!]) {
      const nodes = await eventually(
        () => listNodes(h),
        (ns) => ns.length === 5 && ns.every((n) => n.Status?.State === 'ready'),
      );
      assert.deepEqual(new Set(nodes.map((n) => n.ID)), new Set([id1, m2, m3, wk1, wk2]));
      assert.equal(nodes.filter((n) => n.Spec?.Role === 'manager').length, 3);
      assert.equal(nodes.filter((n) => n.ManagerStatus?.Leader).length, 1);
    }
    // a worker's CLI cannot use Control
    await assert.rejects(listNodes(w1!), (e: unknown) => hasCode(e, 'DAEMON_NOT_A_MANAGER'));
    // a worker's certificate calling a manager-only RPC on the cluster port is refused
    const wcert = join(w1!.dir, 'data', 'swarm', 'certificates');
    assert.equal((await stat(join(wcert, 'node.key'))).mode & 0o777, 0o600);
    const keyPem = decodeKeyFile(await readFile(join(wcert, 'node.key'), 'utf8')).key.export({
      format: 'pem',
      type: 'pkcs8',
    });
    const wc = new ControlClient(
      `127.0.0.1:${h1!.port}`,
      credentials.createSsl(
        await readFile(join(wcert, 'root.crt')),
        Buffer.from(keyPem),
        await readFile(join(wcert, 'node.crt')),
        {
          checkServerIdentity: () => undefined,
        },
      ),
      clusterChannelOptions(),
    );
    await assert.rejects(
      unary(wc.listNodes.bind(wc), {}),
      (e: unknown) => hasCode(e, 'API_PERMISSION_DENIED') && /not by a worker/.test((e as Error).message),
    );
    wc.close();

    // a rotated worker token no longer joins
    await call(h2!.socket, async (c) => {
      const cl = (await unary(c.getCluster.bind(c), {})).Cluster!;
      await unary(c.updateCluster.bind(c), {
        ClusterID: cl.ID,
        ClusterVersion: cl.Version,
        Spec: cl.Spec,
        Rotation: { WorkerJoinToken: true },
      });
    });
    await assert.rejects(join_(bad, tokens.Worker!, h1!), (e: unknown) => hasCode(e, 'CA_JOIN_TOKEN_REFUSED'));

    // promote a worker: it gets a manager certificate and starts its manager role; demote it back
    const setRole = (role: string): Promise<unknown> =>
      eventually(
        () =>
          call(h1!.socket, async (c) => {
            const cur = (await unary(c.getNode.bind(c), { NodeID: wk2 })).Node!;
            return unary(c.updateNode.bind(c), {
              NodeID: wk2,
              NodeVersion: cur.Version,
              Spec: { ...cur.Spec, Role: role },
            });
          }),
        () => true,
      );
    const infoOf = async (h: Host) => {
      const s = swarmClient(h.socket);
      try {
        return await unary(s.info.bind(s), {});
      } finally {
        s.close();
      }
    };
    await setRole('manager');
    await eventually(
      () => infoOf(w2!),
      (i) => i.ControlAvailable === true,
    );
    const promoted = await eventually(
      () => listNodes(w2!),
      (ns) =>
        ns.filter((n) => n.Spec?.Role === 'manager' && n.ManagerStatus?.Reachability === 'reachable').length === 4,
    );
    assert.equal(promoted.find((n) => n.ID === wk2)?.Spec?.Role, 'manager', 'the promoted node serves Control');
    const wcertPem = await readFile(join(w2!.dir, 'data', 'swarm', 'certificates', 'node.crt'), 'utf8');
    assert.match(new X509Certificate(wcertPem).subject, /OU=swarm-manager/, 'reissued as a manager certificate');
    await setRole('worker');
    await eventually(
      () => infoOf(w2!),
      (i) => i.ControlAvailable === false && i.LocalNodeState === 'active',
    );
    await eventually(
      () => listNodes(h1!),
      (ns) => ns.filter((n) => n.Spec?.Role === 'manager').length === 3,
    );
    assert.match(
      new X509Certificate(await readFile(join(w2!.dir, 'data', 'swarm', 'certificates', 'node.crt'), 'utf8')).subject,
      /OU=swarm-worker/,
    );

    // kill -9 the leader: another manager leads, writes go through the survivors
    const leaderId = (await listNodes(h2!)).find((n) => n.ManagerStatus?.Leader)!.ID;
    const leader = [h1!, h2!, h3!].find((_, i) => [id1, m2, m3][i] === leaderId)!;
    const survivors = [h1!, h2!, h3!].filter((h) => h !== leader);
    await leader.p.stop('SIGKILL');
    const afterKill = await eventually(
      () => listNodes(survivors[0]!),
      (ns) => ns.some((n) => n.ManagerStatus?.Leader && n.ID !== leaderId),
    );
    assert.ok(afterKill.find((n) => n.ManagerStatus?.Leader)!.ID !== leaderId, 'a new leader');
    for (const [i, h] of survivors.entries()) {
      const target = afterKill.find((n) => n.ID === wk2)!;
      await eventually(
        () =>
          call(h.socket, async (c) => {
            const cur = (await unary(c.getNode.bind(c), { NodeID: wk2 })).Node!;
            return unary(c.updateNode.bind(c), {
              NodeID: wk2,
              NodeVersion: cur.Version,
              Spec: { ...cur.Spec, Labels: { ...(cur.Spec?.Labels ?? {}), [`written-via-${i}`]: 'yes' } },
            });
          }),
        () => true,
      );
      assert.ok(target);
    }
    // the killed manager restarts with its identity and catches up
    await restart(leader);
    const caught = await eventually(
      () => listNodes(leader),
      (ns) => {
        const labels = ns.find((n) => n.ID === wk2)?.Spec?.Labels ?? {};
        return labels['written-via-0'] === 'yes' && labels['written-via-1'] === 'yes';
      },
    );
    assert.equal(caught.length, 5);

    // quorum loss: with 2 of 3 managers gone, writes are refused with a clear no-quorum error
    const last = survivors[1]!;
    await leader.p.stop('SIGKILL');
    await survivors[0]!.p.stop('SIGKILL');
    const writeVia = (h: Host, label: string): Promise<unknown> =>
      call(h.socket, async (c) => {
        const cur = (await unary(c.getNode.bind(c), { NodeID: wk1 }, { deadline: Date.now() + 10_000 })).Node!;
        return unary(
          c.updateNode.bind(c),
          {
            NodeID: wk1,
            NodeVersion: cur.Version,
            Spec: { ...cur.Spec, Labels: { ...(cur.Spec?.Labels ?? {}), [label]: 'yes' } },
          },
          { deadline: Date.now() + 10_000 },
        );
      });
    await eventually(
      () =>
        writeVia(last, 'during-quorum-loss').then(
          () => 'written',
          (e: unknown) => (e as { code?: string }).code ?? 'other',
        ),
      (r) => r === 'DAEMON_NO_LEADER',
    );
    // force-new-cluster on the survivor keeps the state and continues with one manager
    const sl = swarmClient(last.socket);
    const forced = await unary(sl.init.bind(sl), { ForceNewCluster: true });
    sl.close();
    assert.equal(forced.NodeID, [id1, m2, m3][[h1!, h2!, h3!].indexOf(last)]);
    await writeVia(last, 'after-force-new-cluster');
    const recovered = await listNodes(last);
    assert.equal(recovered.length, 5, 'every node object kept');
    const labels = recovered.find((n) => n.ID === wk2)?.Spec?.Labels ?? {};
    assert.equal(labels['written-via-0'], 'yes', 'writes from before the quorum loss kept');
    assert.equal(recovered.find((n) => n.ID === wk1)?.Spec?.Labels?.['after-force-new-cluster'], 'yes');
  });
});
