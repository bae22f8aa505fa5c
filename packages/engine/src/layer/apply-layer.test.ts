// Layer unpacking into overlayfs form, on real files (root needed: chown, mknod, trusted.* xattrs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  existsSync,
  readdirSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import tar from 'tar-stream';
import { hasCode } from '@shoal/common';
import { applyLayer, cleanEntryName, OPAQUE_XATTR } from './apply-layer.js';
import { LayerStore } from './layer-store.js';
import { lgetxattr } from '../libc.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (chown, mknod, trusted.* xattrs)';

type Entry = tar.Header extends infer H ? Partial<H> & { name: string; body?: string } : never;

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const { body, ...h } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body !== undefined) pack.entry(h, body, cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function tmp(t: { after(fn: () => Promise<void>): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'shoal-layer-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

const mtime = new Date('2024-02-03T04:05:06Z');

test('files, dirs, links, devices, owners, modes, mtimes and xattrs are kept', { skip }, async (t) => {
  const dest = tmp(t);
  const data = await makeTar([
    { name: 'bin/', type: 'directory', mode: 0o755, mtime },
    { name: 'bin/tool', type: 'file', mode: 0o4755, uid: 1234, gid: 5678, mtime, body: 'x'.repeat(1000) },
    { name: 'bin/alias', type: 'symlink', linkname: 'tool', mtime },
    { name: 'bin/hard', type: 'link', linkname: 'bin/tool', mtime },
    { name: 'dev/null2', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666, mtime },
    { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660, mtime },
    { name: 'run/fifo', type: 'fifo', mode: 0o600, mtime },
    { name: 'etc/tagged', type: 'file', mode: 0o640, mtime, body: 'hi', pax: { 'SCHILY.xattr.user.shoal': 'yes' } },
    { name: './tmp/', type: 'directory', mode: 0o1777, mtime },
  ]);
  const res = await applyLayer(Readable.from([data]), dest, 'test');
  assert.equal(res.diffId, `sha256:${createHash('sha256').update(data).digest('hex')}`);
  assert.equal(res.tarSize, data.length);
  const tool = lstatSync(join(dest, 'bin/tool'));
  assert.equal(tool.mode & 0o7777, 0o4755, 'setuid kept after chown');
  assert.equal(tool.uid, 1234);
  assert.equal(tool.gid, 5678);
  assert.equal(tool.mtime.getTime(), mtime.getTime());
  assert.equal(readlinkSync(join(dest, 'bin/alias')), 'tool');
  assert.equal(lstatSync(join(dest, 'bin/hard')).ino, tool.ino, 'hardlink shares the inode');
  const cdev = lstatSync(join(dest, 'dev/null2'));
  assert.ok(cdev.isCharacterDevice());
  assert.equal(cdev.rdev, (1 << 8) | 3);
  assert.ok(lstatSync(join(dest, 'dev/loop9')).isBlockDevice());
  assert.ok(lstatSync(join(dest, 'run/fifo')).isFIFO());
  assert.equal(lgetxattr(join(dest, 'etc/tagged'), 'user.shoal')?.toString(), 'yes');
  assert.equal(lstatSync(join(dest, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(lstatSync(join(dest, 'bin')).mtime.getTime(), mtime.getTime(), 'dir mtime set after its children');
});

test('whiteouts become 0/0 char devices, opaque markers an xattr', { skip }, async (t) => {
  const dest = tmp(t);
  const data = await makeTar([
    { name: 'etc/.wh.passwd', type: 'file', body: '' },
    { name: 'var/cache/', type: 'directory', mode: 0o755 },
    { name: 'var/cache/.wh..wh..opq', type: 'file', body: '' },
    { name: 'var/cache/new', type: 'file', body: 'n' },
  ]);
  await applyLayer(Readable.from([data]), dest, 'test');
  const wh = lstatSync(join(dest, 'etc/passwd'));
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.deepEqual(readdirSync(join(dest, 'etc')), ['passwd'], 'no .wh. file');
  assert.equal(lgetxattr(join(dest, 'var/cache'), OPAQUE_XATTR)?.toString(), 'y');
  assert.deepEqual(readdirSync(join(dest, 'var/cache')), ['new']);
  assert.equal(lgetxattr(join(dest, 'etc'), OPAQUE_XATTR), undefined, 'only marked dirs are opaque');
});

test('absolute names, .. and writes through symlinks are refused', { skip }, async (t) => {
  const outside = tmp(t);
  const cases: Entry[][] = [
    [{ name: '/etc/passwd', type: 'file', body: 'x' }],
    [{ name: 'a/../../escape', type: 'file', body: 'x' }],
    [
      { name: 'link', type: 'symlink', linkname: outside },
      { name: 'link/pwned', type: 'file', body: 'x' },
    ],
    [
      { name: 'link', type: 'symlink', linkname: outside },
      { name: 'hard', type: 'link', linkname: 'link/secret' },
    ],
    [{ name: 'hard', type: 'link', linkname: '../../etc/shadow' }],
  ];
  for (const entries of cases) {
    const dest = tmp(t);
    await assert.rejects(applyLayer(Readable.from([await makeTar(entries)]), dest, 'bad'), (e) =>
      hasCode(e, 'ENGINE_LAYER_INVALID'),
    );
    assert.deepEqual(readdirSync(outside), [], 'nothing written outside');
  }
  assert.throws(
    () => cleanEntryName('../x', 'l'),
    (e) => hasCode(e, 'ENGINE_LAYER_INVALID'),
  );
  assert.equal(cleanEntryName('./a//b/', 'l'), 'a/b');
});

test(
  'layer store: gzip, zstd and plain blobs unpack once to the same diffID; bad ones leave nothing',
  { skip },
  async (t) => {
    const root = tmp(t);
    const store = new LayerStore(root);
    await store.init();
    const data = await makeTar([{ name: 'hello', type: 'file', body: 'world', mode: 0o644 }]);
    const diffId = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const blobs = join(root, 'b');
    mkdirSync(blobs);
    writeFileSync(join(blobs, 'gz'), gzipSync(data));
    writeFileSync(join(blobs, 'zst'), zstdCompressSync(data));
    writeFileSync(join(blobs, 'tar'), data);
    const blob = (name: string): { digest: string; path: string } => ({
      digest: `sha256:${createHash('sha256')
        .update(readFileSync(join(blobs, name)))
        .digest('hex')}`,
      path: join(blobs, name),
    });
    const dirs = await Promise.all(['gz', 'zst', 'tar'].map((b) => store.ensure(diffId, blob(b))));
    assert.equal(new Set(dirs).size, 1);
    assert.equal(readFileSync(join(dirs[0] ?? '', 'hello'), 'utf8'), 'world');
    assert.deepEqual(await store.list(), [diffId]);
    assert.ok((dirs[0] ?? '').length < root.length + 25, 'short layer path');

    // Wrong diffID: refused, nothing left.
    const other = `sha256:${'a'.repeat(64)}`;
    await assert.rejects(store.ensure(other, blob('gz')), (e) => hasCode(e, 'ENGINE_DIGEST_MISMATCH'));
    // A blob that does not unpack to a layer already here is refused too (not taken on trust).
    writeFileSync(join(blobs, 'other'), gzipSync(await makeTar([{ name: 'x', type: 'file', body: 'y', mode: 0o644 }])));
    await assert.rejects(store.ensure(diffId, blob('other')), (e) => hasCode(e, 'ENGINE_DIGEST_MISMATCH'));
    assert.equal(await store.verified(diffId, blob('other').digest), false);
    assert.equal(await store.verified(diffId, blob('gz').digest), true);
    // Corrupt gzip: refused, nothing left.
    const bad = gzipSync(data);
    bad[bad.length - 6] = (bad[bad.length - 6] ?? 0) ^ 0xff;
    writeFileSync(join(blobs, 'bad'), bad);
    await assert.rejects(
      store.ensure(`sha256:${'b'.repeat(64)}`, blob('bad')),
      (e) => hasCode(e, 'ENGINE_LAYER_INVALID') || hasCode(e, 'ENGINE_DIGEST_MISMATCH'),
    );
    assert.deepEqual(
      readdirSync(store.dir).filter((n) => n !== LayerStore.idOf(diffId)),
      [],
      'no temp or half layer dirs',
    );
    assert.ok(!existsSync(join(store.dir, LayerStore.idOf(other))));
    await store.remove(diffId);
    assert.deepEqual(readdirSync(store.dir), []);
  },
);
