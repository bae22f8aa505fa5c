import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCode } from '@shoal/common';
import { testEngine, logText } from './container/test-support.js';
import { processStartTime } from './monitor/shim.js';

const LIMIT = { timeout: 60_000 };

test('run: output on both streams with timestamps, exit code, then remove', LIMIT, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const { engine } = te;
  const id = await engine.run({ image: 'busybox', cmd: ['sh', '-c', 'echo out1; echo err1 >&2; printf tail; exit 3'] });
  const exit = await engine.wait(id);
  assert.deepEqual(exit, { exitCode: 3, oomKilled: false, signal: 0 });
  const logs = await logText(engine, id);
  assert.equal(logs.stdout, 'out1\ntail');
  assert.equal(logs.stderr, 'err1\n');
  const entries = [];
  for await (const e of engine.logs(id)) entries.push(e);
  assert.ok(entries.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(e.time)));
  const rec = await engine.inspect(id);
  assert.equal(rec.status, 'exited');
  assert.equal(rec.exitCode, 3);
  assert.equal(existsSync(rec.rootfs), false, 'rootfs released after exit');
  assert.equal(await engine.runc.state(id), undefined, 'runc state deleted');
  await engine.remove(id);
  await assert.rejects(engine.inspect(id), (e) => hasCode(e, 'ENGINE_CONTAINER_NOT_FOUND'));
  assert.deepEqual(readdirSync(join(te.opts.dataRoot, 'containers')), []);
});

test('create then start; names are unique; kill with a signal', LIMIT, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const { engine } = te;
  const name = `c-${Date.now().toString(36)}`;
  const id = await engine.create({ image: 'busybox', name, cmd: ['sleep', '1000'] });
  assert.equal((await engine.inspect(name)).status, 'created');
  await assert.rejects(engine.create({ image: 'busybox', name, cmd: ['true'] }), (e) =>
    hasCode(e, 'ENGINE_NAME_IN_USE'),
  );
  await engine.start(name);
  const rec = await engine.inspect(id.slice(0, 10));
  assert.equal(rec.status, 'running');
  assert.ok(rec.pid && processStartTime(rec.pid) !== undefined, 'init pid alive');
  await assert.rejects(engine.remove(id), (e) => hasCode(e, 'ENGINE_CONTAINER_STATE'));
  const stats = await engine.stats(id);
  assert.ok(stats.memoryUsageBytes > 0, 'memory usage from the cgroup');
  assert.equal(typeof stats.cpuUsageNs, 'number');
  await engine.kill(id, 'USR1'); // busybox sleep as pid 1 has no handler: ignored by the kernel
  assert.equal((await engine.inspect(id)).status, 'running');
  await engine.kill(id, 'KILL');
  assert.deepEqual(await engine.wait(id), { exitCode: 137, oomKilled: false, signal: 9 });
  await engine.remove(id);
});

test('stop: a process that ignores SIGTERM is killed after the grace period', LIMIT, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const { engine } = te;
  const obeys = await engine.run({
    image: 'busybox',
    cmd: ['sh', '-c', "trap 'exit 7' TERM; while true; do sleep 0.1; done"],
  });
  const ignores = await engine.run({
    image: 'busybox',
    cmd: ['sh', '-c', "trap '' TERM; echo ready; while true; do sleep 0.1; done"],
  });
  const [a, b] = await Promise.all([engine.stop(obeys, { timeoutMs: 5000 }), engine.stop(ignores, { timeoutMs: 700 })]);
  assert.deepEqual(a, { exitCode: 7, oomKilled: false, signal: 0 });
  assert.deepEqual(b, { exitCode: 137, oomKilled: false, signal: 9 });
  await engine.remove(obeys);
  await engine.remove(ignores);
});

test('runc failure: a clear error and nothing left behind', LIMIT, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const { engine } = te;
  await assert.rejects(
    engine.run({ image: 'busybox', name: 'broken', cmd: ['/no/such/program'] }),
    (e: unknown) => hasCode(e, 'ENGINE_RUNC_FAILED') && /no such file or directory/.test(String(e)),
  );
  assert.deepEqual(readdirSync(join(te.opts.dataRoot, 'containers')), []);
  assert.deepEqual(readdirSync(join(te.opts.dataRoot, 'names')), []);
  assert.deepEqual(readdirSync(engine.runtime.bundles), []);
  assert.deepEqual(await engine.runc.list(), []);
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(te.root), 'no mount left');
  // the name is free again
  const id = await engine.run({ image: 'busybox', name: 'broken', cmd: ['true'] });
  assert.equal((await engine.wait(id)).exitCode, 0);
  await engine.remove(id);
  await assert.rejects(engine.run({ image: 'busybox', memoryBytes: 10 }), (e) => hasCode(e, 'ENGINE_INVALID_SPEC'));
});
