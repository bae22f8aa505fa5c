/**
 * The image store's layer applier and the overlay rootfs together: two layer tars (made with
 * tar(1)), the top one deleting a file (`.wh.gone`) and making a directory opaque
 * (`.wh..wh..opq`), unpacked by `applyLayer` and stacked by `mountRootfs`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { applyLayer } from '../layer/apply-layer.js';
import { isMountPoint } from './mount.js';
import { mountRootfs, unmountRootfs } from './overlay.js';

const work = mkdtempSync(join(tmpdir(), 'shoal-rootfs-layers-'));
after(async () => {
  await unmountRootfs(join(work, 'c'), { remove: true });
  rmSync(work, { recursive: true, force: true });
});

function layerTar(name: string, files: Record<string, string>): string {
  const src = join(work, `src-${name}`);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(src, path, '..'), { recursive: true });
    writeFileSync(join(src, path), content);
  }
  const tar = join(work, `${name}.tar`);
  execFileSync('tar', ['-C', src, '-cf', tar, '.']);
  return tar;
}

it('applied layers stack: the whiteout hides the deleted file, the opaque dir shows only new content', async () => {
  const tars = [
    layerTar('l1', { 'data/gone': 'gone', 'data/kept': 'kept', 'opaque/old': 'old' }),
    layerTar('l2', { 'data/.wh.gone': '', 'opaque/.wh..wh..opq': '', 'opaque/new': 'new' }),
  ];
  const dirs: string[] = [];
  for (const [i, tar] of tars.entries()) {
    const dir = join(work, `layer${i}`);
    mkdirSync(dir);
    await applyLayer(createReadStream(tar), dir, `layer${i}`);
    dirs.push(dir);
  }
  const paths = await mountRootfs({ id: 'layers', containerDir: join(work, 'c'), layerDirs: dirs });
  try {
    assert.deepEqual(readdirSync(join(paths.merged, 'data')), ['kept']);
    assert.deepEqual(readdirSync(join(paths.merged, 'opaque')), ['new']);
  } finally {
    await unmountRootfs(join(work, 'c'), { remove: true });
  }
  assert.equal(isMountPoint(paths.merged), false);
});
