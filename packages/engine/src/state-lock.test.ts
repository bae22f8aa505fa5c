// The flock-based state lock, within one process and across processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '@shoal/common';
import { acquireStateLock, withStateLock } from './state-lock.js';

function dir(t: { after(fn: () => Promise<void>): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'shoal-lock-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('exclusive excludes, shared coexists, release lets the waiter in', async (t) => {
  const path = join(dir(t), 'x.lock');
  const a = await acquireStateLock(path, 'exclusive');
  await assert.rejects(
    acquireStateLock(path, 'exclusive', { timeoutMs: 50 }),
    (e) => hasCode(e, 'ENGINE_STATE_LOCKED') && (e as Error).message.includes(`pid ${process.pid}`),
  );
  const order: string[] = [];
  const waiter = withStateLock(path, 'exclusive', () => order.push('b'));
  order.push('a');
  a.release();
  await waiter;
  assert.deepEqual(order, ['a', 'b']);
  const s1 = await acquireStateLock(path, 'shared');
  const s2 = await acquireStateLock(path, 'shared', { timeoutMs: 50 });
  await assert.rejects(acquireStateLock(path, 'exclusive', { timeoutMs: 50 }), (e) =>
    hasCode(e, 'ENGINE_STATE_LOCKED'),
  );
  s1.release();
  s2.release();
  (await acquireStateLock(path, 'exclusive', { timeoutMs: 50 })).release();
});

test('another process holding the lock blocks us; its death frees it (no stale lock)', async (t) => {
  const path = join(dir(t), 'y.lock');
  const lockModule = new URL('./state-lock.js', import.meta.url).href;
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(lockModule)}); await m.acquireStateLock(${JSON.stringify(path)}, 'exclusive'); console.log('held'); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => (b.toString().includes('held') ? resolve() : undefined));
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
  await assert.rejects(
    acquireStateLock(path, 'exclusive', { timeoutMs: 100 }),
    (e) => hasCode(e, 'ENGINE_STATE_LOCKED') && (e as Error).message.includes(`pid ${child.pid}`),
  );
  child.kill('SIGKILL');
  const lock = await acquireStateLock(path, 'exclusive', { timeoutMs: 10_000 });
  lock.release();
});
