import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from './registry-server.js';
import { RegistryStartError } from '../errors.js';
import { errnoCode, isProcessAlive } from '@shoal/common';

test('startRegistry serves /v2/ on a free loopback port and stop() ends the process', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-reg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const reg = await startRegistry({ dir });
  t.after(() => reg.stop());
  assert.match(reg.addr, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(reg.addr, '127.0.0.1:0');
  const res = await fetch(`${reg.url}/v2/`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  await reg.stop();
  assert.equal(isProcessAlive(reg.pid), false);
  await assert.rejects(fetch(`${reg.url}/v2/`));
});

test('startRegistry with htpasswd requires Basic auth', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-reg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const reg = await startRegistry({ dir, htpasswd: { username: 'alice', password: 's3cret' } });
  t.after(() => reg.stop());
  const anon = await fetch(`${reg.url}/v2/`);
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm=/);
  const bad = await fetch(`${reg.url}/v2/`, { headers: { authorization: `Basic ${btoa('alice:wrong')}` } });
  assert.equal(bad.status, 401);
  const good = await fetch(`${reg.url}/v2/`, { headers: { authorization: `Basic ${btoa('alice:s3cret')}` } });
  assert.equal(good.status, 200);
});

test('startRegistry on a taken fixed address fails clearly and leaves no process', async (t) => {
  const dir1 = await mkdtemp(join(tmpdir(), 'shoal-reg-'));
  const dir2 = await mkdtemp(join(tmpdir(), 'shoal-reg-'));
  t.after(() => rm(dir1, { recursive: true, force: true }));
  t.after(() => rm(dir2, { recursive: true, force: true }));
  const first = await startRegistry({ dir: dir1 });
  t.after(() => first.stop());
  await assert.rejects(startRegistry({ dir: dir2, addr: first.addr, timeoutMs: 5000 }), (err: unknown) => {
    assert.ok(err instanceof RegistryStartError);
    assert.equal(err.code, 'REGISTRY_START_FAILED');
    assert.match(err.message, new RegExp(first.addr.replace(/\./g, '\\.')));
    return true;
  });
  const res = await fetch(`${first.url}/v2/`);
  assert.equal(res.status, 200, 'the first registry still serves');
  const { readdirSync, readFileSync } = await import('node:fs');
  const leftovers = readdirSync('/proc').filter((p) => {
    try {
      return /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir2);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return false; // gone meanwhile
      throw err;
    }
  });
  assert.deepEqual(leftovers, []);
});
