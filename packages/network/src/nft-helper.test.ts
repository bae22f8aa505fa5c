// The node's nftables helper (shoal-nft, root): one process applies whole-table scripts in several
// network namespaces, refuses bad ones with nft's message, lets a namespace go when told (or when
// its path is gone), and ends with close() or with the process that started it. The namespaces
// are the test's own; no addresses are configured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { isProcessAlive, run, sleep } from '@shoal/common';
import { DataPlaneError, NftHelper, VipBalancer, defaultNftHelperPath, vipRules } from './index.js';

function cleanups(t: { after: (fn: () => Promise<void>) => void }): (fn: () => Promise<unknown>) => void {
  const fns: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of fns.reverse()) await fn().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  });
  return (fn) => fns.push(fn);
}

async function netns(name: string, cleanup: (fn: () => Promise<unknown>) => void): Promise<string> {
  await run('ip', ['netns', 'add', name]);
  cleanup(() => run('ip', ['netns', 'del', name], { check: false }));
  return `/run/netns/${name}`;
}

async function vipTable(path: string): Promise<string> {
  const r = await run('nsenter', [`--net=${path}`, '--', 'nft', 'list', 'table', 'ip', 'shoal_vip'], { check: false });
  return r.code === 0 ? r.stdout : '';
}

/** Polls until `cond` holds; false if it does not within `ms` (a bound, not a measurement). */
async function eventually(cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await cond()) return true;
  return cond();
}

async function linkExists(path: string, ifname: string): Promise<boolean> {
  const r = await run('nsenter', [`--net=${path}`, '--', 'ip', 'link', 'show', ifname], { check: false });
  return r.code === 0;
}

test('nft helper: one process applies tables in several namespaces; refuses a bad script, changing nothing', async (t) => {
  assert.ok(existsSync(defaultNftHelperPath()), 'shoal-nft is built (scripts/build-native.sh)');
  const tag = randomBytes(3).toString('hex');
  const cleanup = cleanups(t);
  const a = await netns(`shoal-nfth-${tag}-a`, cleanup);
  const b = await netns(`shoal-nfth-${tag}-b`, cleanup);
  const helper = new NftHelper();
  cleanup(() => helper.close());

  await helper.apply(a, vipRules([{ vip: '198.18.250.1', backends: ['198.18.250.2'] }]));
  const pid = helper.pid;
  assert.ok(pid !== undefined && isProcessAlive(pid), 'a helper process applies the scripts');
  await helper.apply(b, vipRules([{ vip: '198.18.250.1', backends: [] }]));
  for (let i = 3; i < 8; i++) await helper.apply(a, vipRules([{ vip: '198.18.250.1', backends: [`198.18.250.${i}`] }]));
  assert.equal(helper.pid, pid, 'the same process for every script and namespace');
  assert.match(await vipTable(a), /ip daddr 198\.18\.250\.1 dnat to 198\.18\.250\.7/);
  assert.match(await vipTable(b), /ip daddr 198\.18\.250\.1 reject/);
  assert.doesNotMatch(await vipTable(b), /dnat/);

  // a bad script: nft's message, and the table as it was (one transaction)
  const bad = vipRules([{ vip: '198.18.250.1', backends: ['198.18.250.9'] }]).replace('dnat to', 'dnat too');
  await assert.rejects(helper.apply(a, bad), (err: unknown) => {
    assert.ok(err instanceof DataPlaneError);
    assert.match(err.message, /syntax error/);
    return true;
  });
  assert.match(await vipTable(a), /dnat to 198\.18\.250\.7/);
  await assert.rejects(helper.apply(`/run/netns/shoal-nfth-${tag}-none`, bad), /cannot open network namespace/);
  // still the same helper, still working
  await helper.apply(a, vipRules([]));
  assert.equal(helper.pid, pid);
  assert.doesNotMatch(await vipTable(a), /dnat/);

  await helper.close();
  assert.ok(await eventually(() => !isProcessAlive(pid)), 'the helper ends with close()');
  // after close, scripts still apply (by nft)
  await helper.apply(b, vipRules([{ vip: '198.18.250.1', backends: ['198.18.250.3'] }]));
  assert.equal(helper.pid, undefined);
  assert.match(await vipTable(b), /dnat to 198\.18\.250\.3/);
});

test('nft helper: a namespace goes once forgotten, or once its path is gone', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const cleanup = cleanups(t);
  // the "node" namespace holds one end of a veth into each sandbox: the end goes when the
  // sandbox's namespace is really destroyed (not merely unmounted while something holds it)
  const node = await netns(`shoal-nfth-${tag}-n`, cleanup);
  const s1 = await netns(`shoal-nfth-${tag}-1`, cleanup);
  const s2 = await netns(`shoal-nfth-${tag}-2`, cleanup);
  for (const [i, s] of [s1, s2].entries())
    await run('ip', [
      '-n',
      `shoal-nfth-${tag}-n`,
      'link',
      'add',
      `nfth${tag}${i}`,
      'type',
      'veth',
      'peer',
      'eth0',
      'netns',
      s,
    ]);
  const helper = new NftHelper();
  cleanup(() => helper.close());
  await helper.apply(s1, vipRules([{ vip: '198.18.250.1', backends: ['198.18.250.2'] }]));
  await helper.apply(s2, vipRules([{ vip: '198.18.250.1', backends: ['198.18.250.2'] }]));

  // told: forget, then the namespace is deleted
  await helper.forget(s1);
  await run('ip', ['netns', 'del', `shoal-nfth-${tag}-1`]);
  assert.ok(await eventually(async () => !(await linkExists(node, `nfth${tag}0`))), 'the forgotten namespace is gone');

  // not told: its path goes; the helper's next script (anywhere) lets it go
  await run('ip', ['netns', 'del', `shoal-nfth-${tag}-2`]);
  await helper.apply(node, vipRules([]));
  assert.ok(
    await eventually(async () => !(await linkExists(node, `nfth${tag}1`))),
    'a namespace whose path went is let go',
  );
});

test('nft helper: ends with the process that started it', async (t) => {
  const cleanup = cleanups(t);
  const tag = randomBytes(3).toString('hex');
  const ns = await netns(`shoal-nfth-${tag}-p`, cleanup);
  const index = new URL('./index.js', import.meta.url).href;
  const script = `
    const { NftHelper, vipRules } = await import(${JSON.stringify(index)});
    const h = new NftHelper();
    await h.apply(${JSON.stringify(ns)}, vipRules([]));
    console.log(h.pid);
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return Promise.resolve();
  });
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the child exited (${code})`)));
  });
  assert.ok(Number.isInteger(pid) && isProcessAlive(pid), 'the child started a helper');
  cleanup(() => {
    if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    return Promise.resolve();
  });
  child.kill('SIGKILL');
  assert.ok(await eventually(() => !isProcessAlive(pid)), 'the helper ended with its parent');
});

test('nft helper: where it cannot run, scripts go through nft', async (t) => {
  const cleanup = cleanups(t);
  const tag = randomBytes(3).toString('hex');
  const ns = await netns(`shoal-nfth-${tag}-f`, cleanup);
  const helper = new NftHelper({ path: `/nonexistent/shoal-nft-${tag}` });
  cleanup(() => helper.close());
  await helper.apply(ns, vipRules([{ vip: '198.18.250.1', backends: ['198.18.250.4'] }]));
  assert.equal(helper.available, false);
  assert.equal(helper.pid, undefined);
  assert.match(await vipTable(ns), /dnat to 198\.18\.250\.4/);
  await helper.forget(ns); // nothing held: fine
});

/** Sockets a process holds besides its stdio (the helper's: one per namespace it holds). */
function socketsBeyondStdio(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`)
    .filter((fd) => Number(fd) > 2)
    .map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`))
    .filter((l) => l.startsWith('socket:'));
}

test('VIP balancer on the helper: after forget() no update reaches the namespace, the helper holds none', async (t) => {
  const cleanup = cleanups(t);
  const tag = randomBytes(3).toString('hex');
  const ns = await netns(`shoal-nfth-${tag}-v`, cleanup);
  const helper = new NftHelper();
  cleanup(() => helper.close());
  const vip = new VipBalancer(ns, helper);
  await vip.apply([{ vip: '198.18.250.1', backends: ['198.18.250.5'] }]);
  const pid = helper.pid;
  assert.ok(pid !== undefined);
  assert.equal(socketsBeyondStdio(pid).length, 1, 'the helper holds a socket in the namespace');
  assert.match(await vipTable(ns), /dnat to 198\.18\.250\.5/);
  // an update queued behind forget() (a sync racing the sandbox's removal) is refused
  const forgotten = vip.forget();
  const late = vip.apply([{ vip: '198.18.250.1', backends: ['198.18.250.6'] }]);
  await forgotten;
  await assert.rejects(late, DataPlaneError);
  assert.deepEqual(socketsBeyondStdio(pid), [], 'nothing held in the namespace after forget');
  assert.match(await vipTable(ns), /dnat to 198\.18\.250\.5/);
});
