/**
 * The overlay data plane on real kernel objects: two lab hosts (each a network namespace with its
 * own underlay address), "container" namespaces on each, a network and addresses from the
 * allocator (pool 198.19.128.0/17), VXLAN between the hosts with learning off. Ping works only
 * while the peers' FDB and neighbour entries are programmed, and nothing is left afterwards.
 * Must run as root. Everything is named with a random tag and removed at the end, also on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '@shoal/common';
import { LabNotFoundError, labDown, labUp } from '@shoal/testkit';
import { NetworkAllocator, OverlayDataPlane, VXLAN_ID_OPTION, type OverlayNetworkSpec } from '@shoal/network';

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

/** Runs a command in a network namespace (path). */
function inNs(nsPath: string, cmd: string[]): ReturnType<typeof run> {
  return run('nsenter', [`--net=${nsPath}`, '--', ...cmd], { check: false });
}

async function canPing(fromNs: string, addr: string, size?: number): Promise<boolean> {
  const args = ['ping', '-c', '1', '-W', '1', addr];
  if (size !== undefined) args.push('-M', 'do', '-s', String(size));
  return (await inNs(fromNs, args)).code === 0;
}

interface JsonLink {
  ifname: string;
  mtu: number;
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

async function links(nsPath: string, details = false): Promise<JsonLink[]> {
  const r = await inNs(nsPath, ['ip', '-j', ...(details ? ['-d'] : []), 'addr', 'show']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as JsonLink[];
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

test('overlay across two lab hosts: reachable only while peers are programmed; nothing left after', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const lab = `ovl-${tag}`;
  const cleanup = cleanups(t);
  cleanup(() => downIfUp(lab));
  const s = await labUp({ name: lab, hosts: 2, registry: false });
  const [h1, h2] = s.hosts;
  assert.ok(h1 && h2);
  const host1 = `/run/netns/${h1.netns}`;
  const host2 = `/run/netns/${h2.netns}`;

  // the manager side: a network, and an address per task, from a 198.19.128.0/17 pool
  const alloc = new NetworkAllocator({ defaultAddrPool: ['198.19.128.0/17'], subnetSize: 24 });
  const netId = randomBytes(12).toString('hex');
  const network = alloc.allocateNetwork({
    ID: netId,
    Spec: { Name: `ov-${tag}`, DriverConfiguration: { Name: 'overlay' } },
  });
  const cfg = network.IPAMOptions?.Configs?.[0];
  const spec: OverlayNetworkSpec = {
    id: netId,
    vni: Number(network.DriverState?.Options?.[VXLAN_ID_OPTION]),
    subnet: cfg?.Subnet ?? '',
    gateway: cfg?.Gateway ?? '',
  };
  assert.match(spec.subnet, /^198\.19\.128\.0\/24$/);
  const addrOf = (task: string): string =>
    alloc.allocateTaskAttachments({ ID: task, NetworksAttachments: [{ Network: { ID: netId } }] })[0]?.Addresses?.[0] ??
    '';
  const [addrA, addrB, addrC] = [addrOf('ta'), addrOf('tb'), addrOf('tc')];
  const ipA = addrA.split('/')[0] ?? '';
  const ipB = addrB.split('/')[0] ?? '';

  // the node side, each in its lab host's namespace, with host-unique namespace names
  const dp1 = new OverlayDataPlane({ hostTag: `${tag}h1`, vtepAddress: h1.address, hostNetns: host1 });
  const dp2 = new OverlayDataPlane({ hostTag: `${tag}h2`, vtepAddress: h2.address, hostNetns: host2 });
  cleanup(() => dp1.removeNetwork(netId));
  cleanup(() => dp2.removeNetwork(netId));
  assert.notEqual(dp1.namespaceName(netId), dp2.namespaceName(netId));
  const ctA = await addNetns(cleanup, `shoal-nwt-${tag}-a`);
  const ctB = await addNetns(cleanup, `shoal-nwt-${tag}-b`);
  const ctC = await addNetns(cleanup, `shoal-nwt-${tag}-c`);

  // A and C on host 1 at once (serialised per network), B on host 2
  const [a, c] = await Promise.all([
    dp1.attach(spec, { endpointId: `ta.${netId}`, containerNetns: ctA, address: addrA }),
    dp1.attach(spec, { endpointId: `tc.${netId}`, containerNetns: ctC, address: addrC }),
  ]);
  const b = await dp2.attach(spec, { endpointId: `tb.${netId}`, containerNetns: `shoal-nwt-${tag}-b`, address: addrB });
  assert.equal((await dp1.attachments(netId)).length, 2);

  // the container side: eth0 with the task address, MAC 02:42:<ip>, MTU = underlay - 50
  const underlay = (await links(host1)).find((l) => l.ifname === 'eth0');
  assert.ok(underlay);
  const ethA = (await links(ctA)).find((l) => l.ifname === 'eth0');
  assert.ok(ethA, 'eth0 in container A');
  assert.equal(ethA.mtu, underlay.mtu - 50);
  assert.equal(a.mtu, underlay.mtu - 50);
  assert.equal(ethA.address, '02:42:c6:13:80:02');
  assert.deepEqual(
    ethA.addr_info?.filter((x) => x.family === 'inet').map((x) => `${x.local}/${x.prefixlen}`),
    [addrA],
  );
  assert.equal(c.mac, '02:42:c6:13:80:04');
  assert.equal(b.address, addrB);

  // the overlay namespace: vxlan0 with the VNI, port 4789, local VTEP, no learning, proxy ARP
  const ov1 = `/run/netns/${dp1.namespaceName(netId)}`;
  const vx = (await links(ov1, true)).find((l) => l.ifname === 'vxlan0');
  assert.equal(vx?.linkinfo?.info_kind, 'vxlan');
  assert.equal(vx?.linkinfo?.info_data?.['id'], spec.vni);
  assert.equal(vx?.linkinfo?.info_data?.['port'], 4789);
  assert.equal(vx?.linkinfo?.info_data?.['local'], h1.address);
  assert.equal(vx?.linkinfo?.info_data?.['learning'], false);
  assert.equal(vx?.linkinfo?.info_data?.['proxy'], true);
  // bridged frames skip br_netfilter's IP hooks in the overlay namespace (nothing filters there)
  if (existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables'))
    for (const k of ['iptables', 'ip6tables', 'arptables']) {
      const r = await inNs(ov1, ['sysctl', '-n', `net.bridge.bridge-nf-call-${k}`]);
      assert.equal(r.stdout.trim(), '0', `bridge-nf-call-${k} in the overlay namespace`);
    }
  // its UDP socket stays in the host namespace, on the underlay
  const udp = await inNs(host1, ['ss', '-H', '-u', '-l', '-n']);
  assert.match(udp.stdout, /:4789\b/);
  // the host namespace keeps only its own links (the vxlan device was moved out)
  assert.deepEqual((await links(host1)).map((l) => l.ifname).sort(), ['eth0', 'lo']);

  // learning off, nothing programmed: no way across
  assert.equal(await canPing(ctA, ipB), false, 'A reached B before any peer entry');
  // local traffic on the bridge works without entries
  assert.equal(await canPing(ctA, addrC.split('/')[0] ?? ''), true, 'A -> C on the same host');

  // program the peers (twice: idempotent)
  for (let i = 0; i < 2; i++) {
    await dp1.addPeer(netId, { vtep: h2.address, address: addrB });
    await dp2.addPeer(netId, { vtep: h1.address, address: addrA });
    await dp2.addPeer(netId, { vtep: h1.address, address: addrC });
  }
  assert.deepEqual(await dp1.peers(netId), [{ address: ipB, mac: b.mac, vtep: h2.address }]);
  assert.equal(await canPing(ctA, ipB), true, 'A -> B over VXLAN');
  assert.equal(await canPing(ctB, ipA), true, 'B -> A over VXLAN');
  // a full-size packet with DF set passes: the MTU leaves room for VXLAN's 50 bytes
  assert.equal(await canPing(ctA, ipB, a.mtu - 28), true, 'full-MTU packet A -> B');

  // a new instance (a restarted agent) finds the attachments in the kernel
  const restarted = new OverlayDataPlane({ hostTag: `${tag}h1`, vtepAddress: h1.address, hostNetns: host1 });
  assert.equal((await restarted.attachments(netId)).length, 2);
  // a lost vxlan0 is repaired without touching the attachments; its entries are programmed again
  await inNs(ov1, ['ip', 'link', 'del', 'vxlan0']);
  assert.equal(await canPing(ctA, ipB), false, 'A reached B without vxlan0');
  await restarted.ensureNetwork(spec);
  await restarted.addPeer(netId, { vtep: h2.address, address: addrB });
  assert.equal(await canPing(ctA, ipB), true, 'A -> B after the repair');
  assert.equal((await links(ctA)).find((l) => l.ifname === 'eth0')?.address, a.mac);

  // the peer goes (twice: idempotent): no way across again
  for (let i = 0; i < 2; i++) await dp1.removePeer(netId, { vtep: h2.address, address: addrB });
  assert.deepEqual(await dp1.peers(netId), []);
  assert.equal(await canPing(ctA, ipB), false, 'A reached B after the peer was removed');

  // detach: the namespace stays while C is attached, goes with the last attachment
  assert.equal(await dp1.detach(netId, `ta.${netId}`), false);
  assert.ok(dp1.hasNetwork(netId));
  assert.equal(
    (await links(ctA)).some((l) => l.ifname === 'eth0'),
    false,
    'eth0 left in A',
  );
  assert.equal(await dp1.detach(netId, `tc.${netId}`), true);
  assert.equal(await dp2.detach(netId, `tb.${netId}`), true);
  assert.equal(await dp2.detach(netId, `tb.${netId}`), true); // idempotent
  const left = readdirSync('/run/netns').filter((n) => n.startsWith(`shoal-ov-${tag}`));
  assert.deepEqual(left, []);
  for (const h of [host1, host2]) assert.deepEqual((await links(h)).map((l) => l.ifname).sort(), ['eth0', 'lo']);
  for (const ct of [ctA, ctB, ctC])
    assert.deepEqual(
      (await links(ct)).map((l) => l.ifname),
      ['lo'],
    );
  assert.doesNotMatch((await inNs(host1, ['ss', '-H', '-u', '-l', '-n'])).stdout, /:4789\b/);
});
