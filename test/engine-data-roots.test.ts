// Two data roots side by side on one run root (issue 7, defect 2): what one engine does on its
// root (open, list, run, rm, recovery) never touches the other root's containers, runc state or
// bundles, and neither lists the other's containers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cliEnv, census, openRoot, processAlive, shoal } from './engine-cli-support.js';

test("two data roots on one run root never touch each other's containers", { timeout: 600_000 }, async (t) => {
  const env = await cliEnv(t);
  const a = await env.root();
  // the same run root and cgroup parent, as two roots with the defaults would have
  const b = await env.root({ runRoot: a.runRoot, cgroupParent: a.cgroupParent });
  const tag = randomBytes(3).toString('hex');
  const aNames = [0, 1, 2].map((i) => `a-${tag}-${i}`);
  for (const n of aNames) {
    const r = await shoal(['container', 'run', ...a.flags, '-d', '--name', n, env.image, 'sleep', '1000']);
    assert.equal(r.code, 0, r.stderr);
  }
  const ea = await openRoot(a);
  t.after(() => ea.close());
  const before = await Promise.all(aNames.map((n) => ea.inspect(n)));

  // everything B does: open (recovery), list, run, stop, rm -f, a failing run, open as collector
  const lsB = await shoal(['container', 'ls', ...b.flags, '-a']);
  assert.equal(lsB.code, 0, lsB.stderr);
  for (const n of aNames) assert.doesNotMatch(lsB.stdout, new RegExp(n), "B does not list A's containers");
  const bName = `b-${tag}`;
  const runB = await shoal(['container', 'run', ...b.flags, '-d', '--name', bName, env.image, 'sleep', '1000']);
  assert.equal(runB.code, 0, runB.stderr);
  const bad = await shoal(['container', 'run', ...b.flags, '-d', '--entrypoint', '/no/such/program', env.image]);
  assert.equal(bad.code, 1, 'a failing run cleans up after itself');
  assert.equal((await shoal(['container', 'stop', ...b.flags, '-t', '1', bName])).code, 0);
  assert.equal((await shoal(['container', 'rm', ...b.flags, '-f', bName])).code, 0);
  const eb = await openRoot(b, { collector: true });
  await eb.close();
  const lsB2 = await shoal(['container', 'ls', ...b.flags, '-a', '-q']);
  assert.equal(lsB2.stdout, '');

  // A's containers still run, with the same monitors and inits, and runc still knows them
  for (const [i, n] of aNames.entries()) {
    const rec = await ea.inspect(n);
    assert.equal(rec.status, 'running', `${n}: ${JSON.stringify(rec)}`);
    assert.equal(rec.pid, before[i]?.pid);
    assert.ok(processAlive(rec.shimPid, rec.shimStart), `${n}: its monitor runs`);
    assert.equal((await ea.runc.state(rec.id))?.status, 'running', `${n}: runc state intact`);
  }
  const ca = await census(a);
  assert.equal(ca.records.size, 3);
  for (const rec of before) {
    assert.ok(ca.bundles.has(rec.id), 'bundle intact');
    assert.ok(ca.runc.has(rec.id), 'runc state intact');
    assert.ok(ca.cgroups.has(rec.id), 'cgroup intact');
  }
  const lsA = await shoal(['container', 'ls', ...a.flags, '-a']);
  assert.doesNotMatch(lsA.stdout, new RegExp(bName), "A does not list B's containers");
});
