// The engine's image half against a real registry (Debian docker-registry on loopback): every
// manifest form and layer compression, Basic and bearer-token auth, blob sharing and skipping,
// whiteouts in overlay form (and mounted), archives, removal and gc, and bad input that must
// fail clearly and leave nothing behind. A small HTTP proxy in front of the registry counts blob
// requests and corrupts, truncates or cuts chosen blobs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  mkdtempSync,
  readdirSync,
  existsSync,
  lstatSync,
  readFileSync,
  mkdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  buildTestImages,
  findTestImage,
  pushTestImages,
  startRegistry,
  startTokenServer,
  TestImages,
  WHITEOUT_EXPECTED,
  goArch,
  readLayoutBlob,
  type RunningRegistry,
  type TestImageSet,
} from '@shoal/testkit';
import { hasCode } from '@shoal/common';
import { ImageService, type PullProgress } from '@shoal/engine';
import { lgetxattr, OPAQUE_XATTR } from '@shoal/engine/internal';

const hasCodeOf = (e: unknown, code: string): boolean => {
  if (!hasCode(e, code)) throw e as Error;
  return true;
};

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (chown, mknod, trusted.* xattrs, overlay mounts)';

let work: string;
let set: TestImageSet;
let reg: RunningRegistry;

let proxy: FaultProxy;

/** Forwards to the registry; counts blob GETs by digest; can corrupt, truncate or cut a blob. */
interface FaultProxy {
  addr: string;
  blobGets: Map<string, number>;
  faults: Map<string, 'corrupt' | 'truncate' | 'cut' | 'cut-once'>;
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<FaultProxy> {
  const blobGets = new Map<string, number>();
  const faults = new Map<string, 'corrupt' | 'truncate' | 'cut' | 'cut-once'>();
  const server = http.createServer((req, res) => {
    const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1];
    if (blob && req.method === 'GET') blobGets.set(blob, (blobGets.get(blob) ?? 0) + 1);
    // Faults are keyed by blob digest, or by `manifests/<tag|digest>`.
    const manifest = /\/(manifests\/[^/]+)$/.exec(req.url ?? '')?.[1];
    const digest = blob ?? manifest;
    const up = http.request(`http://${target}${req.url}`, { method: req.method, headers: req.headers }, (ur) => {
      let fault = digest ? faults.get(digest) : undefined;
      if (fault === 'cut-once' && digest) {
        faults.delete(digest);
        fault = 'cut';
      }
      if (!fault || ur.statusCode !== 200) {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        let body = Buffer.concat(chunks);
        if (fault === 'corrupt') body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0xff;
        if (fault === 'truncate') body = body.subarray(0, body.length >> 1);
        const headers = { ...ur.headers, 'content-length': String(fault === 'cut' ? body.length : body.length) };
        res.writeHead(200, headers);
        if (fault === 'cut') {
          res.write(body.subarray(0, body.length >> 1));
          setTimeout(() => res.socket?.destroy(), 20);
        } else res.end(body);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    addr: `127.0.0.1:${port}`,
    blobGets,
    faults,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function newService(opts: ConstructorParameters<typeof ImageService>[0] = {}): ImageService {
  return new ImageService({ root: mkdtempSync(join(work, 'root-')), ...opts });
}

/** Everything that a failed operation must not leave in a store. */
function assertEmptyStore(svc: ImageService): void {
  const blobs = existsSync(svc.blobs.blobDir) ? readdirSync(svc.blobs.blobDir) : [];
  assert.deepEqual(blobs, [], 'no blobs left');
  const layers = existsSync(svc.layers.dir) ? readdirSync(svc.layers.dir) : [];
  assert.deepEqual(layers, [], 'no layer dirs left');
  const tmp = existsSync(svc.blobs.tmpDir) ? readdirSync(svc.blobs.tmpDir) : [];
  assert.deepEqual(tmp, [], 'no temp files left');
  const idx = existsSync(svc.store.file)
    ? (JSON.parse(readFileSync(svc.store.file, 'utf8')) as { refs: object; images: object })
    : { refs: {}, images: {} };
  assert.deepEqual(idx.refs, {}, 'no refs');
  assert.deepEqual(idx.images, {}, 'no images');
}

/** Names and contents of a store's blobs, layer dirs, temp files and index. */
function storeSnapshot(svc: ImageService): Record<string, string[] | string> {
  const ls = (d: string): string[] => (existsSync(d) ? readdirSync(d).sort() : []);
  return {
    blobs: ls(svc.blobs.blobDir),
    layers: ls(svc.layers.dir),
    layerBlobs: ls(svc.layers.dir).flatMap((l) => ls(join(svc.layers.dir, l, 'blobs')).map((b) => `${l}/${b}`)),
    tmp: ls(svc.blobs.tmpDir),
    index: existsSync(svc.store.file) ? readFileSync(svc.store.file, 'utf8') : '',
  };
}

function remote(ref: string, host = reg.addr): string {
  return `${host}/${ref}`;
}

before(async () => {
  if (!isRoot) return;
  work = mkdtempSync(join(tmpdir(), 'shoal-image-'));
  set = await buildTestImages();
  reg = await startRegistry({ dir: join(work, 'registry') });
  await pushTestImages(reg.url, { set });
  proxy = await startProxy(reg.addr);
});

after(async () => {
  if (!isRoot) return;
  await proxy?.close();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

test(
  'pulls every manifest form and layer compression, verified, platform picked',
  { skip, timeout: 120_000 },
  async () => {
    const svc = newService();
    const expected = findTestImage(set, TestImages.busybox).manifest;
    assert.ok(expected);
    for (const ref of [
      TestImages.busybox,
      TestImages.busyboxDocker,
      TestImages.busyboxZstd,
      TestImages.busyboxTar,
      TestImages.busyboxIndex,
      TestImages.busyboxList,
    ]) {
      const built = findTestImage(set, ref);
      const events: PullProgress[] = [];
      const rec = await svc.pull(remote(ref), { onProgress: (e) => events.push(e) });
      const manifest = built.manifest ?? built.children?.find((c) => c.platform.architecture === goArch());
      assert.ok(manifest, `built manifest of ${ref}`);
      assert.equal(rec.id, manifest.config.digest, `${ref}: image id is the config digest`);
      assert.equal(rec.manifestDigest, manifest.digest, `${ref}: platform manifest picked`);
      if (built.children) assert.equal(rec.indexDigest, built.digest, `${ref}: index digest kept`);
      assert.deepEqual(
        rec.diffIds,
        manifest.layers.map((l) => l.diffId),
      );
      assert.ok(rec.repoTags.includes(`${reg.addr}/${ref}`), `${ref} tagged: ${rec.repoTags.join(',')}`);
      assert.ok(rec.repoDigests.includes(`${reg.addr}/${built.repository}@${built.digest}`));
      for (const l of manifest.layers) assert.ok(await svc.blobs.has(l.digest), `${ref}: layer blob stored`);
      assert.ok(
        events.some((e) => e.kind === 'resolved') && events.some((e) => e.kind === 'done'),
        `${ref}: progress reported`,
      );
      const resolved = await svc.resolve(remote(ref));
      assert.equal(resolved.id, rec.id);
      assert.equal(resolved.layerDirs.length, manifest.layers.length);
      assert.ok(lstatSync(join(resolved.layerDirs[0] ?? '', 'bin/busybox')).isFile(), `${ref}: layer unpacked`);
    }
    // Same diffID from gzip, zstd and plain tar: one unpacked layer directory.
    const diffIds = new Set((await svc.list()).flatMap((r) => r.diffIds));
    assert.equal(readdirSync(svc.layers.dir).filter((n) => !n.startsWith('.')).length, diffIds.size);
    const resolved = await svc.resolve(remote(TestImages.busybox));
    assert.ok(Array.isArray(resolved.config.Cmd) || Array.isArray(resolved.config.Entrypoint), 'config has a command');
    // By digest too.
    const byDigest = await svc.pull(
      `${reg.addr}/${findTestImage(set, TestImages.busybox).repository}@${expected.digest}`,
    );
    assert.equal(byDigest.id, expected.config.digest);
  },
);

test('concurrent pulls share one download; a later pull skips present blobs', { skip, timeout: 60_000 }, async () => {
  const svc = newService();
  const ref = remote(TestImages.busyboxZstd, proxy.addr);
  const layer = findTestImage(set, TestImages.busyboxZstd).manifest?.layers[0];
  assert.ok(layer);
  const before = proxy.blobGets.get(layer.digest) ?? 0;
  const [a, b] = await Promise.all([svc.pull(ref), svc.pull(ref)]);
  assert.equal(a.id, b.id);
  assert.equal((proxy.blobGets.get(layer.digest) ?? 0) - before, 1, 'one GET of the layer for two pulls');
  const events: PullProgress[] = [];
  const index = statSync(svc.store.file);
  const again = await svc.pull(ref, { onProgress: (e) => events.push(e) });
  assert.equal(again.id, a.id);
  assert.equal((proxy.blobGets.get(layer.digest) ?? 0) - before, 1, 'no GET when present');
  assert.ok(events.some((e) => e.kind === 'layer' && e.phase === 'exists'));
  // nothing new: the index is not written again (no lock, no fsync), the same file stays
  assert.equal(statSync(svc.store.file).ino, index.ino, 'images.json not rewritten by a pull that changed nothing');
  // the first pull recorded the digest ref; a pull that adds an image writes the index
  const pinned = `${proxy.addr}/${findTestImage(set, TestImages.busyboxZstd).repository}@${a.manifestDigest}`;
  const other = remote(TestImages.busybox, proxy.addr);
  await svc.pull(other);
  assert.notEqual(statSync(svc.store.file).ino, index.ino, 'a pull that adds an image writes the index');
  assert.equal((await svc.resolve(pinned)).id, a.id);
});

test('two processes pulling into one data root download each blob once', { skip, timeout: 60_000 }, async () => {
  const root = new URL('../..', import.meta.url).pathname;
  const data = mkdtempSync(join(work, 'xproc-'));
  const ref = remote(TestImages.busyboxTar, proxy.addr);
  const layer = findTestImage(set, TestImages.busyboxTar).manifest?.layers[0];
  assert.ok(layer);
  const before = proxy.blobGets.get(layer.digest) ?? 0;
  const pullOnce = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const c = spawn(
        process.execPath,
        [join(root, 'packages/cli/dist/main.js'), 'image', 'pull', '-q', '--data-root', data, ref],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      c.on('error', reject);
      c.on('close', (code) => resolve(code ?? -1));
    });
  assert.deepEqual(await Promise.all([pullOnce(), pullOnce()]), [0, 0]);
  assert.equal((proxy.blobGets.get(layer.digest) ?? 0) - before, 1, 'the layer blob was fetched once');
  const svc = new ImageService({ root: data });
  assert.equal((await svc.list()).length, 1);
  assert.deepEqual(readdirSync(join(data, 'locks')), [], 'no lock files left');
});

test(
  'whiteouts become overlay whiteouts and opaque dirs; a mounted overlay hides them',
  { skip, timeout: 60_000 },
  async () => {
    const svc = newService();
    await svc.pull(remote(TestImages.whiteout));
    const { layerDirs } = await svc.resolve(remote(TestImages.whiteout));
    const top = layerDirs[layerDirs.length - 1] ?? '';
    const wh = lstatSync(join(top, 'etc/removed.txt'));
    assert.ok(wh.isCharacterDevice(), 'whiteout is a char device');
    assert.equal(wh.rdev, 0, 'whiteout device is 0/0');
    assert.ok(!existsSync(join(top, 'etc/.wh.removed.txt')), 'no .wh. file kept');
    assert.ok(!existsSync(join(top, 'data/opaque/.wh..wh..opq')), 'no opaque marker file kept');
    assert.equal(lgetxattr(join(top, 'data/opaque'), OPAQUE_XATTR)?.toString(), 'y');

    const mnt = join(work, `mnt-${randomBytes(3).toString('hex')}`);
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...layerDirs].reverse().join(':')}`, mnt]);
    try {
      for (const p of WHITEOUT_EXPECTED.present) assert.ok(existsSync(join(mnt, p)), `${p} visible`);
      for (const p of WHITEOUT_EXPECTED.absent) assert.ok(!existsSync(join(mnt, p)), `${p} hidden`);
    } finally {
      execFileSync('umount', [mnt]);
    }
  },
);

test(
  'Basic auth: right credentials pull; wrong or missing fail clearly, leaving nothing',
  { skip, timeout: 60_000 },
  async () => {
    const r = await startRegistry({
      dir: join(work, `reg-basic-${randomBytes(3).toString('hex')}`),
      htpasswd: { username: 'alice', password: 's3cret' },
    });
    try {
      await pushTestImages(r.url, { set, only: [TestImages.busybox], auth: { username: 'alice', password: 's3cret' } });
      const ref = `${r.addr}/${TestImages.busybox}`;
      const good = newService({ registry: { credentials: { [r.addr]: { username: 'alice', password: 's3cret' } } } });
      assert.equal((await good.pull(ref)).id, findTestImage(set, TestImages.busybox).manifest?.config.digest);
      for (const creds of [{ [r.addr]: { username: 'alice', password: 'wrong' } }, undefined]) {
        const bad = newService(creds ? { registry: { credentials: creds } } : {});
        await assert.rejects(bad.pull(ref), (e) => hasCodeOf(e, 'ENGINE_UNAUTHORIZED'));
        assertEmptyStore(bad);
      }
    } finally {
      await r.stop();
    }
  },
);

test(
  'anonymous bearer tokens; credentials do not follow a redirect to another host',
  { skip, timeout: 60_000 },
  async () => {
    // Anonymous token flow: the token server grants pull to everyone.
    const dir = join(work, `reg-anon-${randomBytes(3).toString('hex')}`);
    mkdirSync(dir, { recursive: true });
    const ts = await startTokenServer({ dir });
    const r = await startRegistry({ dir, auth: ts.authConfig() });
    try {
      await pushTestImages(r.url, { set, only: [TestImages.busyboxZstd] });
      const anon = newService();
      assert.equal(
        (await anon.pull(`${r.addr}/${TestImages.busyboxZstd}`)).manifestDigest,
        findTestImage(set, TestImages.busyboxZstd).digest,
      );
      assert.ok(
        ts.requests.some((q) => q.granted && q.user === undefined),
        'an anonymous token was issued',
      );
    } finally {
      await r.stop();
      await ts.stop();
    }

    // Blobs redirected to another host (as registries do to object storage): Basic credentials go
    // to the registry but not to the storage host.
    const creds = { username: 'carol', password: 'pa55' };
    const basic = `Basic ${Buffer.from('carol:pa55').toString('base64')}`;
    const r2 = await startRegistry({ dir: join(work, `reg-redir-${randomBytes(3).toString('hex')}`), htpasswd: creds });
    const storageAuth: (string | undefined)[] = [];
    const registryAuth: (string | undefined)[] = [];
    const storage = http.createServer((req, res) => {
      storageAuth.push(req.headers.authorization);
      const up = http.request(`http://${r2.addr}${req.url}`, { headers: { authorization: basic } }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end();
    });
    await new Promise<void>((ok) => storage.listen(0, '127.0.0.2', ok));
    const sa = storage.address();
    const storageHost = `127.0.0.2:${typeof sa === 'object' && sa ? sa.port : 0}`;
    const front = http.createServer((req, res) => {
      registryAuth.push(req.headers.authorization);
      if (/\/blobs\/sha256:/.test(req.url ?? '') && req.headers.authorization) {
        res.writeHead(307, { location: `http://${storageHost}${req.url}` });
        res.end();
        return;
      }
      const up = http.request(`http://${r2.addr}${req.url}`, { method: req.method, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((ok) => front.listen(0, '127.0.0.1', ok));
    const fa = front.address();
    const frontHost = `127.0.0.1:${typeof fa === 'object' && fa ? fa.port : 0}`;
    try {
      await pushTestImages(r2.url, { set, only: [TestImages.busybox], auth: creds });
      const svc = newService({ registry: { credentials: { [frontHost]: creds } } });
      const rec = await svc.pull(`${frontHost}/${TestImages.busybox}`);
      assert.equal(rec.id, findTestImage(set, TestImages.busybox).manifest?.config.digest);
      assert.ok(storageAuth.length >= 2, 'config and layer came through the redirect');
      assert.deepEqual(storageAuth.filter(Boolean), [], 'no Authorization sent to the other host');
      assert.ok(registryAuth.includes(basic), 'the registry itself got the credentials');
    } finally {
      await new Promise<void>((ok) => {
        front.close(() => ok());
        front.closeAllConnections();
      });
      await new Promise<void>((ok) => {
        storage.close(() => ok());
        storage.closeAllConnections();
      });
      await r2.stop();
    }
  },
);

test('bearer token auth: token per scope; wrong credentials refused', { skip, timeout: 60_000 }, async () => {
  const dir = join(work, `reg-token-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const ts = await startTokenServer({ dir, users: [{ username: 'bob', password: 'hunter2' }] });
  const r = await startRegistry({ dir, auth: ts.authConfig() });
  try {
    await pushTestImages(r.url, {
      set,
      only: [TestImages.busyboxDocker],
      auth: { username: 'bob', password: 'hunter2' },
    });
    const ref = `${r.addr}/${TestImages.busyboxDocker}`;
    const good = newService({ registry: { credentials: { [r.addr]: { username: 'bob', password: 'hunter2' } } } });
    const rec = await good.pull(ref);
    assert.equal(rec.manifestDigest, findTestImage(set, TestImages.busyboxDocker).digest);
    const granted = ts.requests.filter(
      (q) => q.granted && q.user === 'bob' && q.scope === 'repository:shoal-test/busybox:pull',
    );
    assert.ok(granted.length >= 1, 'a pull-scoped token was issued');
    const bad = newService({ registry: { credentials: { [r.addr]: { username: 'bob', password: 'nope' } } } });
    await assert.rejects(bad.pull(ref), (e) => hasCodeOf(e, 'ENGINE_UNAUTHORIZED'));
    assertEmptyStore(bad);
    const anon = newService();
    await assert.rejects(anon.pull(ref), (e) => hasCodeOf(e, 'ENGINE_UNAUTHORIZED'));
    assertEmptyStore(anon);
  } finally {
    await r.stop();
    await ts.stop();
  }
});

test(
  'bad input: unknown tag or repo, unreachable registry, corrupted/truncated/cut blob',
  { skip, timeout: 60_000 },
  async () => {
    const cases: [string, string, () => void][] = [
      [remote('shoal-test/busybox:no-such-tag'), 'ENGINE_MANIFEST_UNKNOWN', () => undefined],
      [remote('shoal-test/no-such-repo:1'), 'ENGINE_MANIFEST_UNKNOWN', () => undefined],
    ];
    for (const [ref, code] of cases) {
      const svc = newService();
      await assert.rejects(svc.pull(ref), (e) => hasCodeOf(e, code) && (e as Error).message.includes('no-such'));
      assertEmptyStore(svc);
    }
    // A port nothing listens on.
    const closed = await new Promise<number>((resolve) => {
      const s = http.createServer();
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a ? a.port : 1));
      });
    });
    const unreachable = newService({ registry: { timeoutMs: 5000 } });
    await assert.rejects(unreachable.pull(`127.0.0.1:${closed}/${TestImages.busybox}`), (e) =>
      hasCodeOf(e, 'ENGINE_REGISTRY_UNREACHABLE'),
    );
    assertEmptyStore(unreachable);

    for (const fault of ['corrupt', 'truncate', 'cut'] as const) {
      const img = findTestImage(set, TestImages.busyboxTar);
      const layer = img.manifest?.layers[0];
      assert.ok(layer);
      proxy.faults.set(layer.digest, fault);
      try {
        const svc = newService();
        await assert.rejects(svc.pull(remote(TestImages.busyboxTar, proxy.addr)), (e) =>
          hasCodeOf(e, fault === 'cut' ? 'ENGINE_REGISTRY_UNREACHABLE' : 'ENGINE_DIGEST_MISMATCH'),
        );
        assertEmptyStore(svc);
      } finally {
        proxy.faults.delete(layer.digest);
      }
    }
    // A manifest that does not hash to its Docker-Content-Digest (by tag) or to the digest asked
    // for (by digest).
    const tarImage = findTestImage(set, TestImages.busyboxTar);
    for (const [key, ref] of [
      [`manifests/${tarImage.tag}`, remote(TestImages.busyboxTar, proxy.addr)],
      [`manifests/${tarImage.digest}`, `${proxy.addr}/${tarImage.repository}@${tarImage.digest}`],
    ] as const) {
      proxy.faults.set(key, 'corrupt');
      try {
        const svc = newService();
        await assert.rejects(
          svc.pull(ref),
          (e) => hasCodeOf(e, 'ENGINE_DIGEST_MISMATCH') && /manifest/.test((e as Error).message),
        );
        assertEmptyStore(svc);
      } finally {
        proxy.faults.delete(key);
      }
    }
    // A connection dropped once is retried; the pull then succeeds.
    const once = findTestImage(set, TestImages.busyboxTar).manifest?.layers[0];
    assert.ok(once);
    proxy.faults.set(once.digest, 'cut-once');
    const retried = newService();
    assert.equal((await retried.pull(remote(TestImages.busyboxTar, proxy.addr))).diffIds[0], once.diffId);
    assert.ok(!proxy.faults.has(once.digest), 'the fault fired');
  },
);

test(
  'plain HTTP only for registries named insecure (loopback implicit unless disabled)',
  { skip, timeout: 30_000 },
  async () => {
    const strict = newService({ registry: { implicitLoopbackInsecure: false } });
    await assert.rejects(strict.pull(remote(TestImages.busybox)), (e) => hasCodeOf(e, 'ENGINE_INSECURE_REGISTRY'));
    assertEmptyStore(strict);
    // Named for one pull only (what `container run --insecure-registry` passes).
    const perPull = await strict.pull(remote(TestImages.busybox), { insecureRegistries: [reg.addr] });
    assert.equal(perPull.id, findTestImage(set, TestImages.busybox).manifest?.config.digest);
    await assert.rejects(strict.pull(remote(TestImages.busyboxZstd)), (e) => hasCodeOf(e, 'ENGINE_INSECURE_REGISTRY'));
    const named = newService({ registry: { implicitLoopbackInsecure: false, insecureRegistries: [reg.addr] } });
    await named.pull(remote(TestImages.busybox));
    // Named in the data root's registries.json (what shoald, `shoal image` and `container run` share).
    const root = mkdtempSync(join(work, 'root-'));
    writeFileSync(join(root, 'registries.json'), JSON.stringify({ insecureRegistries: [reg.addr] }));
    const byFile = new ImageService({ root, registry: { implicitLoopbackInsecure: false } });
    assert.equal(
      (await byFile.pull(remote(TestImages.busybox))).id,
      findTestImage(set, TestImages.busybox).manifest?.config.digest,
    );
  },
);

test(
  'HTTPS registry: certificates checked, skipped only for registries named insecure',
  { skip, timeout: 60_000 },
  async () => {
    // A TLS-only docker-registry serving the storage of the plain one (self-signed certificate).
    const dir = mkdtempSync(join(work, 'tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const port = await new Promise<number>((resolve) => {
      const probe = http.createServer();
      probe.listen(0, '127.0.0.1', () => {
        const a = probe.address();
        probe.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    const addr = `127.0.0.1:${port}`;
    const config = {
      version: 0.1,
      log: { level: 'error', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(work, 'registry', 'data') } },
      http: { addr, tls: { certificate: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } },
    };
    writeFileSync(join(dir, 'registry.yml'), JSON.stringify(config));
    const child = spawn('docker-registry', ['serve', join(dir, 'registry.yml')], { stdio: 'ignore' });
    try {
      for (let i = 0; ; i++) {
        const up = await new Promise<boolean>((resolve) => {
          const req = https.get(`https://${addr}/v2/`, { rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          });
          req.on('error', () => resolve(false));
        });
        if (up) break;
        assert.ok(i < 100, 'TLS registry answers');
        await new Promise((r) => setTimeout(r, 100));
      }
      const ref = `${addr}/${TestImages.busybox}`;
      const strict = newService({ registry: { implicitLoopbackInsecure: false } });
      await assert.rejects(
        strict.pull(ref),
        (e) => hasCodeOf(e, 'ENGINE_REGISTRY_UNREACHABLE') && /certificate/i.test((e as Error).message),
      );
      assertEmptyStore(strict);
      const named = newService({ registry: { implicitLoopbackInsecure: false, insecureRegistries: [addr] } });
      assert.equal((await named.pull(ref)).id, findTestImage(set, TestImages.busybox).manifest?.config.digest);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
  },
);

test('load: docker save archive and OCI layout tar', { skip, timeout: 60_000 }, async () => {
  // OCI layout: the test image layout itself, tarred.
  const ociTar = join(work, `oci-${randomBytes(3).toString('hex')}.tar`);
  execFileSync('tar', ['-C', set.layoutDir, '-cf', ociTar, '.']);
  const svc = newService();
  const loaded = await svc.load(ociTar);
  const bb = findTestImage(set, TestImages.busybox);
  const got = loaded.find((r) => r.repoTags.includes(`docker.io/${TestImages.busybox}`));
  assert.ok(got, `busybox loaded with its name: ${loaded.map((r) => r.repoTags.join(',')).join(' | ')}`);
  assert.equal(got.id, bb.manifest?.config.digest);
  assert.ok((await svc.resolve(TestImages.whiteout)).layerDirs.length >= 2);

  // docker save: manifest.json + repositories + <id>.json + <layer>/layer.tar (uncompressed).
  const m = bb.manifest;
  assert.ok(m);
  const dir = mkdtempSync(join(work, 'save-'));
  const configHex = m.config.digest.slice(7);
  writeFileSync(join(dir, `${configHex}.json`), await readLayoutBlob(set.layoutDir, m.config.digest));
  const layers: string[] = [];
  for (const l of m.layers) {
    const id = l.diffId.slice(7);
    mkdirSync(join(dir, id));
    writeFileSync(join(dir, id, 'layer.tar'), gunzipSync(await readLayoutBlob(set.layoutDir, l.digest)));
    layers.push(`${id}/layer.tar`);
  }
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['shoal-test/saved:1'], Layers: layers }]),
  );
  writeFileSync(join(dir, 'repositories'), JSON.stringify({ 'shoal-test/saved': { '1': layers[0]?.split('/')[0] } }));
  const saveTar = join(work, `save-${randomBytes(3).toString('hex')}.tar`);
  execFileSync('tar', ['-C', dir, '-cf', saveTar, '.']);
  const svc2 = newService();
  const [saved] = await svc2.load(saveTar);
  assert.equal(saved?.id, m.config.digest);
  assert.deepEqual(saved?.repoTags, ['docker.io/shoal-test/saved:1']);
  const r = await svc2.resolve('shoal-test/saved:1');
  assert.ok(lstatSync(join(r.layerDirs[0] ?? '', 'bin/busybox')).isFile());

  // The same archive with its layer corrupted, loaded where that layer is already unpacked:
  // refused (the layer tar does not hash to the config's diffID), and nothing changes.
  const layerFile = join(dir, layers[0] ?? '');
  const good = readFileSync(layerFile);
  const bad = Buffer.from(good);
  bad[bad.length >> 1] = (bad[bad.length >> 1] ?? 0) ^ 0xff;
  writeFileSync(layerFile, bad);
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['shoal-test/corrupt:1'], Layers: layers }]),
  );
  const badTar = join(work, `bad-${randomBytes(3).toString('hex')}.tar`);
  execFileSync('tar', ['-C', dir, '-cf', badTar, '.']);
  writeFileSync(layerFile, good);
  const before = storeSnapshot(svc2);
  await assert.rejects(
    svc2.load(badTar),
    (e) => hasCodeOf(e, 'ENGINE_DIGEST_MISMATCH') && (e as Error).message.includes(m.layers[0]?.diffId ?? '?'),
  );
  assert.deepEqual(storeSnapshot(svc2), before, 'nothing changed by the refused load');
  await assert.rejects(svc2.resolve('shoal-test/corrupt:1'), (e) => hasCodeOf(e, 'ENGINE_IMAGE_NOT_FOUND'));
  // Into an empty store as well.
  const svc4 = newService();
  await assert.rejects(svc4.load(badTar), (e) => hasCodeOf(e, 'ENGINE_DIGEST_MISMATCH'));
  assertEmptyStore(svc4);

  // A broken archive: clear error, nothing left.
  const junk = join(work, 'junk.tar');
  writeFileSync(junk, randomBytes(4096));
  const svc3 = newService();
  await assert.rejects(svc3.load(junk), (e) => hasCodeOf(e, 'ENGINE_ARCHIVE_INVALID'));
  assertEmptyStore(svc3);
  await assert.rejects(svc3.load(join(work, 'missing.tar')), (e) => hasCodeOf(e, 'ENGINE_ARCHIVE_INVALID'));
});

test(
  'remove drops refs, deletes the image with its last ref, refuses while in use; gc',
  { skip, timeout: 60_000 },
  async () => {
    const users = new Map<string, string[]>();
    const svc = newService({ inUse: () => users });
    const a = await svc.pull(remote(TestImages.busybox));
    await svc.pull(remote(TestImages.busyboxDocker)); // same config and layer, other manifest
    const all = (await svc.list()).find((r) => r.id === a.id);
    assert.ok(all);
    assert.equal(all.repoTags.length, 2, 'two tags on one image');
    assert.equal(all.repoDigests.length, 2, 'two manifest digests on one image');
    const [tag1, last] = all.repoTags as [string, string];
    // A lease (held by the runtime between resolve() and recording its container) holds off removal.
    const lease = await svc.lease();
    const impatient = new ImageService({ root: svc.root, lockTimeoutMs: 100 });
    await assert.rejects(impatient.remove(all.repoDigests[0] ?? ''), (e) => hasCodeOf(e, 'ENGINE_STATE_LOCKED'));
    lease.release();
    assert.equal((await svc.list())[0]?.repoDigests.length, 2, 'nothing removed while leased');
    users.set(a.id, ['c1']);
    // Dropping a digest ref or one of two tags is fine while in use; dropping the last tag is not.
    assert.deepEqual((await svc.remove(all.repoDigests[0] ?? '')).deleted, []);
    assert.deepEqual((await svc.remove(tag1)).deleted, []);
    await assert.rejects(svc.remove(last), (e) => hasCodeOf(e, 'ENGINE_IMAGE_IN_USE'));
    const kept = (await svc.list()).find((r) => r.id === a.id);
    assert.deepEqual(kept?.repoTags, [last], 'nothing changed by the refused remove');
    users.clear();
    const res = await svc.remove(last);
    assert.deepEqual(res.deleted, [a.id]);
    assert.deepEqual(res.untagged.sort(), [last, all.repoDigests[1]].sort(), 'digest refs go with the last tag');
    assert.deepEqual(await svc.list(), []);
    assert.deepEqual(readdirSync(svc.blobs.blobDir), [], 'blobs removed with the image');
    assert.deepEqual(readdirSync(svc.layers.dir), [], 'layer dirs removed with the image');
    await assert.rejects(svc.resolve(last), (e) => hasCodeOf(e, 'ENGINE_IMAGE_NOT_FOUND'));

    // gc: a dangling image (its refs gone, as when another pull moves its tag), stray content and
    // temp files go; referenced content stays.
    const w = await svc.pull(remote(TestImages.whiteout));
    await svc.pull(remote(TestImages.busybox));
    await svc.store.update((idx) => {
      for (const [k, v] of Object.entries(idx.refs)) if (v === w.id) delete idx.refs[k];
    });
    writeFileSync(join(svc.blobs.blobDir, 'f'.repeat(64)), 'stray');
    writeFileSync(join(svc.blobs.tmpDir, 'blob-leftover'), 'partial');
    const gc = await svc.gc();
    assert.deepEqual(gc.images, [w.id]);
    assert.equal(gc.layers, 2, "the whiteout image's own two layers");
    assert.ok(gc.blobs >= 4, 'stray blob, whiteout config, manifest and layers');
    assert.deepEqual(readdirSync(svc.blobs.tmpDir), []);
    assert.ok(await svc.blobs.has(a.id), 'referenced config kept');
    assert.deepEqual((await svc.resolve(remote(TestImages.busybox))).id, a.id);
    assert.deepEqual(readdirSync(svc.layers.dir), [readdirSync(svc.layers.dir)[0]], 'one layer dir left');
    assert.equal(
      (await readFile(join(svc.layers.dir, readdirSync(svc.layers.dir)[0] ?? '', 'diffid'), 'utf8')).trim(),
      a.diffIds[0],
    );
  },
);

test('shoal image pull|ls|inspect|load|rm|gc through the CLI, daemonless', { skip, timeout: 60_000 }, () => {
  const root = new URL('../..', import.meta.url).pathname;
  const data = mkdtempSync(join(work, 'cli-'));
  const flags = ['--data-root', join(data, 'data')];
  const shoal = (args: string[], extra: string[] = flags): { code: number; stdout: string; stderr: string } => {
    try {
      const stdout = execFileSync(
        process.execPath,
        [join(root, 'packages/cli/dist/main.js'), 'image', ...args, ...extra],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      return { code: 0, stdout, stderr: '' };
    } catch (e) {
      const err = e as { status: number; stdout: string; stderr: string };
      return { code: err.status, stdout: err.stdout, stderr: err.stderr };
    }
  };
  const ref = remote(TestImages.whiteout);
  const pull = shoal(['pull', ref]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.equal(
    pull.stdout.split('\n').filter((l) => /: pulled /.test(l)).length,
    3,
    `one line per layer:\n${pull.stdout}`,
  );
  const ls = JSON.parse(shoal(['ls', '--json']).stdout) as { id: string; repoTags: string[] }[];
  assert.deepEqual(
    ls.map((i) => i.repoTags),
    [[ref]],
  );
  const info = JSON.parse(shoal(['inspect', ref]).stdout) as {
    id: string;
    layerDirs: string[];
    config: { rootfs: object };
  };
  assert.equal(info.id, ls[0]?.id);
  assert.equal(info.layerDirs.length, 3);
  assert.ok(existsSync(info.layerDirs[0] ?? ''));

  const bad = shoal(['pull', remote('shoal-test/busybox:nope')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^shoal: .*nope.*\[ENGINE_MANIFEST_UNKNOWN\]\n$/);
  const strict = shoal(['pull', '--insecure-registry', 'other:5000', remote('shoal-test/busybox:nope')]);
  assert.equal(strict.code, 1, 'loopback stays implicitly insecure when others are named');

  const archive = join(work, `cli-${randomBytes(3).toString('hex')}.tar`);
  execFileSync('tar', ['-C', set.layoutDir, '-cf', archive, '.']);
  const load = shoal(['load', '-i', archive]);
  assert.equal(load.code, 0, load.stderr);
  assert.match(load.stdout, /Loaded image: shoal-test\/busybox:1\n/);
  // The whiteout image already had the pulled tag: only the archive's own tags are printed.
  assert.match(load.stdout, /Loaded image: shoal-test\/whiteout:1\n/);
  assert.ok(!load.stdout.includes(reg.addr), `tags the archive does not hold:\n${load.stdout}`);

  const runRoot = ['--run-root', join(data, 'run')];
  // The archive tagged the same image as shoal-test/whiteout:1 too: it goes with its last tag.
  const rm = shoal(['rm', ref, TestImages.whiteout], [...flags, ...runRoot]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /Deleted: sha256:/);
  const gone = shoal(['inspect', ref]);
  assert.match(gone.stderr, /\[ENGINE_IMAGE_NOT_FOUND\]/);
  const gc = shoal(['gc'], [...flags, ...runRoot]);
  assert.equal(gc.code, 0, gc.stderr);
});

test(
  'temp files of dead processes go when the store opens, those of live ones stay; gc reports them',
  { skip, timeout: 60_000 },
  async () => {
    const root = mkdtempSync(join(work, 'sweep-'));
    // A process that has exited: its pid names no process with that start time any more.
    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid ?? 1)));
    const deadTag = `o${deadPid}.12345`;
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const liveTag = `o${process.pid}.${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
    for (const d of ['tmp', 'l', 'blobs/sha256', 'locks']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'tmp', `blob-0123456789ab-${deadTag}-aa11`), 'partial download');
    mkdirSync(join(root, 'tmp', `load-${deadTag}-bb22`, 'blobs'), { recursive: true });
    mkdirSync(join(root, 'l', `.tmp-0123456789ab-${deadTag}-cc33`, 'diff', 'etc'), { recursive: true });
    mkdirSync(join(root, 'l', `.del-0123456789ab-${deadTag}-dd44`, 'diff'), { recursive: true });
    writeFileSync(join(root, `.images.json.${deadTag}-ee55.tmp`), '{"half');
    writeFileSync(join(root, 'locks', 'blob-0123456789ab.lock'), `${deadPid}\n`);
    const live = `blob-0123456789ab-${liveTag}-ff66`;
    writeFileSync(join(root, 'tmp', live), 'a live download');
    writeFileSync(join(root, 'tmp', 'blob-leftover'), 'no owner named');

    const svc = new ImageService({ root });
    await svc.pull(remote(TestImages.busybox));
    assert.deepEqual(readdirSync(join(root, 'tmp')).sort(), ['blob-leftover', live].sort(), 'dead owners swept');
    assert.deepEqual(
      readdirSync(join(root, 'l')).filter((n) => n.startsWith('.')),
      [],
      'no half-made or half-deleted layer dirs',
    );
    assert.ok(!readdirSync(root).some((n) => n.endsWith('.tmp')), 'no temp copy of images.json');
    assert.deepEqual(readdirSync(join(root, 'locks')), [], 'unheld lock file removed');

    // gc in a fresh service (as `shoal image gc`): what its opening swept counts, and the unowned one.
    const gcSvc = new ImageService({ root });
    writeFileSync(join(root, 'tmp', `blob-0123456789ab-${deadTag}-ab12`), 'another partial download');
    const gc = await gcSvc.gc();
    assert.equal(gc.temp, 2, 'the dead one found at open and the unowned one');
    assert.deepEqual(readdirSync(join(root, 'tmp')), [live], 'a live process keeps its temp file');
    assert.deepEqual(gc.images, []);
    assert.equal((await gcSvc.resolve(remote(TestImages.busybox))).layerDirs.length, 1);
  },
);
