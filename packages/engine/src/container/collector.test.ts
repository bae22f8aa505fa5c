// Observing versus collecting (issue 7, defect 1): inspect and list write nothing and touch no
// container; the collector role is held by one engine per data root, a standby takes over when it
// closes, and only the collector collects exits on its own and runs health checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@shoal/common';
import { testEngine } from './test-support.js';
import type { ContainerRecord } from './types.js';

test('inspect and list write nothing: an exit is shown, and collected only by wait', { timeout: 60_000 }, async (t) => {
  const te = await testEngine({ collector: false });
  t.after(() => te.cleanup());
  const { engine } = te;
  const id = await engine.run({ image: 'busybox', cmd: ['sleep', '1000'] });
  const state = join(te.opts.dataRoot, 'containers', id, 'state.json');
  const rec = await engine.inspect(id);
  await engine.runc.kill(id, 'SIGKILL');
  await waitFor(() => (existsSync(join(te.opts.dataRoot, 'containers', id, 'exit.json')) ? true : undefined), {
    timeoutMs: 10_000,
    what: 'exit.json',
  });
  const before = readFileSync(state, 'utf8');
  const seen = await engine.inspect(id);
  assert.equal(seen.status, 'exited');
  assert.equal(seen.exitCode, 137);
  const [listed] = await engine.list({ all: true });
  assert.equal(listed?.status, 'exited');
  assert.equal(listed?.exitCode, 137);
  assert.equal(readFileSync(state, 'utf8'), before, 'the record was not written');
  assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(rec.rootfs), 'the rootfs was not released');
  assert.notEqual(await engine.runc.state(id), undefined, 'runc state was not deleted');
  // wait collects: runc state, mounts and bundle go, the record says exited
  assert.deepEqual(await engine.wait(id), { exitCode: 137, signal: 9, oomKilled: false });
  assert.equal((JSON.parse(readFileSync(state, 'utf8')) as ContainerRecord).status, 'exited');
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(rec.rootfs));
  assert.equal(await engine.runc.state(id), undefined);
  await engine.remove(id);
});

test('one collector per data root; a standby takes over and collects on its own', { timeout: 60_000 }, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const first = te.engine;
  assert.equal(first.collecting, true);
  const second = await te.reopen();
  assert.equal(second.collecting, false, 'the role is taken');
  const id = await first.run({
    image: 'busybox',
    cmd: ['sleep', '1000'],
    healthcheck: { test: ['CMD', 'true'], intervalMs: 100 },
  });
  await waitFor(async () => ((await first.inspect(id)).health?.status === 'healthy' ? true : undefined), {
    timeoutMs: 20_000,
    what: 'healthy',
  });
  await first.close();
  await waitFor(() => (second.collecting ? true : undefined), { timeoutMs: 10_000, what: 'the standby to take over' });
  // the new collector runs the health checks now
  const probes = (await second.inspect(id)).health?.log.at(-1)?.start ?? '';
  await waitFor(
    async () => (((await second.inspect(id)).health?.log.at(-1)?.start ?? '') > probes ? true : undefined),
    {
      timeoutMs: 10_000,
      what: 'a probe by the new collector',
    },
  );
  // and collects the exit without anyone waiting for it
  await second.runc.kill(id, 'SIGKILL');
  const state = join(te.opts.dataRoot, 'containers', id, 'state.json');
  await waitFor(
    () => ((JSON.parse(readFileSync(state, 'utf8')) as ContainerRecord).status === 'exited' ? true : undefined),
    {
      timeoutMs: 10_000,
      what: 'the collector to collect the exit',
    },
  );
  assert.equal((await second.inspect(id)).exitCode, 137);
  await second.remove(id);
});
