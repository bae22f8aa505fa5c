import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Backoff,
  ShoalError,
  fsyncDir,
  fsyncDirSync,
  isProcessAlive,
  isValidName,
  newObjectId,
  randomId64,
  run,
  sleep,
  AbortedError,
  CommandFailedError,
} from './index.js';

test('ShoalError carries code, name and cause', () => {
  class MyError extends ShoalError {}
  const e = new MyError('X_CODE', 'boom', { cause: new Error('inner'), retryable: true });
  assert.equal(e.code, 'X_CODE');
  assert.equal(e.name, 'MyError');
  assert.equal(e.retryable, true);
  assert.equal((e.cause as Error).message, 'inner');
});

test('ids have the documented shapes', () => {
  assert.match(randomId64(), /^[0-9a-f]{16}$/);
  assert.match(newObjectId(), /^[0-9a-z]{25}$/);
  assert.notEqual(randomId64(), randomId64());
});

test('isValidName accepts identifiers and refuses the rest', () => {
  for (const ok of ['demo', 'lab-1', 'a']) assert.ok(isValidName(ok), ok);
  for (const bad of ['', '1lab', 'Lab', 'a_b', 'a-', 'x'.repeat(40), 'a b', '../x']) assert.ok(!isValidName(bad), bad);
});

test('backoff grows to its ceiling with deterministic jitter', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000]);
  b.reset();
  assert.equal(b.next(), 100);
});

test('sleep rejects with AbortedError when aborted', async () => {
  const ac = new AbortController();
  const p = sleep(10_000, ac.signal);
  ac.abort();
  await assert.rejects(p, AbortedError);
});

test('run collects output and reports failures with stderr', async () => {
  const r = await run('sh', ['-c', 'echo hi; echo err >&2']);
  assert.equal(r.stdout, 'hi\n');
  assert.equal(r.stderr, 'err\n');
  await assert.rejects(run('sh', ['-c', 'echo bad >&2; exit 3']), (e: unknown) => {
    assert.ok(e instanceof CommandFailedError);
    assert.equal(e.exitCode, 3);
    assert.match(e.message, /bad/);
    return true;
  });
  const soft = await run('sh', ['-c', 'exit 4'], { check: false });
  assert.equal(soft.code, 4);
});

test('run: a child that exits without reading its input is judged by its exit status', async () => {
  // 8 MiB cannot fit a pipe buffer: the write fails with EPIPE once the child has exited
  const input = Buffer.alloc(8 << 20, 1);
  assert.equal((await run('true', [], { input })).code, 0);
  await assert.rejects(run('sh', ['-c', 'exit 5'], { input }), (e: unknown) => {
    assert.ok(e instanceof CommandFailedError);
    assert.equal(e.exitCode, 5);
    return true;
  });
});

test('isProcessAlive tells a live process from a reaped one', async () => {
  assert.equal(isProcessAlive(process.pid), true);
  const child = spawn('true');
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(child.pid !== undefined);
  assert.equal(isProcessAlive(child.pid), false);
});

test('fsyncDir and fsyncDirSync sync a directory and fail on a missing one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-common-'));
  try {
    await fsyncDir(dir);
    fsyncDirSync(dir);
    await assert.rejects(fsyncDir(join(dir, 'missing')), /ENOENT/);
    assert.throws(() => fsyncDirSync(join(dir, 'missing')), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
