import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { startRegistry } from '../registry/registry-server.js';
import { RegistryClient } from '../registry/registry-client.js';
import { buildTestImages, findTestImage, TestImages, type BuiltManifest } from './build-test-images.js';
import { pushTestImages } from './push-test-images.js';
import { MediaType, readLayoutBlob, sha256Digest } from './oci-layout.js';
import { listTar } from './tar-writer.js';
import { REQUIRED_APPLETS } from './test-rootfs.js';

function decompress(blob: Buffer, compression: string): Buffer {
  if (compression === 'gzip') return gunzipSync(blob);
  if (compression === 'zstd') return zstdDecompressSync(blob);
  return blob;
}

test('the busybox image has the applets, users, a sticky /tmp and a real config', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'shoal-img-'));
  t.after(() => rm(cache, { recursive: true, force: true }));
  const set = await buildTestImages(cache);
  const bb = findTestImage(set, TestImages.busybox).manifest;
  assert.ok(bb);
  assert.equal(bb.mediaType, MediaType.ociManifest);
  assert.equal(bb.layers.length, 1);
  const layer = bb.layers[0];
  assert.ok(layer);
  assert.equal(layer.mediaType, MediaType.ociLayerGzip);
  const tar = gunzipSync(await readLayoutBlob(set.layoutDir, layer.digest));
  assert.equal(sha256Digest(tar), layer.diffId);
  const entries = listTar(tar);
  const byPath = new Map(entries.map((e) => [e.path.replace(/\/$/, ''), e]));
  for (const a of REQUIRED_APPLETS) assert.equal(byPath.get(`bin/${a}`)?.linkname, 'busybox', `bin/${a}`);
  assert.ok((byPath.get('bin/busybox')?.size ?? 0) > 100_000);
  assert.ok(byPath.has('etc/passwd') && byPath.has('etc/group'));
  const header = (p: string): number => {
    const off = tar.indexOf(Buffer.from(`${p}\0`));
    return parseInt(tar.subarray(off + 100, off + 107).toString(), 8);
  };
  assert.equal(header('tmp/'), 0o1777);

  const config = JSON.parse((await readLayoutBlob(set.layoutDir, bb.config.digest)).toString()) as {
    config: { Entrypoint: string[]; Cmd: string[]; Env: string[]; WorkingDir: string };
    rootfs: { diff_ids: string[] };
    history: unknown[];
  };
  assert.deepEqual(config.config.Entrypoint, ['/bin/shoal-entry']);
  assert.deepEqual(config.config.Cmd, ['sh']);
  assert.equal(config.config.WorkingDir, '/srv');
  assert.ok(config.config.Env.some((e) => e.startsWith('PATH=')));
  assert.deepEqual(config.rootfs.diff_ids, [layer.diffId]);
  assert.equal(config.history.length, 1);

  const again = await buildTestImages(cache);
  assert.deepEqual(again.images, set.images, 'a second build reuses the cache with the same digests');
});

test('the whiteout image deletes a file and makes a directory opaque in its top layer', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'shoal-img-'));
  t.after(() => rm(cache, { recursive: true, force: true }));
  const set = await buildTestImages(cache);
  const wo = findTestImage(set, TestImages.whiteout).manifest;
  assert.ok(wo && wo.layers.length === 3);
  const paths = async (i: number): Promise<string[]> =>
    listTar(gunzipSync(await readLayoutBlob(set.layoutDir, wo.layers[i]?.digest ?? ''))).map((e) => e.path);
  assert.ok((await paths(1)).includes('etc/removed.txt'));
  const upper = await paths(2);
  assert.ok(upper.includes('etc/.wh.removed.txt'));
  assert.ok(upper.includes('data/opaque/.wh..wh..opq'));
  assert.equal(wo.layers[0]?.digest, findTestImage(set, TestImages.busybox).manifest?.layers[0]?.digest);
});

test('pushed images verify against their digests in both manifest forms and all compressions', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-reg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const reg = await startRegistry({ dir, htpasswd: { username: 'u', password: 'p' } });
  t.after(() => reg.stop());
  const auth = { username: 'u', password: 'p' };
  const pushed = await pushTestImages(reg.url, { auth });
  assert.deepEqual(pushed.map((p) => p.ref).sort(), Object.values(TestImages).sort());
  const client = new RegistryClient(reg.url, auth);

  const verify = async (repo: string, m: BuiltManifest): Promise<void> => {
    const got = await client.getManifest(repo, m.digest);
    assert.equal(sha256Digest(got.bytes), m.digest);
    assert.equal(got.mediaType, m.mediaType);
    const doc = JSON.parse(got.bytes.toString()) as {
      config: { digest: string };
      layers: { digest: string; mediaType: string }[];
    };
    assert.equal(doc.config.digest, m.config.digest);
    const cfg = await client.getBlob(repo, m.config.digest);
    assert.equal(sha256Digest(cfg), m.config.digest);
    const diffIds = (JSON.parse(cfg.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    for (const [i, l] of m.layers.entries()) {
      assert.equal(doc.layers[i]?.digest, l.digest);
      const blob = await client.getBlob(repo, l.digest);
      assert.equal(sha256Digest(blob), l.digest);
      assert.equal(blob.length, l.size);
      assert.equal(sha256Digest(decompress(blob, l.compression)), diffIds[i]);
    }
  };
  const seen = new Set<string>();
  for (const p of pushed) {
    const byTag = await client.getManifest(p.repository, p.tag);
    assert.equal(sha256Digest(byTag.bytes), p.digest, p.ref);
    assert.equal(byTag.digest, p.digest);
    assert.equal(byTag.mediaType, p.mediaType);
    for (const m of p.manifest ? [p.manifest] : (p.children ?? [])) {
      await verify(p.repository, m);
      for (const l of m.layers) seen.add(`${m.mediaType} ${l.compression}`);
    }
  }
  assert.ok(seen.has(`${MediaType.ociManifest} gzip`));
  assert.ok(seen.has(`${MediaType.ociManifest} zstd`));
  assert.ok(seen.has(`${MediaType.ociManifest} none`));
  assert.ok(seen.has(`${MediaType.dockerManifest} gzip`));
  const index = pushed.find((p) => p.ref === TestImages.busyboxIndex);
  assert.deepEqual(index?.children?.map((c) => c.platform.architecture).length, 2);

  // An independent reader (skopeo) accepts the images and sees the same layers.
  const { stdout } = await promisify(execFile)('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--creds',
    'u:p',
    `docker://${reg.addr}/${TestImages.busyboxDocker}`,
  ]);
  const info = JSON.parse(stdout) as { Layers: string[]; Digest: string };
  const docker = pushed.find((p) => p.ref === TestImages.busyboxDocker);
  assert.equal(info.Digest, docker?.digest);
  assert.deepEqual(
    info.Layers,
    docker?.manifest?.layers.map((l) => l.digest),
  );
});
