// Pure parsing: references, manifests and platform choice, auth challenges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@shoal/common';
import { familiarName, formatReference, parseReference } from './reference.js';
import { parseManifest, pickPlatform } from './manifest.js';
import { parseChallenge } from '../registry/auth.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX } from './media-types.js';
import type { ImageIndex } from './types.js';

const D = (c: string): string => `sha256:${c.repeat(64)}`;

test('references are normalised as Docker does', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['shoal-test/busybox:1', 'docker.io/shoal-test/busybox:1'],
    ['index.docker.io/library/alpine', 'docker.io/library/alpine:latest'],
    ['127.0.0.1:5000/shoal-test/busybox:1', '127.0.0.1:5000/shoal-test/busybox:1'],
    ['localhost/app', 'localhost/app:latest'],
    [`reg.example:443/a/b/c@${D('a')}`, `reg.example:443/a/b/c@${D('a')}`],
    [`app:v1@${D('b')}`, `docker.io/library/app:v1@${D('b')}`],
  ];
  for (const [input, want] of cases) assert.equal(formatReference(parseReference(input)), want, input);
  assert.equal(familiarName('docker.io/library/busybox'), 'busybox');
  assert.equal(familiarName('docker.io/shoal/x'), 'shoal/x');
  for (const bad of ['', 'UPPER/case', 'a//b', 'a:b:c/d', 'x@sha256:zz', 'bad tag:!', 'a/-b']) {
    assert.throws(
      () => parseReference(bad),
      (e) => hasCode(e, 'ENGINE_INVALID_REFERENCE'),
      bad,
    );
  }
});

test('linux/amd64 is picked from an index; variants and attestations handled', () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: DOCKER_MANIFEST,
        digest: D('1'),
        size: 1,
        platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
      },
      { mediaType: DOCKER_MANIFEST, digest: D('2'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      {
        mediaType: DOCKER_MANIFEST,
        digest: D('3'),
        size: 1,
        platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
      },
    ],
  };
  assert.equal(pickPlatform(index, { os: 'linux', architecture: 'amd64' }, 'x').digest, D('2'));
  assert.equal(pickPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }, 'x').digest, D('1'));
  assert.throws(
    () => pickPlatform(index, { os: 'linux', architecture: 'arm64' }, 'x'),
    (e) => hasCode(e, 'ENGINE_PLATFORM_NOT_FOUND') && /linux\/arm\/v7/.test((e as Error).message),
  );
});

test('manifests are classified by media type or shape; schema1 and foreign layers refused', () => {
  const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [] }));
  assert.equal(parseManifest(list, '', 'x').kind, 'index');
  const bare = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
  assert.equal(parseManifest(bare, '', 'x').mediaType, OCI_INDEX);
  const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, fsLayers: [] }));
  assert.throws(
    () => parseManifest(schema1, '', 'x'),
    (e) => hasCode(e, 'ENGINE_UNSUPPORTED_MEDIA_TYPE'),
  );
  const foreign = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: D('c'), size: 2 },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: D('d'), size: 3 }],
    }),
  );
  assert.throws(
    () => parseManifest(foreign, '', 'x'),
    (e) => hasCode(e, 'ENGINE_UNSUPPORTED_MEDIA_TYPE'),
  );
  assert.throws(
    () => parseManifest(Buffer.from('{'), '', 'x'),
    (e) => hasCode(e, 'ENGINE_REGISTRY_PROTOCOL'),
  );
});

test('WWW-Authenticate challenges are parsed', () => {
  const c = parseChallenge(
    'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
  );
  assert.equal(c?.scheme, 'bearer');
  assert.equal(c?.params['realm'], 'https://auth.example/token');
  assert.equal(c?.params['scope'], 'repository:a/b:pull');
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), {
    scheme: 'basic',
    params: { realm: 'Registry Realm' },
  });
});
