import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@shoal/common';
import { testEngine } from '../container/test-support.js';
import { applyProbe } from './runner.js';
import { mergeHealthcheck } from '../container/config.js';

test(
  'health check inside the container: starting -> healthy -> unhealthy, last outputs kept',
  { timeout: 60_000 },
  async (t) => {
    const te = await testEngine();
    t.after(() => te.cleanup());
    const { engine } = te;
    const id = await engine.run({
      image: 'busybox',
      cmd: ['sh', '-c', 'touch /tmp/ok; exec sleep 1000'],
      healthcheck: {
        test: ['CMD-SHELL', 'cat /tmp/ok && echo fine-$HOSTNAME'],
        intervalMs: 200,
        timeoutMs: 2000,
        retries: 2,
      },
    });
    assert.equal((await engine.inspect(id)).health?.status, 'starting');
    const healthy = await waitFor(
      async () =>
        (await engine.inspect(id)).health?.status === 'healthy' ? (await engine.inspect(id)).health : undefined,
      { timeoutMs: 20_000, what: 'healthy' },
    );
    assert.match(healthy.log.at(-1)?.output ?? '', new RegExp(`fine-${id.slice(0, 12)}`));
    await engine.exec(id, ['rm', '/tmp/ok']);
    const unhealthy = await waitFor(
      async () => {
        const h = (await engine.inspect(id)).health;
        return h?.status === 'unhealthy' ? h : undefined;
      },
      { timeoutMs: 20_000, what: 'unhealthy' },
    );
    assert.ok(unhealthy.failingStreak >= 2);
    assert.ok(unhealthy.log.length <= 5);
    assert.notEqual(unhealthy.log.at(-1)?.exitCode, 0);
    // persisted for other processes (the daemonless CLI reads the record)
    const onDisk = await engine.store.read(id);
    assert.equal(onDisk.health?.status, 'unhealthy');
    await engine.remove(id, { force: true });
  },
);

test('health probe timeout kills the probe and counts as a failure', { timeout: 60_000 }, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const { engine } = te;
  const id = await engine.run({
    image: 'busybox',
    cmd: ['sleep', '1000'],
    healthcheck: { test: ['CMD', 'sleep', '30'], intervalMs: 100, timeoutMs: 300, retries: 1 },
  });
  const h = await waitFor(
    async () => {
      const x = (await engine.inspect(id)).health;
      return x?.status === 'unhealthy' ? x : undefined;
    },
    { timeoutMs: 20_000, what: 'unhealthy' },
  );
  assert.equal(h.log.at(-1)?.exitCode, -1);
  assert.match(h.log.at(-1)?.output ?? '', /exceeded timeout/);
  await engine.remove(id, { force: true });
});

test('applyProbe and mergeHealthcheck follow Docker rules', () => {
  const hc = { test: ['CMD', 'x'], retries: 2 };
  const fail = { start: '', end: '', exitCode: 1, output: '' };
  const ok = { ...fail, exitCode: 0 };
  const s = { status: 'starting' as const, failingStreak: 0, log: [] };
  const inStart = applyProbe(s, fail, hc, true);
  assert.equal(inStart.status, 'starting');
  assert.equal(inStart.failingStreak, 0, 'failures in the start period do not count');
  const after1 = applyProbe(s, fail, hc, false);
  assert.deepEqual([after1.status, after1.failingStreak], ['starting', 1]);
  const after2 = applyProbe(after1, fail, hc, false);
  assert.equal(after2.status, 'unhealthy');
  const back = applyProbe(after2, ok, hc, false);
  assert.deepEqual([back.status, back.failingStreak], ['healthy', 0]);
  let many = back;
  for (let i = 0; i < 8; i++) many = applyProbe(many, ok, hc, false);
  assert.equal(many.log.length, 5);
  assert.equal(mergeHealthcheck({ test: ['NONE'] }, { Test: ['CMD', 'true'] }), undefined);
  const m = mergeHealthcheck(
    { test: ['CMD-SHELL', 'true'], intervalMs: 1000 },
    { Test: ['CMD', 'x'], Interval: 5e9, Retries: 7 },
  );
  assert.deepEqual(m, {
    test: ['CMD-SHELL', 'true'],
    intervalMs: 1000,
    timeoutMs: 30_000,
    retries: 7,
    startPeriodMs: 0,
    startIntervalMs: 5000,
  });
  assert.throws(() => mergeHealthcheck({ test: ['BOGUS', 'x'] }, undefined), /CMD, CMD-SHELL or NONE/);
});
