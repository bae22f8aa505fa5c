// One process for everything inside a namespace (netns-script.ts): the script it runs, what it
// refuses to pass to the shell, and, on a real namespace (root), that one call sets the sysctl,
// the interfaces, addresses and route, and the nft tables, and that a failing step fails the call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { run } from '@shoal/common';
import { DataPlaneError, netnsShellScript, runInNetns } from './index.js';

test('the script writes sysctls, then one ip batch, then one nft transaction, as quoted here-documents', () => {
  const s = netnsShellScript({
    sysctls: { 'net.ipv4.conf.eth1.route_localnet': '1' },
    ip: [
      ['link', 'set', 'lo', 'up'],
      ['addr', 'add', '198.18.5.2/24', 'dev', 'eth1'],
    ],
    nft: 'table ip t {\n  chain c {\n    oifname "eth1" accept\n  }\n}\n',
  });
  const lines = s.split('\n');
  assert.equal(lines[0], 'set -e');
  assert.equal(lines[1], 'echo 1 > /proc/sys/net/ipv4/conf/eth1/route_localnet');
  assert.equal(lines[2], "ip -batch - <<'SHOAL_IP_END'");
  assert.equal(lines[3], 'link set lo up');
  assert.equal(lines[4], 'addr add 198.18.5.2/24 dev eth1');
  assert.equal(lines[5], 'SHOAL_IP_END');
  assert.equal(lines[6], "nft -f - <<'SHOAL_NFT_END'");
  assert.ok(s.includes('    oifname "eth1" accept\n'));
  assert.ok(s.endsWith('}\nSHOAL_NFT_END\n'));
  // nothing to do inside: no ip, no nft
  assert.equal(netnsShellScript({}), 'set -e\n');
});

test('words the shell or ip could read otherwise are refused before anything runs', () => {
  for (const bad of ['a b', 'x;reboot', '$(id)', '`id`', "it's", 'a|b', 'a&b', '#', ''])
    assert.throws(() => netnsShellScript({ ip: [['link', 'set', bad, 'up']] }), DataPlaneError, bad);
  assert.throws(() => netnsShellScript({ sysctls: { 'net/../../x': '1' } }), DataPlaneError);
  assert.throws(() => netnsShellScript({ sysctls: { 'net.ipv4.ip_forward': '1; reboot' } }), DataPlaneError);
  assert.throws(() => netnsShellScript({ nft: 'table ip t {}\nSHOAL_NFT_END\nreboot\n' }), DataPlaneError);
});

test('one call inside a real namespace: sysctl, interfaces, address, route and nft table; a failing step throws', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const name = `shoal-nss-${randomBytes(4).toString('hex')}`;
  const path = `/run/netns/${name}`;
  t.after(async () => {
    if (existsSync(path)) await run('ip', ['netns', 'del', name]);
  });
  await run('ip', ['netns', 'add', name]);
  await runInNetns(path, {
    ip: [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'],
      ['link', 'set', 'd1', 'up'],
      ['addr', 'add', '198.18.7.2/24', 'dev', 'd0'],
      ['link', 'set', 'd0', 'up'],
      ['route', 'replace', 'default', 'via', '198.18.7.1', 'dev', 'd0'],
    ],
    nft: 'table ip shoal_nss {\n  chain output {\n    type filter hook output priority 0; policy accept;\n    oifname "d0" udp dport 9 drop\n  }\n}\n',
  });
  // the sysctl of an interface made by the same call's batch cannot come first: a second call
  await runInNetns(path, { sysctls: { 'net.ipv4.conf.d0.route_localnet': '1' } });
  const inNs = (cmd: string[]) => run('nsenter', [`--net=${path}`, '--', ...cmd]);
  assert.equal((await inNs(['cat', '/proc/sys/net/ipv4/conf/d0/route_localnet'])).stdout.trim(), '1');
  const addrs = JSON.parse((await inNs(['ip', '-j', '-4', 'addr', 'show', 'd0'])).stdout) as {
    operstate: string;
    addr_info: { local: string; prefixlen: number }[];
  }[];
  assert.deepEqual(
    addrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
    ['198.18.7.2/24'],
  );
  assert.match((await inNs(['ip', 'route', 'show', 'default'])).stdout, /default via 198\.18\.7\.1 dev d0/);
  assert.match((await inNs(['nft', 'list', 'table', 'ip', 'shoal_nss'])).stdout, /oifname "d0" udp dport 9 drop/);
  // a failing ip line fails the call, with ip's error, and the nft script after it is not applied
  await assert.rejects(
    runInNetns(path, { ip: [['link', 'set', 'nosuchdev', 'up']], nft: 'table ip shoal_nss_never {}\n' }),
    (err: unknown) => err instanceof DataPlaneError && /nosuchdev/.test(err.message),
  );
  assert.notEqual(
    (await run('nsenter', [`--net=${path}`, '--', 'nft', 'list', 'table', 'ip', 'shoal_nss_never'], { check: false }))
      .code,
    0,
  );
});
