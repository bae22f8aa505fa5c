/**
 * The routing mesh on real kernel objects: an `ingress` overlay across two lab hosts, one task
 * ("container" namespace running a TCP server) on h2, each host attached to the ingress overlay
 * itself, and the published port DNATed by nftables on both. A client on a third host reaches the
 * task through either host's address; a host whose table is removed no longer answers. Root
 * only; everything is removed at the end, also on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '@shoal/common';
import { LabNotFoundError, labDown, labUp } from '@shoal/testkit';
import { GatewayBridge, NetworkAllocator, OverlayDataPlane, PortPublisher, VXLAN_ID_OPTION } from '@shoal/network';

const root = await mkdtemp(join(tmpdir(), 'shoal-labroot-'));
process.env['SHOAL_LAB_ROOT'] = root;
after(() => rm(root, { recursive: true, force: true }));

const SERVER = `require('net').createServer((s) => s.end('task')).listen(8080, '0.0.0.0', () => console.log('ready'));`;
const CLIENT = `
const s = require('net').connect(Number(process.env.PORT), process.env.ADDR);
let d = '';
s.setTimeout(3000, () => { s.destroy(); console.log(JSON.stringify('timeout')); });
s.on('data', (c) => { d += c; });
s.on('end', () => console.log(JSON.stringify(d)));
s.on('error', (e) => console.log(JSON.stringify(e.code)));
`;

async function downIfUp(name: string): Promise<void> {
  try {
    await labDown(name);
  } catch (err) {
    if (!(err instanceof LabNotFoundError)) throw err;
  }
}

function cleanups(t: { after: (fn: () => Promise<void>) => void }): (fn: () => Promise<unknown>) => void {
  const fns: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of fns.reverse()) await fn().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  });
  return (fn) => fns.push(fn);
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill();
  });
}

async function connect(fromNs: string, addr: string, port: number): Promise<unknown> {
  const r = await run('nsenter', [`--net=${fromNs}`, '--', process.execPath, '-e', CLIENT], {
    env: { ...process.env, ADDR: addr, PORT: String(port) },
  });
  return JSON.parse(r.stdout);
}

test('ingress routing mesh: a published port answers on every node and reaches the task over the overlay', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const lab = `ing-${tag}`;
  const cleanup = cleanups(t);
  cleanup(() => downIfUp(lab));
  const s = await labUp({ name: lab, hosts: 3, registry: false });
  const [h1, h2, h3] = s.hosts;
  assert.ok(h1 && h2 && h3);
  const ns = (h: { netns: string }): string => `/run/netns/${h.netns}`;

  const alloc = new NetworkAllocator({ defaultAddrPool: ['198.19.128.0/17'] });
  const id = randomBytes(12).toString('hex');
  const n = alloc.allocateNetwork({ ID: id, Spec: { Name: 'ingress', Ingress: true } });
  const spec = {
    id,
    vni: Number(n.DriverState?.Options?.[VXLAN_ID_OPTION]),
    subnet: n.IPAMOptions?.Configs?.[0]?.Subnet ?? '',
    gateway: n.IPAMOptions?.Configs?.[0]?.Gateway ?? '',
  };
  const dp1 = new OverlayDataPlane({ hostTag: `${tag}i1`, vtepAddress: h1.address, hostNetns: ns(h1) });
  const dp2 = new OverlayDataPlane({ hostTag: `${tag}i2`, vtepAddress: h2.address, hostNetns: ns(h2) });
  cleanup(() => dp1.removeNetwork(id));
  cleanup(() => dp2.removeNetwork(id));

  // the task on h2
  const taskNs = `shoal-nwt-${tag}-task`;
  cleanup(async () => {
    if (existsSync(`/run/netns/${taskNs}`)) await run('ip', ['netns', 'del', taskNs]);
  });
  await run('ip', ['netns', 'add', taskNs]);
  const taskAddr = alloc.allocateAddress(id, 'task:t1');
  await dp2.attach(spec, { endpointId: `t1.${id}`, containerNetns: taskNs, address: taskAddr });
  const server = spawn('nsenter', [`--net=/run/netns/${taskNs}`, '--', process.execPath, '-e', SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup(() => stop(server));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    server.stdout.once('data', () => resolve());
  });

  // each node on the ingress overlay itself (Docker's ingress sandbox), and the peers
  const sbox1 = alloc.allocateAddress(id, 'node:h1');
  const sbox2 = alloc.allocateAddress(id, 'node:h2');
  await dp1.attach(spec, { endpointId: `node.${id}`, containerNetns: ns(h1), address: sbox1, ifname: 'shoal_ing' });
  await dp2.attach(spec, { endpointId: `node.${id}`, containerNetns: ns(h2), address: sbox2, ifname: 'shoal_ing' });
  await dp1.addPeer(id, { vtep: h2.address, address: taskAddr });
  await dp1.addPeer(id, { vtep: h2.address, address: sbox2 });
  await dp2.addPeer(id, { vtep: h1.address, address: sbox1 });

  const port = 30000 + (parseInt(tag, 16) % 2000);
  assert.notEqual(await connect(ns(h3), h1.address, port), 'task');
  const pub1 = new PortPublisher(ns(h1));
  const pub2 = new PortPublisher(ns(h2));
  cleanup(() => pub1.remove());
  cleanup(() => pub2.remove());
  const ports = [{ protocol: 'tcp' as const, publishedPort: port, targetPort: 8080, backends: [taskAddr] }];
  await pub1.apply(ports, { masqueradeVia: ['shoal_ing'] });
  await pub2.apply(ports, { masqueradeVia: ['shoal_ing'] });

  // from a third host, through either node (h1 has no task: over the overlay to h2)
  assert.equal(await connect(ns(h3), h1.address, port), 'task');
  assert.equal(await connect(ns(h3), h2.address, port), 'task');
  // and from a node itself (output hook)
  assert.equal(await connect(ns(h1), h1.address, port), 'task');

  // no task left: refused at once
  await pub1.apply([{ ...ports[0], backends: [] } as (typeof ports)[0]], { masqueradeVia: ['shoal_ing'] });
  assert.equal(await connect(ns(h3), h1.address, port), 'ECONNREFUSED');
  // a node without the table does not answer; the other still does
  await pub1.remove();
  await pub1.remove(); // idempotent
  assert.notEqual(await connect(ns(h3), h1.address, port), 'task');
  assert.equal(await connect(ns(h3), h2.address, port), 'task');
  await assert.rejects(pub2.apply([...ports, ...ports]), /published twice/);
  assert.equal(await connect(ns(h3), h2.address, port), 'task', 'bad input changed the table');
  const tables = await run('nsenter', [`--net=${ns(h1)}`, '--', 'nft', 'list', 'tables']);
  assert.doesNotMatch(tables.stdout, /shoal_ports/);
});

test('host-mode published port: only the node of the task answers, straight to the task on its gateway bridge', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const lab = `hpm-${tag}`;
  const cleanup = cleanups(t);
  cleanup(() => downIfUp(lab));
  const s = await labUp({ name: lab, hosts: 2, registry: false });
  const [h1, h2] = s.hosts;
  assert.ok(h1 && h2);
  const ns = (h: { netns: string }): string => `/run/netns/${h.netns}`;
  const subnet = s.subnet === '198.19.250.0/24' ? '198.19.251.0/24' : '198.19.250.0/24';
  const gw = new GatewayBridge({ subnet, hostNetns: ns(h2) });
  cleanup(() => gw.teardown());
  const taskNs = `shoal-nwt-${tag}-htask`;
  cleanup(async () => {
    if (existsSync(`/run/netns/${taskNs}`)) await run('ip', ['netns', 'del', taskNs]);
  });
  await run('ip', ['netns', 'add', taskNs]);
  const att = await gw.attach({ endpointId: `t.${tag}`, containerNetns: taskNs });
  const server = spawn('nsenter', [`--net=/run/netns/${taskNs}`, '--', process.execPath, '-e', SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup(() => stop(server));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    server.stdout.once('data', () => resolve());
  });
  const port = 30000 + (parseInt(tag, 16) % 2000);
  const pub = new PortPublisher(ns(h2));
  cleanup(() => pub.remove());
  assert.notEqual(await connect(ns(h1), h2.address, port), 'task');
  await pub.apply([{ protocol: 'tcp', publishedPort: port, targetPort: 8080, backends: [att.address] }]);
  assert.equal(await connect(ns(h1), h2.address, port), 'task');
  assert.equal(await connect(ns(h2), h2.address, port), 'task');
  // the other node does not publish it
  assert.notEqual(await connect(ns(h2), h1.address, port), 'task');
});
