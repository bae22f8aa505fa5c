/**
 * The embedded DNS server as a container sees it: the server runs in a lab host's namespace (as
 * the agent would), a "container" namespace on that host's gateway bridge asks 127.0.0.11:53 (over
 * UDP and TCP) and gets the names of its networks, through the nftables redirect; without the redirect nothing
 * answers there. The server scopes answers by the asking container's address. Root only;
 * everything is removed at the end, also on failure.
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
import { GatewayBridge, installDnsRedirect, removeDnsRedirect } from '@shoal/network';

const root = await mkdtemp(join(tmpdir(), 'shoal-labroot-'));
process.env['SHOAL_LAB_ROOT'] = root;
after(() => rm(root, { recursive: true, force: true }));
const networkModule = new URL('../../packages/network/dist/index.js', import.meta.url).href;

const SERVER = `
const { EmbeddedDnsServer, DnsTable } = await import(process.env.NETWORK_MODULE);
const table = new DnsTable();
table.add('web', '198.19.128.10', 'n1');
for (const ip of ['198.19.128.11', '198.19.128.12']) table.add('tasks.web', ip, 'n1');
table.add('db', '198.19.129.5', 'n2');
const server = new EmbeddedDnsServer({
  table,
  scope: (client) => new Set(client.address === process.env.CLIENT ? ['n1'] : []),
});
const { port } = await server.listen(process.env.ADDR, 0);
console.log(port);
`;
const CLIENT = `
const { Resolver } = require('node:dns').promises;
const r = new Resolver({ timeout: 1500, tries: 1 });
r.setServers(['127.0.0.11']);
r.resolve4(process.env.NAME).then(
  (a) => console.log(JSON.stringify(a.sort())),
  (e) => console.log(JSON.stringify(e.code)),
);
`;

/** One query over TCP to 127.0.0.11:53 (length-prefixed): the A records, or the error code. */
const TCP_CLIENT = `
const net = require('node:net');
const labels = process.env.NAME.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
const h = Buffer.alloc(12);
h.writeUInt16BE(7, 0);
h.writeUInt16BE(0x0100, 2);
h.writeUInt16BE(1, 4);
const q = Buffer.concat([h, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
const len = Buffer.alloc(2);
len.writeUInt16BE(q.length, 0);
const s = net.connect({ host: '127.0.0.11', port: 53 }, () => s.write(Buffer.concat([len, q])));
let got = Buffer.alloc(0);
s.setTimeout(3000, () => { console.log(JSON.stringify('timeout')); s.destroy(); });
s.on('error', (e) => console.log(JSON.stringify(e.code)));
s.on('data', (d) => {
  got = Buffer.concat([got, d]);
  if (got.length < 2 || got.length < 2 + got.readUInt16BE(0)) return;
  const m = got.subarray(2);
  const ips = [];
  let off = q.length;
  for (let i = 0; i < m.readUInt16BE(6); i++) {
    if (m.readUInt16BE(off + 2) === 1) ips.push([...m.subarray(off + 12, off + 16)].join('.'));
    off += 12 + m.readUInt16BE(off + 10);
  }
  console.log(JSON.stringify(ips.sort()));
  s.destroy();
});
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

/** What the container gets for `name` over TCP from 127.0.0.11:53. */
async function askTcp(ct: string, name: string): Promise<unknown> {
  const r = await run('nsenter', [`--net=${ct}`, '--', process.execPath, '-e', TCP_CLIENT], {
    env: { ...process.env, NAME: name },
  });
  return JSON.parse(r.stdout);
}

/** What a resolver in the container gets for `name` from 127.0.0.11: addresses or an error code. */
async function ask(ct: string, name: string): Promise<unknown> {
  const r = await run('nsenter', [`--net=${ct}`, '--', process.execPath, '-e', CLIENT], {
    env: { ...process.env, NAME: name },
  });
  return JSON.parse(r.stdout);
}

test('containers reach the embedded DNS server at 127.0.0.11 and see their networks only', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const lab = `dns-${tag}`;
  const cleanup = cleanups(t);
  cleanup(() => downIfUp(lab));
  const s = await labUp({ name: lab, hosts: 1, registry: false });
  const h1 = s.hosts[0];
  assert.ok(h1);
  const host = `/run/netns/${h1.netns}`;
  const subnet = s.subnet === '198.19.250.0/24' ? '198.19.251.0/24' : '198.19.250.0/24';
  const gw = new GatewayBridge({ subnet, hostNetns: host });
  cleanup(() => gw.teardown());
  const containers: string[] = [];
  for (const n of ['a', 'b']) {
    const name = `shoal-nwt-${tag}-d${n}`;
    cleanup(async () => {
      if (existsSync(`/run/netns/${name}`)) await run('ip', ['netns', 'del', name]);
    });
    await run('ip', ['netns', 'add', name]);
    containers.push(`/run/netns/${name}`);
  }
  const [ctA = '', ctB = ''] = containers;
  const a = await gw.attach({ endpointId: `a-${tag}`, containerNetns: ctA });
  const b = await gw.attach({ endpointId: `b-${tag}`, containerNetns: ctB });

  // the server, in the host's namespace, on the gateway address; A is on n1, B on nothing
  const server = spawn('nsenter', [`--net=${host}`, '--', process.execPath, '--input-type=module', '-e', SERVER], {
    env: { ...process.env, NETWORK_MODULE: networkModule, ADDR: a.gateway, CLIENT: a.address.split('/')[0] },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup(() => stop(server));
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.once('exit', (code) => reject(new Error(`dns server exited (${code})`)));
    server.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });

  // nothing answers at 127.0.0.11 before the redirect
  assert.notDeepEqual(await ask(ctA, 'web'), ['198.19.128.10']);
  assert.notDeepEqual(await askTcp(ctA, 'web'), ['198.19.128.10']);

  for (const [ct, att] of [
    [ctA, a],
    [ctB, b],
  ] as const)
    await installDnsRedirect({
      containerNetns: ct,
      uplink: att.ifname,
      uplinkAddress: att.address,
      server: { address: a.gateway, port },
    });
  assert.deepEqual(await ask(ctA, 'web'), ['198.19.128.10']);
  assert.deepEqual(await ask(ctA, 'tasks.web'), ['198.19.128.11', '198.19.128.12']);
  // over TCP too, through the same redirect and scope
  assert.deepEqual(await askTcp(ctA, 'tasks.web'), ['198.19.128.11', '198.19.128.12']);
  assert.deepEqual(await askTcp(ctB, 'web'), []);
  // db is on n2, which A is not on; B is on no network: neither gets an answer (no upstreams here)
  assert.equal(await ask(ctA, 'db'), 'ENOTFOUND');
  assert.equal(await ask(ctB, 'web'), 'ENOTFOUND');

  await removeDnsRedirect(ctA);
  await removeDnsRedirect(ctA); // idempotent
  assert.notDeepEqual(await ask(ctA, 'web'), ['198.19.128.10']);
  const tables = await run('nsenter', [`--net=${ctA}`, '--', 'nft', 'list', 'tables']);
  assert.doesNotMatch(tables.stdout, /shoal_dns/);
});
