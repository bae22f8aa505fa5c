/**
 * The gateway bridge on real kernel objects in a lab host: a "container" namespace attached to
 * shoal_gwbridge reaches another lab host only through the masquerade (the other host has no
 * route back to the bridge's subnet), containers on the bridge cannot reach each other, a new
 * instance reads the allocations back from the kernel, and teardown leaves nothing. Root only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '@shoal/common';
import { LabNotFoundError, labDown, labUp } from '@shoal/testkit';
import { GWBRIDGE_NAME, GatewayBridge, SubnetOverlapError } from '@shoal/network';

const root = await mkdtemp(join(tmpdir(), 'shoal-labroot-'));
process.env['SHOAL_LAB_ROOT'] = root;
after(() => rm(root, { recursive: true, force: true }));

async function downIfUp(name: string): Promise<void> {
  try {
    await labDown(name);
  } catch (err) {
    if (!(err instanceof LabNotFoundError)) throw err;
  }
}

function inNs(nsPath: string, cmd: string[]): ReturnType<typeof run> {
  return run('nsenter', [`--net=${nsPath}`, '--', ...cmd], { check: false });
}

async function canPing(fromNs: string, addr: string): Promise<boolean> {
  return (await inNs(fromNs, ['ping', '-c', '1', '-W', '1', addr])).code === 0;
}

async function linkNames(nsPath: string): Promise<string[]> {
  const r = await inNs(nsPath, ['ip', '-j', 'link', 'show']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
}

/**
 * Cleanups run last-registered first (the lab last), each even when an earlier one failed; the
 * first failure is rethrown after all ran.
 */
function cleanups(t: { after: (fn: () => Promise<void>) => void }): (fn: () => Promise<unknown>) => void {
  const fns: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of fns.reverse()) await fn().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  });
  return (fn) => fns.push(fn);
}

async function addNetns(cleanup: (fn: () => Promise<unknown>) => void, name: string): Promise<string> {
  cleanup(async () => {
    if (existsSync(`/run/netns/${name}`)) await run('ip', ['netns', 'del', name]);
  });
  await run('ip', ['netns', 'add', name]);
  return `/run/netns/${name}`;
}

test('gateway bridge: egress by masquerade only, isolated ports, read back after restart, no traces', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const lab = `gwb-${tag}`;
  const cleanup = cleanups(t);
  cleanup(() => downIfUp(lab));
  const s = await labUp({ name: lab, hosts: 2, registry: false });
  const [h1, h2] = s.hosts;
  assert.ok(h1 && h2);
  const host1 = `/run/netns/${h1.netns}`;
  // a node-local subnet apart from the lab's own /24
  const subnet = s.subnet === '198.19.250.0/24' ? '198.19.251.0/24' : '198.19.250.0/24';
  const gw = new GatewayBridge({ subnet, hostNetns: host1 });
  cleanup(() => gw.teardown());

  // a subnet on top of the host's own underlay is refused, and makes nothing
  const clash = new GatewayBridge({ subnet: s.subnet, hostNetns: host1 });
  await assert.rejects(clash.ensure(), SubnetOverlapError);
  assert.deepEqual(await linkNames(host1), ['eth0', 'lo']);

  const ctA = await addNetns(cleanup, `shoal-nwt-${tag}-ga`);
  const ctB = await addNetns(cleanup, `shoal-nwt-${tag}-gb`);
  const ctC = await addNetns(cleanup, `shoal-nwt-${tag}-gc`);
  assert.equal(await canPing(ctA, h2.address), false);

  const a = await gw.attach({ endpointId: `a-${tag}`, containerNetns: ctA });
  const b = await gw.attach({ endpointId: `b-${tag}`, containerNetns: ctB });
  assert.equal(a.ifname, 'eth1');
  assert.equal(a.gateway, subnet.replace(/0\/24$/, '1'));
  assert.notEqual(a.address, b.address);
  const route = await inNs(ctA, ['ip', 'route', 'show', 'default']);
  assert.match(route.stdout, new RegExp(`default via ${a.gateway.replace(/\./g, '\\.')} dev eth1`));

  // h2 only knows the lab /24: its replies reach A only because A's packets left as h1
  assert.equal(await canPing(ctA, h2.address), true, 'A -> other host through the NAT');
  // without the masquerade there is no way back
  await inNs(host1, ['nft', 'delete', 'table', 'ip', 'shoal_gw']);
  assert.equal(await canPing(ctA, h2.address), false, 'A reached the other host without NAT');
  await gw.ensure(); // puts the table back
  assert.equal(await canPing(ctA, h2.address), true, 'A -> other host after ensure');

  // containers on the bridge reach the gateway, not each other
  assert.equal(await canPing(ctA, a.gateway), true);
  assert.equal(await canPing(ctA, b.address.split('/')[0] ?? ''), false, 'A reached B through the gateway bridge');

  // a restarted agent (a new instance) reads the allocations back: C gets a new address
  const again = new GatewayBridge({ subnet, hostNetns: host1 });
  const c = await again.attach({ endpointId: `c-${tag}`, containerNetns: ctC });
  assert.ok(![a.address, b.address].includes(c.address), `${c.address} given twice`);
  assert.equal((await again.attachments()).length, 3);

  await again.detach(`b-${tag}`);
  await again.detach(`b-${tag}`); // idempotent
  assert.deepEqual(await linkNames(ctB), ['lo']);
  await again.teardown();
  assert.deepEqual(await linkNames(host1), ['eth0', 'lo']);
  for (const ct of [ctA, ctC]) assert.deepEqual(await linkNames(ct), ['lo']);
  const tables = await inNs(host1, ['nft', 'list', 'tables']);
  assert.doesNotMatch(tables.stdout, /shoal_gw/);
  assert.ok(!(await linkNames(host1)).includes(GWBRIDGE_NAME));
});
