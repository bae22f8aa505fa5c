// VIP load balancing on real kernel objects (root): one "node" namespace with an overlay network
// made by OverlayDataPlane, a client and three backend namespaces on it running TCP servers that
// answer with their name, addresses and the VIP from the allocator (198.19.128.0/17). The client
// connects to the VIP; nftables in its namespace spreads the connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { run } from '@shoal/common';
import {
  InvalidAddressError,
  NetworkAllocator,
  OverlayDataPlane,
  VXLAN_ID_OPTION,
  VipBalancer,
  vipRules,
} from './index.js';

const SERVER = `require('net').createServer((s) => s.end(process.env.NAME)).listen(8080, '0.0.0.0', () => console.log('ready'));`;
const CLIENT = `
const net = require('net');
const one = () => new Promise((resolve) => {
  const s = net.connect(8080, process.env.VIP);
  let d = '';
  s.setTimeout(5000, () => { s.destroy(); resolve('timeout'); });
  s.on('data', (c) => { d += c; });
  s.on('end', () => resolve(d));
  s.on('error', (e) => resolve(e.code));
});
(async () => { const out = []; for (let i = 0; i < Number(process.env.N); i++) out.push(await one()); console.log(JSON.stringify(out)); })();
`;

function cleanups(t: { after: (fn: () => Promise<void>) => void }): (fn: () => Promise<unknown>) => void {
  const fns: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of fns.reverse()) await fn().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  });
  return (fn) => fns.push(fn);
}

function startServer(nsPath: string, name: string): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=${nsPath}`, '--', process.execPath, '-e', SERVER], {
    env: { ...process.env, NAME: name },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server ${name} exited (${code})`)));
    child.stdout.once('data', () => resolve(child));
  });
}

/** Stops a server and waits until it has exited. */
function stopServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill();
  });
}

async function connectMany(nsPath: string, vip: string, n: number): Promise<string[]> {
  const r = await run('nsenter', [`--net=${nsPath}`, '--', process.execPath, '-e', CLIENT], {
    env: { ...process.env, VIP: vip, N: String(n) },
  });
  return JSON.parse(r.stdout) as string[];
}

function counts(xs: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const x of xs) c[x] = (c[x] ?? 0) + 1;
  return c;
}

test('VIP: connections spread over the tasks, follow updates at once, refused without tasks', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const cleanup = cleanups(t);
  const ns = async (name: string): Promise<string> => {
    const full = `shoal-nwt-${tag}-${name}`;
    cleanup(async () => {
      if (existsSync(`/run/netns/${full}`)) await run('ip', ['netns', 'del', full]);
    });
    await run('ip', ['netns', 'add', full]);
    return `/run/netns/${full}`;
  };
  // the "node": a namespace whose underlay is a veth (no dummy driver here) with the VTEP address
  const host = await ns('node');
  const hostName = host.split('/').pop() ?? '';
  await run('ip', ['-n', hostName, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1']);
  await run('ip', ['-n', hostName, 'addr', 'add', '198.18.254.1/32', 'dev', 'ul0']);
  for (const dev of ['ul0', 'ul1']) await run('ip', ['-n', hostName, 'link', 'set', dev, 'up']);

  const alloc = new NetworkAllocator({ defaultAddrPool: ['198.19.128.0/17'] });
  const netId = randomBytes(12).toString('hex');
  const n = alloc.allocateNetwork({ ID: netId, Spec: { Name: `vip-${tag}` } });
  const spec = {
    id: netId,
    vni: Number(n.DriverState?.Options?.[VXLAN_ID_OPTION]),
    subnet: n.IPAMOptions?.Configs?.[0]?.Subnet ?? '',
    gateway: n.IPAMOptions?.Configs?.[0]?.Gateway ?? '',
  };
  const vip = alloc.allocateServiceVips('svc', [netId])[0]?.Addr ?? '';
  const dp = new OverlayDataPlane({ hostTag: `v${tag}`, vtepAddress: '198.18.254.1', hostNetns: host });
  cleanup(() => dp.removeNetwork(netId));
  const client = await ns('client');
  const backends: string[] = [];
  for (const name of ['client', 'b1', 'b2', 'b3']) {
    const path = name === 'client' ? client : await ns(name);
    const addr = alloc.allocateAddress(netId, `task:${name}`);
    await dp.attach(spec, { endpointId: `${name}.${netId}`, containerNetns: path, address: addr });
    if (name !== 'client') {
      const server = await startServer(path, name);
      cleanup(() => stopServer(server));
      backends.push(addr);
    }
  }
  const vipIp = vip.split('/')[0] ?? '';
  const lb = new VipBalancer(client);
  cleanup(() => lb.remove());

  // nothing answers on the VIP before the rules
  assert.ok(!['b1', 'b2', 'b3'].includes((await connectMany(client, vipIp, 1))[0] ?? ''));

  await lb.apply([{ vip, backends }]);
  const all = counts(await connectMany(client, vipIp, 60));
  assert.deepEqual(Object.keys(all).sort(), ['b1', 'b2', 'b3'], JSON.stringify(all));
  assert.equal((all['b1'] ?? 0) + (all['b2'] ?? 0) + (all['b3'] ?? 0), 60);

  // conntrack sees the VIP's connections (their source ports moved into NAT_PORTS) but not a
  // direct connection to a task: a probe table counts both kinds leaving the client (after SNAT)
  const probe = [
    'table ip probe {',
    '  chain out {',
    '    type filter hook postrouting priority 200; policy accept;',
    '    ct state untracked tcp dport 8080 counter',
    `    ct original ip daddr ${vipIp} tcp sport 61000-65535 counter`,
    `    ct original ip daddr ${vipIp} tcp sport != 61000-65535 counter`,
    '  }',
    '}',
  ].join('\n');
  await run('nsenter', [`--net=${client}`, '--', 'nft', '-f', '-'], { input: probe });
  const direct = counts(await connectMany(client, backends[0]?.split('/')[0] ?? '', 3));
  assert.deepEqual(direct, { b1: 3 }, 'a direct connection to a task works untracked');
  assert.deepEqual(
    Object.keys(counts(await connectMany(client, vipIp, 3))).every((k) => /^b[123]$/.test(k)),
    true,
  );
  const listed = await run('nsenter', [`--net=${client}`, '--', 'nft', 'list', 'table', 'ip', 'probe']);
  const packets = [...listed.stdout.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(packets.length, 3, listed.stdout);
  assert.ok((packets[0] ?? 0) >= 3, `direct connections untracked: ${listed.stdout}`);
  assert.ok((packets[1] ?? 0) >= 3, `VIP connections tracked, source port in NAT_PORTS: ${listed.stdout}`);
  assert.equal(packets[2], 0, `VIP connections with another source port: ${listed.stdout}`);
  await run('nsenter', [`--net=${client}`, '--', 'nft', 'delete', 'table', 'ip', 'probe']);

  // bad input changes nothing
  await assert.rejects(lb.apply([{ vip, backends: ['198.19.128.300'] }]), InvalidAddressError);
  assert.throws(
    () =>
      vipRules([
        { vip, backends },
        { vip, backends },
      ]),
    /given twice/,
  );
  assert.deepEqual(Object.keys(counts(await connectMany(client, vipIp, 6))).sort(), ['b1', 'b2', 'b3']);

  // b3 stops: the next connections never reach it
  await lb.apply([{ vip, backends: backends.slice(0, 2) }]);
  const two = counts(await connectMany(client, vipIp, 30));
  assert.deepEqual(Object.keys(two).sort(), ['b1', 'b2'], JSON.stringify(two));

  // no task left: refused at once rather than timing out
  await lb.apply([{ vip, backends: [] }]);
  assert.deepEqual(await connectMany(client, vipIp, 2), ['EHOSTUNREACH', 'EHOSTUNREACH']);

  await lb.remove();
  await lb.remove(); // idempotent
  const tables = await run('nsenter', [`--net=${client}`, '--', 'nft', 'list', 'tables']);
  assert.doesNotMatch(tables.stdout, /shoal_vip/);
});
