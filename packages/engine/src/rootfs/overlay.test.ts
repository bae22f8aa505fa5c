/** The overlay rootfs on real overlayfs: whiteouts, opaque dirs, upper writes, long layer lists, cleanup. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasCode } from '@shoal/common';
import { writeWhiteoutLayers } from '../spec/test-harness.js';
import { isMountPoint, listMounts } from './mount.js';
import { mountRootfs, overlayData, unmountRootfs } from './overlay.js';

const work = mkdtempSync(join(tmpdir(), 'shoal-rootfs-'));
after(async () => {
  for (const m of listMounts().filter((x) => x.mountPoint.startsWith(work))) await unmountRootfs(m.mountPoint);
  rmSync(work, { recursive: true, force: true });
});

describe('overlay rootfs', () => {
  it('stacks layers: the whiteout hides the deleted file, the opaque dir shows only new content', async () => {
    const layers = writeWhiteoutLayers(join(work, 'layers'));
    const cdir = join(work, 'containers', 'c1');
    const paths = await mountRootfs({ id: 'c1', containerDir: cdir, layerDirs: layers });
    try {
      assert.equal(listMounts().find((m) => m.mountPoint === paths.merged)?.fsType, 'overlay');
      assert.deepEqual(readdirSync(join(paths.merged, 'data')).sort(), ['kept']);
      assert.deepEqual(readdirSync(join(paths.merged, 'opaque')), ['new']);
      assert.ok(existsSync(join(paths.merged, 'bin', 'busybox')));
      // writes go to the container's upper dir, never to a layer
      writeFileSync(join(paths.merged, 'data', 'kept'), 'changed\n');
      assert.equal(readFileSync(join(paths.upper, 'data', 'kept'), 'utf8'), 'changed\n');
      assert.equal(readFileSync(join(layers[1] as string, 'data', 'kept'), 'utf8'), 'kept\n');
      // idempotent: mounting again keeps the same mount
      await mountRootfs({ id: 'c1', containerDir: cdir, layerDirs: layers });
      assert.equal(listMounts().filter((m) => m.mountPoint === paths.merged).length, 1);
    } finally {
      await unmountRootfs(cdir, { remove: true });
    }
    assert.equal(isMountPoint(paths.merged), false);
    assert.deepEqual(readdirSync(cdir), []);
    await unmountRootfs(cdir, { remove: true }); // a second time is fine
  });

  it('falls back to short symlinked names when the layer list is longer than a page', async () => {
    const base = join(work, 'many', 'a-deliberately-long-directory-name-to-make-the-mount-data-exceed-one-page');
    const layers: string[] = [];
    for (let i = 0; i < 60; i++) {
      const d = join(base, `layer-${String(i).padStart(3, '0')}`, 'diff');
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `f${i}`), String(i));
      layers.push(d);
    }
    writeFileSync(join(layers[59] as string, 'f0'), 'top wins');
    const cdir = join(work, 'containers', 'c2');
    assert.ok(overlayData(layers, join(cdir, 'upper'), join(cdir, 'work')).length > 4096);
    const paths = await mountRootfs({ id: 'c2', containerDir: cdir, layerDirs: layers });
    try {
      assert.equal(readdirSync(paths.merged).length, 60);
      assert.equal(readFileSync(join(paths.merged, 'f0'), 'utf8'), 'top wins');
    } finally {
      await unmountRootfs(cdir, { remove: true });
    }
    assert.equal(isMountPoint(paths.merged), false);
    assert.deepEqual(readdirSync(cdir), []);
  });

  it('a missing layer dir or a failing mount gives ENGINE_ROOTFS_MOUNT and leaves nothing', async () => {
    const cdir = join(work, 'containers', 'c3');
    await assert.rejects(
      mountRootfs({ id: 'c3', containerDir: cdir, layerDirs: [join(work, 'no-such-layer')] }),
      (e: unknown) => hasCode(e, 'ENGINE_ROOTFS_MOUNT') && /does not exist/.test(String(e)),
    );
    assert.equal(existsSync(cdir), false);
    // a layer that is a file on overlay itself: the kernel refuses (upper on overlay is not allowed)
    const layers = writeWhiteoutLayers(join(work, 'layers3'));
    const outer = await mountRootfs({
      id: 'outer',
      containerDir: join(work, 'containers', 'outer'),
      layerDirs: layers,
    });
    try {
      const nested = join(outer.merged, 'nested');
      mkdirSync(nested);
      await assert.rejects(
        mountRootfs({ id: 'c4', containerDir: nested, layerDirs: [join(outer.merged, 'bin')] }),
        (e: unknown) => hasCode(e, 'ENGINE_ROOTFS_MOUNT') && /overlay mount/.test(String(e)),
      );
      assert.deepEqual(readdirSync(nested), []);
    } finally {
      await unmountRootfs(join(work, 'containers', 'outer'), { remove: true });
    }
  });
});
