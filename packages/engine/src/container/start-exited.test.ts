// Starting an exited container again (`docker start`, and the restart supervisor's restarts):
// the same record, rootfs and logs under a new monitor; and a start whose engine died half way
// is settled by the next engine (the record must not stay "created" for ever, nothing is left
// mounted) and can be started again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { logText, testEngine } from './test-support.js';

test('an exited container starts again with its filesystem and logs', { timeout: 60_000 }, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const { engine } = te;
  const id = await engine.run({
    image: 'busybox',
    cmd: ['sh', '-c', 'echo run >> /count; cat /count | wc -l'],
    restartPolicy: { name: 'on-failure', maximumRetryCount: 3 },
  });
  assert.equal((await engine.wait(id)).exitCode, 0);
  const first = await engine.inspect(id);
  await engine.start(id);
  assert.equal((await engine.wait(id)).exitCode, 0);
  const second = await engine.inspect(id);
  assert.equal(second.status, 'exited');
  assert.equal(second.id, first.id);
  assert.equal(second.restartCount, 0, "a user's start resets the count");
  assert.equal(second.manuallyStopped, false);
  assert.deepEqual(
    (await logText(engine, id)).stdout.split('\n').filter(Boolean),
    ['1', '2'],
    'same rootfs, logs kept',
  );
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(second.rootfs), 'released after the exit');
  // a restart by the supervisor counts, and is refused once a user stopped it
  await engine.restartExited(id);
  await engine.wait(id);
  assert.equal((await engine.inspect(id)).restartCount, 1);
  await engine.stop(id);
  await assert.rejects(engine.restartExited(id), /stopped by a user/);
  await engine.remove(id);
});

test('a start whose engine died half way is settled and can start again', { timeout: 60_000 }, async (t) => {
  const te = await testEngine({ collector: false });
  t.after(() => te.cleanup());
  const { engine } = te;
  const id = await engine.run({ image: 'busybox', cmd: ['true'] });
  await engine.wait(id);
  // the state a killed restartExited leaves before its shim ran: created, a dead owner's start lease
  const dead = spawnSync('true').pid ?? 1;
  await engine.store.update(id, (r) => {
    r.status = 'created';
    r.lease = { pid: dead, start: 1, op: 'start', mode: 'run', since: new Date().toISOString() };
    delete r.exitCode;
    delete r.shimPid;
    delete r.shimStart;
  });
  rmSync(join(te.opts.dataRoot, 'containers', id, 'exit.json')); // as restartExited does under the lock
  const e2 = await te.reopen(); // recovery settles it
  const rec = await e2.inspect(id);
  assert.equal(rec.status, 'exited');
  assert.equal(rec.exitCode, 255, 'nothing saw an exit');
  assert.equal(rec.lease, undefined);
  assert.ok(!existsSync(join(rec.bundle, 'rootfs', 'bin')), 'nothing mounted');
  await e2.start(id);
  assert.equal((await e2.wait(id)).exitCode, 0);
  await e2.remove(id);
});
