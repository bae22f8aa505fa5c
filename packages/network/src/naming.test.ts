// Names and pure helpers of the data plane: MACs from addresses, interface and namespace names
// within the kernel's limits, option checks, the VIP ruleset, and ip batches refusing arguments
// that would be split.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DataPlaneError,
  InvalidAddressError,
  NetlinkCli,
  OverlayDataPlane,
  gwVethName,
  macFromIp,
  publishedPortRules,
  vethName,
  vipRules,
} from './index.js';

test("MACs are Docker's 02:42 followed by the address bytes", () => {
  assert.equal(macFromIp('198.19.128.2'), '02:42:c6:13:80:02');
  assert.equal(macFromIp('198.19.255.254/17'), '02:42:c6:13:ff:fe');
  assert.throws(() => macFromIp('198.19.1'), InvalidAddressError);
});

test('interface names fit in 15 characters, are stable and differ per endpoint', () => {
  for (const f of [vethName, gwVethName]) {
    const a = f('task1.net1');
    assert.equal(a, f('task1.net1'));
    assert.notEqual(a, f('task2.net1'));
    assert.ok(a.length <= 15, a);
  }
  assert.match(vethName('x'), /^vo[0-9a-f]{11}$/);
  assert.match(gwVethName('x'), /^gw[0-9a-f]{11}$/);
});

test('namespace names carry the host tag; bad options are refused', () => {
  const dp = new OverlayDataPlane({ hostTag: 'node7', vtepAddress: '198.18.0.7' });
  assert.equal(dp.namespaceName('AbCdEf0123456789xyz'), 'shoal-ov-node7-abcdef012345');
  assert.throws(() => dp.namespaceName('../x'), /invalid network ID/);
  assert.throws(() => new OverlayDataPlane({ hostTag: 'Node-7', vtepAddress: '198.18.0.7' }), /host tag/);
  assert.throws(() => new OverlayDataPlane({ hostTag: 'n', vtepAddress: 'h1' }), /VTEP address/);
  assert.throws(
    () => new OverlayDataPlane({ hostTag: 'n', vtepAddress: '198.18.0.7', dataPathPort: 80 }),
    /1024\.\.49151/,
  );
});

test('the VIP ruleset: round robin over several tasks, plain DNAT for one, reject for none', () => {
  const rules = vipRules([
    { vip: '198.19.128.2/24', backends: ['198.19.128.3/24', '198.19.128.4', '198.19.128.3'] },
    { vip: '198.19.128.10', backends: ['198.19.128.11'] },
    { vip: '198.19.128.20', backends: [] },
  ]);
  assert.match(
    rules,
    /ip daddr 198\.19\.128\.2 dnat to numgen inc mod 2 map \{ 0 : 198\.19\.128\.3, 1 : 198\.19\.128\.4 \}/,
  );
  assert.match(rules, /ip daddr 198\.19\.128\.10 dnat to 198\.19\.128\.11\n/);
  assert.match(rules, /ip daddr 198\.19\.128\.20 reject with icmp type host-unreachable/);
  assert.match(rules, /^table ip shoal_vip \{\}\nflush table ip shoal_vip\n/);
  assert.throws(() => vipRules([{ vip: '198.19.128.2', backends: ['x'] }]), InvalidAddressError);
});

test('an ip batch refuses arguments it would split, before running anything', async () => {
  const cli = new NetlinkCli('/nonexistent/netns');
  await assert.rejects(cli.batch([['link', 'set', 'a b', 'up']]), DataPlaneError);
  await assert.rejects(cli.batch([['link', 'set', '', 'up']]), /cannot be passed through an ip batch/);
});

test('published ports: DNAT on local addresses, round robin to the target port, masquerade via ingress, refusals', () => {
  const rules = publishedPortRules(
    [
      { protocol: 'tcp', publishedPort: 8080, targetPort: 80, backends: ['198.19.128.3/24', '198.19.128.4'] },
      { protocol: 'udp', publishedPort: 5353, targetPort: 53, backends: ['198.19.128.3'] },
      { protocol: 'tcp', publishedPort: 9000, targetPort: 9000, backends: [] },
    ],
    { masqueradeVia: ['shoal_ing'] },
  );
  const dnat =
    'fib daddr type local tcp dport 8080 dnat to numgen inc mod 2 map { 0 : 198.19.128.3, 1 : 198.19.128.4 } : 80';
  assert.equal(rules.split(dnat).length, 3, 'in prerouting and output');
  assert.match(rules, /fib daddr type local udp dport 5353 dnat to 198\.19\.128\.3:53\n/);
  assert.match(rules, /fib daddr type local tcp dport 9000 reject with tcp reset/);
  assert.match(rules, /ct status dnat oifname \{ "shoal_ing" \} masquerade/);
  assert.doesNotMatch(publishedPortRules([]), /masquerade/);
  const p = { protocol: 'tcp' as const, publishedPort: 80, targetPort: 80, backends: [] };
  assert.throws(() => publishedPortRules([p, p]), /port 80\/tcp is published twice/);
  assert.throws(() => publishedPortRules([{ ...p, publishedPort: 70000 }]), /published port 70000/);
  assert.throws(() => publishedPortRules([{ ...p, targetPort: 0 }]), /target port 0/);
  assert.throws(() => publishedPortRules([p], { masqueradeVia: ['bad name'] }), /interface name/);
});
