/**
 * A store far larger than gRPC's 4 MB message reaches a new manager through the gRPC raft
 * transport's chunked snapshot stream: 2 shoald managers on loopback, 8 node objects (created
 * through the CA's join RPC) carrying 3 MiB of labels each (24 MiB of objects), rewritten until
 * the log was compacted behind a snapshot; then a third manager joins, is sent the snapshot in
 * chunks of at most 1 MiB, and ends with the same objects (read from its own store, on its
 * cluster port, after a ReadIndex).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { CAClient, ControlClient, unary, type Node } from '@shoal/api';
import { createCsr, decodeKeyFile, generateNodeKey } from '@shoal/ca';
import { sleep } from '@shoal/common';
import { ShoaldProcess, controlClient, freePort, swarmClient, TEST_ADDR_POOL } from './test-util.js';
import { SNAPSHOT_CHUNK_BYTES, clusterChannelOptions } from './grpc-raft-transport.js';

interface Host {
  dir: string;
  port: number;
  socket: string;
  p: ShoaldProcess;
}

const NODES = 8;
const LABELS_PER_NODE = 12;
const LABEL_BYTES = 256 * 1024;
const ROUNDS = 4; // 4 x 24 MiB of entries: past the 64 MiB that triggers a snapshot and compaction

const procs: ShoaldProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function host(name: string): Promise<Host> {
  const dir = await mkdtemp(join(tmpdir(), `shoald-snap-${name}-`));
  dirs.push(dir);
  await writeFile(join(dir, 'none.json'), '{}');
  const port = await freePort();
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
    '--config',
    join(dir, 'none.json'),
  ]);
  procs.push(p);
  await p.ready();
  return { dir, port, socket, p };
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 120_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (ok(v)) return v;
      last = new Error(`not yet: ${JSON.stringify(v).slice(0, 300)}`);
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw last instanceof Error ? last : new Error(String(last));
    await sleep(250);
  }
}

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

/** ListNodes on a manager's cluster port: that manager's own store, after a ReadIndex. */
async function nodesOn(h: Host, tls: ChannelCredentials): Promise<Node[]> {
  const c = new ControlClient(`127.0.0.1:${h.port}`, tls, clusterChannelOptions());
  try {
    return (await unary(c.listNodes.bind(c), {}, { deadline: Date.now() + 30_000 })).Nodes ?? [];
  } finally {
    c.close();
  }
}

/** Snapshot files (`<term>-<index>.snap`) of a manager, with their index. */
async function snapshots(h: Host): Promise<{ name: string; index: number }[]> {
  const dir = join(h.dir, 'data', 'swarm', 'raft', 'snap');
  return (await readdir(dir))
    .filter((n) => n.endsWith('.snap'))
    .map((name) => ({ name, index: parseInt(name.split('-')[1]!.replace('.snap', ''), 16) }));
}

describe('raft snapshot chunks over the gRPC transport', () => {
  it('a 24 MiB store reaches a manager that joins after compaction, in chunks of at most 1 MiB', async () => {
    const [h1, h2, h3] = await Promise.all(['m1', 'm2', 'm3'].map((n) => host(n)));
    const s1 = swarmClient(h1!.socket);
    await unary(s1.init.bind(s1), { ...TEST_ADDR_POOL });
    s1.close();
    const local = controlClient(h1!.socket);
    const tokens = (await unary(local.getCluster.bind(local), {})).Cluster?.JoinTokens ?? {};
    const join_ = async (h: Host): Promise<void> => {
      const s = swarmClient(h.socket);
      try {
        await unary(s.join.bind(s), { JoinToken: tokens.Manager!, RemoteAddrs: [`127.0.0.1:${h1!.port}`] });
      } finally {
        s.close();
      }
    };
    await join_(h2!);

    // node objects through the CA's join RPC (anonymous TLS, the worker token), no processes
    const rootPem = await readFile(join(h1!.dir, 'data', 'swarm', 'certificates', 'root.crt'));
    const ca = new CAClient(
      `127.0.0.1:${h1!.port}`,
      credentials.createSsl(rootPem, null, null, { checkServerIdentity: () => undefined }),
      clusterChannelOptions(),
    );
    const ids: string[] = [];
    for (let i = 0; i < NODES; i++) {
      const res = await unary(ca.issueNodeCertificate.bind(ca), {
        CSR: Buffer.from(await createCsr(generateNodeKey())),
        Token: tokens.Worker!,
      });
      ids.push(res.NodeID!);
    }
    ca.close();

    // 3 MiB of labels per node, rewritten ROUNDS times
    for (let round = 0; round < ROUNDS; round++) {
      for (const id of ids) {
        const labels: Record<string, string> = { round: String(round) };
        for (let l = 0; l < LABELS_PER_NODE; l++) labels[`blob${l}`] = randomBytes(LABEL_BYTES / 2).toString('hex');
        await eventually(
          async () => {
            const cur = (await unary(local.getNode.bind(local), { NodeID: id })).Node!;
            return unary(local.updateNode.bind(local), {
              NodeID: id,
              NodeVersion: cur.Version,
              Spec: { ...cur.Spec, Labels: labels },
            });
          },
          () => true,
        );
      }
    }
    local.close();
    // the leader snapshotted and compacted
    const leaderSnaps = await eventually(
      async () => [...(await snapshots(h1!)), ...(await snapshots(h2!))],
      (s) => s.some((f) => f.index > 1),
    );
    assert.ok(
      leaderSnaps.some((f) => f.index > 1),
      'a snapshot past the bootstrap one',
    );

    // the third manager joins and is sent the snapshot in chunks
    await join_(h3!);
    const got = await h3!.p.waitLog((l) => l.msg === 'raft snapshot received', 180_000);
    const bytes = got['bytes'] as number;
    const chunks = got['chunks'] as number;
    process.stderr.write(`snapshot received: ${bytes} bytes in ${chunks} chunks\n`);
    assert.ok(bytes > 20 * 1024 * 1024, `snapshot of ${bytes} bytes`);
    assert.ok(chunks >= Math.ceil(bytes / SNAPSHOT_CHUNK_BYTES), `${chunks} chunks for ${bytes} bytes`);
    await eventually(
      () => snapshots(h3!),
      (s) => s.some((f) => f.index > 1),
    );

    // the same objects on the new manager's own store as on the first manager's
    const tls = await managerCredentials(h1!);
    const want = await nodesOn(h1!, tls);
    const summary = (ns: Node[]): string[] =>
      ns
        .filter((n) => ids.includes(n.ID!))
        .map((n) => `${n.ID} ${n.Version?.Index} ${JSON.stringify(n.Spec?.Labels)}`)
        .sort();
    const have = await eventually(
      () => nodesOn(h3!, tls),
      (ns) => summary(ns).join('\n') === summary(want).join('\n'),
    );
    assert.equal(summary(have).length, NODES);
    assert.ok(
      have.filter((n) => ids.includes(n.ID!)).every((n) => n.Spec?.Labels?.['round'] === String(ROUNDS - 1)),
      'the last round of labels',
    );
  });
});
