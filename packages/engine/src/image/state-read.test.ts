// Reading state files: only a missing file is "not found" (or an empty index); a corrupt or
// unreadable one is ENGINE_STATE_UNREADABLE naming the file, so that a damaged store is never
// silently taken for an empty one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '@shoal/common';
import { ImageStore } from './image-store.js';
import { ContainerStore } from '../container/store.js';
import { StateUnreadableError } from '../errors.js';

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-state-read-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('image index: missing is empty; corrupt or unreadable is an error naming the file', async (t) => {
  const root = tmp(t);
  const store = new ImageStore(root);
  assert.deepEqual(await store.read(), { version: 1, images: {}, refs: {} });
  writeFileSync(store.file, '{"images": {"sha256:');
  await assert.rejects(
    store.read(),
    (e) => hasCode(e, 'ENGINE_STATE_UNREADABLE') && (e as Error).message.includes(store.file),
  );
  rmSync(store.file);
  mkdirSync(store.file); // EISDIR: exists, cannot be read
  await assert.rejects(store.read(), (e) => e instanceof StateUnreadableError && /EISDIR/.test(e.message));
});

test('container record: missing is not-found; corrupt or unreadable is not', async (t) => {
  const root = tmp(t);
  const store = new ContainerStore(root);
  await store.init();
  const id = 'a'.repeat(64);
  await assert.rejects(store.read(id), (e) => hasCode(e, 'ENGINE_CONTAINER_NOT_FOUND'));
  mkdirSync(store.dir(id));
  writeFileSync(join(store.dir(id), 'state.json'), '{"id": "aaa');
  await assert.rejects(
    store.read(id),
    (e) => hasCode(e, 'ENGINE_STATE_UNREADABLE') && (e as Error).message.includes('state.json'),
  );
  await assert.rejects(store.all(), (e) => hasCode(e, 'ENGINE_STATE_UNREADABLE'), 'list does not hide it');
  rmSync(join(store.dir(id), 'state.json'));
  mkdirSync(join(store.dir(id), 'state.json'));
  await assert.rejects(store.read(id), (e) => e instanceof StateUnreadableError && e.kind === 'internal');
  assert.equal(
    StateUnreadableError.from('/x', Object.assign(new Error('denied'), { code: 'EACCES' })).kind,
    'permission-denied',
  );
});
