import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blockOf,
  blockPrefix,
  bridgeName,
  checkLabName,
  gatewayAddress,
  hostAddress,
  labTag,
  netnsPattern,
  parseHostCount,
  preferredBlock,
  vethName,
  vethPattern,
  SUBNET_BLOCKS,
  LAB_GATEWAY_SUBNET,
  LAB_OVERLAY_POOL,
} from './lab-names.js';
import { LabHostCountError, LabInvalidNameError } from '../errors.js';

test('interface names fit IFNAMSIZ for every valid lab name and host index', () => {
  for (const lab of ['a', 'demo', 'abcdefgh', 'abcdefghi', 'x'.repeat(31), 'a-b-c-d-e-f-g-h-i-j']) {
    assert.ok(bridgeName(lab).length <= 15, bridgeName(lab));
    assert.ok(vethName(lab, 64).length <= 15, vethName(lab, 64));
    assert.ok(`sd${labTag(lab)}-64`.length <= 15);
  }
  assert.equal(bridgeName('demo'), 'shl-demo');
  assert.equal(vethName('demo', 3), 'svdemo-3');
  assert.match(labTag('a-long-lab-name'), /^a-_[0-9a-f]{5}$/);
  assert.notEqual(labTag('a-long-lab-name-1'), labTag('a-long-lab-name-2'));
});

test('name patterns select one lab only', () => {
  assert.ok(netnsPattern('a').test('shoal-a-h1'));
  assert.ok(netnsPattern('a').test('shoal-a-h64'));
  assert.equal(netnsPattern('a').test('shoal-a-b-h1'), false, "lab a must not match lab a-b's hosts");
  assert.equal(netnsPattern('a-b').test('shoal-a-h1'), false);
  assert.ok(vethPattern('a').test('sva-12'));
  assert.ok(vethPattern('a').test('sda-1') && vethPattern('a').test('sra-1'));
  assert.equal(vethPattern('a').test('sva-1-2'), false, "lab a must not match lab a-1's links");
});

test('subnet blocks stay inside 198.18.0.0/15 and skip 198.18.0.0/24', () => {
  for (const lab of ['demo', 'x', 'mesh-123abc', 'z'.repeat(31)]) {
    const b = preferredBlock(lab);
    assert.ok(b >= 1 && b < SUBNET_BLOCKS);
  }
  assert.equal(blockPrefix(1), '198.18.1');
  assert.equal(blockPrefix(256), '198.19.0');
  assert.equal(blockPrefix(511), '198.19.255');
  for (const b of [1, 255, 256, 511]) {
    assert.equal(blockOf(gatewayAddress(b)), b);
    assert.equal(blockOf(hostAddress(b, 64)), b);
  }
  assert.equal(hostAddress(5, 1), '198.18.5.11');
  assert.equal(hostAddress(5, 64), '198.18.5.74');
  assert.equal(blockOf('10.0.0.1'), undefined);
});

/** [first, last] address of a CIDR as numbers. */
function cidrRange(cidr: string): [number, number] {
  const [ip = '', len = '32'] = cidr.split('/');
  const base = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return [base, base + size - 1];
}

test('the overlay pool, the gateway bridge subnet and the underlay blocks never overlap', () => {
  const [pool0, pool1] = cidrRange(LAB_OVERLAY_POOL);
  const [gw0, gw1] = cidrRange(LAB_GATEWAY_SUBNET);
  const [under0] = cidrRange(`${blockPrefix(1)}.0/24`);
  const [, under1] = cidrRange(`${blockPrefix(SUBNET_BLOCKS - 1)}.0/24`);
  const [all0, all1] = cidrRange('198.18.0.0/15');
  for (const [a, b] of [
    [pool0, pool1],
    [gw0, gw1],
    [under0, under1],
  ] as const)
    assert.ok(a >= all0 && b <= all1, 'inside 198.18.0.0/15');
  // the allocator hands out the pool's subnets in order: even its last one stays off the bridge
  assert.ok(pool1 < gw0 || gw1 < pool0, `${LAB_OVERLAY_POOL} overlaps ${LAB_GATEWAY_SUBNET}`);
  assert.ok(under1 < pool0 && under1 < gw0, 'an underlay block reaches the overlay pool or the gateway bridge');
});

test('lab names and host counts are validated', () => {
  for (const bad of ['', 'Demo', '1lab', 'a_b', 'a.b', 'lab-', 'x'.repeat(32)]) {
    assert.throws(() => checkLabName(bad), LabInvalidNameError, bad);
  }
  checkLabName('lab-1');
  for (const bad of ['0', '65', '-1', '1.5', 'abc', '', ' '])
    assert.throws(() => parseHostCount(bad), LabHostCountError, bad);
  assert.equal(parseHostCount('64'), 64);
  assert.equal(parseHostCount(1), 1);
});
