/**
 * The Swarm side of the cluster benchmark gives Docker only addresses in 198.18.0.0/24: never
 * 10/8, 172.16/12 or 192.168/16 (Docker's defaults), never the labs' overlay pool or a lab
 * underlay block, and the host underlay, docker0, docker_gwbridge and overlay ranges are
 * disjoint inside each host's namespace. (No daemon is started: the values are checked.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LAB_OVERLAY_POOL } from '../lab/lab-names.js';
import { SWARM_BIP, SWARM_GW_POOL, SWARM_OVERLAY_MASK, SWARM_OVERLAY_POOL, SwarmHosts } from './swarm-hosts.js';

function ipNum(a: string): number {
  const p = a.split('.').map(Number);
  assert.equal(p.length, 4, a);
  return (((p[0] ?? 0) << 24) | ((p[1] ?? 0) << 16) | ((p[2] ?? 0) << 8) | (p[3] ?? 0)) >>> 0;
}

/** [first, last] of a CIDR (the network of an interface address like 198.18.0.193/28). */
function range(cidr: string): [number, number] {
  const [addr = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const first = Math.floor(ipNum(addr) / size) * size;
  return [first, first + size - 1];
}

const inside = (a: string, b: string): boolean => {
  const [x0, x1] = range(a);
  const [y0, y1] = range(b);
  return x0 >= y0 && x1 <= y1;
};
const overlaps = (a: string, b: string): boolean => {
  const [x0, x1] = range(a);
  const [y0, y1] = range(b);
  return x0 <= y1 && y0 <= x1;
};

test('every address the Swarm side gives Docker is in 198.18.0.0/24 and off-limits ranges are never touched', () => {
  const hosts = new SwarmHosts(3, 2, () => undefined).hosts;
  const underlay = hosts.map((h) => `${h.address}/26`);
  const ranges = [...underlay, SWARM_BIP, `${SWARM_GW_POOL.base}`, SWARM_OVERLAY_POOL];
  for (const r of ranges) {
    assert.ok(inside(r, '198.18.0.0/24'), `${r} is outside 198.18.0.0/24`);
    for (const bad of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', LAB_OVERLAY_POOL, '198.18.1.0/24'])
      assert.ok(!overlaps(r, bad), `${r} overlaps ${bad}`);
  }
  // inside a host's namespace: underlay, docker0, docker_gwbridge pool and overlay pool are disjoint
  const parts = [underlay[0] ?? '', SWARM_BIP, SWARM_GW_POOL.base, SWARM_OVERLAY_POOL];
  for (const [i, a] of parts.entries())
    for (const b of parts.slice(i + 1)) assert.ok(!overlaps(a, b), `${a} overlaps ${b}`);
  assert.ok(SWARM_GW_POOL.size >= Number(SWARM_GW_POOL.base.split('/')[1]) && SWARM_GW_POOL.size <= 29);
  assert.equal(SWARM_OVERLAY_MASK, Number(SWARM_OVERLAY_POOL.split('/')[1]));
  // five hosts, distinct addresses, all in the one /26
  assert.equal(new Set(hosts.map((h) => h.address)).size, 5);
  assert.deepEqual(
    hosts.map((h) => h.role),
    ['manager', 'manager', 'manager', 'worker', 'worker'],
  );
  assert.equal(new Set(underlay.map((u) => range(u)[0])).size, 1);
});
