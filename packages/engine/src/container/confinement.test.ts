import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { waitFor } from '@shoal/common';
import { testEngine, logText } from './test-support.js';

test('OOM kill is reported as such in wait and inspect', { timeout: 60_000 }, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const { engine } = te;
  // dd's 64 MiB buffer cannot fit in 8 MiB (no swap on the host either way)
  const id = await engine.run({
    image: 'busybox',
    memoryBytes: 8 * 1024 * 1024,
    cmd: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'],
  });
  const exit = await engine.wait(id);
  assert.deepEqual(exit, { exitCode: 137, oomKilled: true, signal: 9 });
  assert.equal((await engine.inspect(id)).oomKilled, true);
  const ok = await engine.run({ image: 'busybox', memoryBytes: 64 * 1024 * 1024, cmd: ['true'] });
  assert.deepEqual(await engine.wait(ok), { exitCode: 0, oomKilled: false, signal: 0 });
  await engine.remove(id);
  await engine.remove(ok);
});

test(
  'secrets: readable in the container, never in state files, unmounted after exit',
  { timeout: 60_000 },
  async (t) => {
    const te = await testEngine();
    t.after(() => te.cleanup());
    const { engine } = te;
    const secret = `pw-${Math.random().toString(36).slice(2)}`;
    const id = await engine.run({
      image: 'busybox',
      cmd: ['sh', '-c', 'cat /run/secrets/db_pw; echo; sleep 1000'],
      secrets: [{ name: 'db_pw', data: Buffer.from(secret) }],
    });
    const rec = await engine.inspect(id);
    const dir = engine.store.dir(id);
    assert.ok(!readFileSync(`${dir}/state.json`, 'utf8').includes(secret), 'state.json has no secret');
    assert.ok(!readFileSync(`${rec.bundle}/config.json`, 'utf8').includes(secret), 'config.json has no secret');
    assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(`${dir}/mounts/secrets`), 'secrets tmpfs mounted');
    await waitFor(async () => ((await logText(engine, id)).stdout === `${secret}\n` ? true : undefined), {
      timeoutMs: 20_000,
      what: 'the secret in the output',
    });
    await engine.stop(id, { timeoutMs: 0 });
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 'nothing mounted once it exited');
    await engine.remove(id);
  },
);
