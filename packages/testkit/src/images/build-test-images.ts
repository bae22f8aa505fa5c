/**
 * Builds the offline test images from Debian's busybox-static into an OCI image layout, cached
 * by the hash of the busybox binary, so the second build is a directory read.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rename, rm, writeFile, access, constants } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { errnoCode } from '@shoal/common';
import { ImageBuildError } from '../errors.js';
import { MediaType, OciLayoutWriter, sha256Digest, type Descriptor } from './oci-layout.js';
import { writeTar, type TarEntry, TAR_MTIME } from './tar-writer.js';
import {
  BUSYBOX_PATH,
  REQUIRED_APPLETS,
  TEST_IMAGE_PATH,
  archEntries,
  busyboxEntries,
  hostLibcPath,
  goArch,
  whiteoutLowerEntries,
  whiteoutUpperEntries,
} from './test-rootfs.js';

/** Bump when the images' content or layout changes, so old caches are not reused. */
const BUILDER_VERSION = 4;

/** References of the test images (repository:tag, without a registry host). */
export const TestImages = {
  /** OCI manifest, gzip layer: the default test image. */
  busybox: 'shoal-test/busybox:1',
  /** Docker schema2 manifest of the same layer and config. */
  busyboxDocker: 'shoal-test/busybox:1-docker',
  /** OCI manifest with a zstd layer. */
  busyboxZstd: 'shoal-test/busybox:1-zstd',
  /** OCI manifest with an uncompressed tar layer. */
  busyboxTar: 'shoal-test/busybox:1-uncompressed',
  /** OCI image index: this machine's architecture and one foreign one. */
  busyboxIndex: 'shoal-test/busybox:1-multiarch',
  /** Docker manifest list: this machine's architecture and one foreign one. */
  busyboxList: 'shoal-test/busybox:1-list',
  /** Three layers; the top one deletes a file and makes a directory opaque. */
  whiteout: 'shoal-test/whiteout:1',
} as const;

export type Compression = 'gzip' | 'zstd' | 'none';

/** A layer of a built image, with the digest of its uncompressed tar. */
export interface BuiltLayer extends Descriptor {
  diffId: string;
  compression: Compression;
}

/** One image manifest (OCI or Docker schema2). */
export interface BuiltManifest {
  mediaType: string;
  digest: string;
  size: number;
  platform: { os: string; architecture: string };
  config: Descriptor;
  layers: BuiltLayer[];
}

/** A tagged image: a manifest, or an index/list whose `children` are manifests. */
export interface BuiltImage {
  /** `shoal-test/busybox:1` */
  ref: string;
  repository: string;
  tag: string;
  mediaType: string;
  digest: string;
  size: number;
  /** Present for single manifests. */
  manifest?: BuiltManifest;
  /** Present for an index or manifest list, in the order listed. */
  children?: BuiltManifest[];
}

/** The result of a build: where the layout is and what is in it. */
export interface TestImageSet {
  layoutDir: string;
  busyboxDigest: string;
  images: BuiltImage[];
}

/** Finds an image of a set by reference; throws if missing. */
export function findTestImage(set: TestImageSet, ref: string): BuiltImage {
  const image = set.images.find((i) => i.ref === ref);
  if (!image) throw new ImageBuildError(`no test image '${ref}' in ${set.layoutDir}`);
  return image;
}

/** The default cache root: /var/cache/shoal-test-images when writable, else a tmp dir. */
export async function defaultImageCacheDir(): Promise<string> {
  const fromEnv = process.env['SHOAL_IMAGE_CACHE'];
  if (fromEnv) return fromEnv;
  try {
    await mkdir('/var/cache/shoal-test-images', { recursive: true });
    await access('/var/cache/shoal-test-images', constants.W_OK);
    return '/var/cache/shoal-test-images';
  } catch (err) {
    // not root, or a read-only /var: a per-user cache under the temp dir
    if (!['EACCES', 'EPERM', 'EROFS'].includes(errnoCode(err) ?? '')) throw err;
    return join(tmpdir(), 'shoal-test-images');
  }
}

function compress(tar: Buffer, compression: Compression): Buffer {
  switch (compression) {
    case 'gzip':
      return zlib.gzipSync(tar, { level: 6 });
    case 'zstd':
      // Node >= 22.15 has zstd in zlib; older Nodes (Debian's node 20) use the zstd binary.
      if (typeof zlib.zstdCompressSync === 'function') {
        return zlib.zstdCompressSync(tar, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 } });
      }
      return execFileSync('zstd', ['-3', '-q', '-c'], { input: tar, maxBuffer: 1 << 30 });
    case 'none':
      return tar;
  }
}

interface Ctx {
  layout: OciLayoutWriter;
  layerCache: Map<string, BuiltLayer>;
}

async function layer(ctx: Ctx, key: string, entries: TarEntry[], c: Compression, docker: boolean): Promise<BuiltLayer> {
  const cacheKey = `${key}/${c}/${docker}`;
  const hit = ctx.layerCache.get(cacheKey);
  if (hit) return hit;
  const tar = writeTar(entries);
  const mediaType = docker
    ? MediaType.dockerLayerGzip
    : { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd, none: MediaType.ociLayerTar }[c];
  if (docker && c !== 'gzip') throw new ImageBuildError('Docker schema2 layers are gzip only');
  const desc = await ctx.layout.putBlob(compress(tar, c), mediaType);
  const built: BuiltLayer = { ...desc, diffId: sha256Digest(tar), compression: c };
  ctx.layerCache.set(cacheKey, built);
  return built;
}

interface ImageSpec {
  arch: string;
  layers: BuiltLayer[];
  env: string[];
  history: string[];
  docker: boolean;
}

async function manifest(ctx: Ctx, spec: ImageSpec): Promise<BuiltManifest> {
  const created = new Date(TAR_MTIME * 1000).toISOString();
  const config = {
    created,
    architecture: spec.arch,
    os: 'linux',
    config: {
      Env: [`PATH=${TEST_IMAGE_PATH}`, ...spec.env],
      Entrypoint: ['/bin/shoal-entry'],
      Cmd: ['sh'],
      WorkingDir: '/srv',
      ExposedPorts: { '8080/tcp': {} },
      Labels: { 'org.shoal.test': 'true' },
    },
    rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) },
    history: spec.history.map((h) => ({ created, created_by: h })),
  };
  const cfg = await ctx.layout.putJson(config, spec.docker ? MediaType.dockerConfig : MediaType.ociConfig);
  const layers = spec.layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size }));
  const mediaType = spec.docker ? MediaType.dockerManifest : MediaType.ociManifest;
  const doc = { schemaVersion: 2, mediaType, config: cfg.desc, layers };
  const m = await ctx.layout.putJson(doc, mediaType);
  return { ...m.desc, platform: { os: 'linux', architecture: spec.arch }, config: cfg.desc, layers: spec.layers };
}

async function index(ctx: Ctx, children: BuiltManifest[], docker: boolean): Promise<Descriptor> {
  const mediaType = docker ? MediaType.dockerList : MediaType.ociIndex;
  const manifests = children.map((c) => ({
    mediaType: c.mediaType,
    digest: c.digest,
    size: c.size,
    platform: c.platform,
  }));
  return (await ctx.layout.putJson({ schemaVersion: 2, mediaType, manifests }, mediaType)).desc;
}

async function busyboxApplets(): Promise<string[]> {
  const { stdout } = await promisify(execFile)(BUSYBOX_PATH, ['--list']);
  const applets = stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  const missing = REQUIRED_APPLETS.filter((a) => !applets.includes(a));
  if (missing.length) throw new ImageBuildError(`${BUSYBOX_PATH} lacks applets: ${missing.join(', ')}`);
  return applets;
}

interface Libc {
  path: string;
  data: Buffer;
}

/** The host's libc.so.6 for the image (undefined where the machine has none at Debian's path). */
async function readHostLibc(): Promise<Libc | undefined> {
  const path = hostLibcPath();
  if (path === undefined) return undefined;
  try {
    return { path, data: await readFile(path) };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new ImageBuildError(`cannot read ${path}`, { cause: err });
  }
}

async function buildInto(dir: string, busybox: Buffer, libc: Libc | undefined): Promise<TestImageSet> {
  const ctx: Ctx = { layout: new OciLayoutWriter(dir), layerCache: new Map() };
  const native = goArch();
  const foreign = native === 'amd64' ? 'arm64' : 'amd64';
  const base = busyboxEntries(busybox, await busyboxApplets(), native, libc);
  const env = ['SHOAL_TEST_IMAGE=busybox'];
  const hist = ['shoal testkit: busybox-static root filesystem'];
  const images: BuiltImage[] = [];
  const add = (ref: string, desc: Descriptor, m?: BuiltManifest, children?: BuiltManifest[]): void => {
    const [repository = '', tag = ''] = ref.split(':');
    ctx.layout.addRef(desc, ref);
    images.push({
      ref,
      repository,
      tag,
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      ...(m ? { manifest: m } : {}),
      ...(children ? { children } : {}),
    });
  };

  const one = async (c: Compression, docker: boolean): Promise<BuiltManifest> =>
    manifest(ctx, { arch: native, layers: [await layer(ctx, 'busybox', base, c, docker)], env, history: hist, docker });
  const oci = await one('gzip', false);
  add(TestImages.busybox, oci, oci);
  const dock = await one('gzip', true);
  add(TestImages.busyboxDocker, dock, dock);
  const zstd = await one('zstd', false);
  add(TestImages.busyboxZstd, zstd, zstd);
  const tar = await one('none', false);
  add(TestImages.busyboxTar, tar, tar);

  const foreignOf = async (docker: boolean): Promise<BuiltManifest> =>
    manifest(ctx, {
      arch: foreign,
      layers: [
        await layer(ctx, 'busybox', base, 'gzip', docker),
        await layer(ctx, `arch-${foreign}`, archEntries(foreign), 'gzip', docker),
      ],
      env,
      history: [...hist, `shoal testkit: mark as ${foreign}`],
      docker,
    });
  const ociKids = [oci, await foreignOf(false)];
  add(TestImages.busyboxIndex, await index(ctx, ociKids, false), undefined, ociKids);
  const dockerKids = [dock, await foreignOf(true)];
  add(TestImages.busyboxList, await index(ctx, dockerKids, true), undefined, dockerKids);

  const wo = await manifest(ctx, {
    arch: native,
    layers: [
      await layer(ctx, 'busybox', base, 'gzip', false),
      await layer(ctx, 'wh-lower', whiteoutLowerEntries(), 'gzip', false),
      await layer(ctx, 'wh-upper', whiteoutUpperEntries(), 'gzip', false),
    ],
    env: ['SHOAL_TEST_IMAGE=whiteout'],
    history: [...hist, 'shoal testkit: files to delete', 'shoal testkit: whiteout and opaque directory'],
    docker: false,
  });
  add(TestImages.whiteout, wo, wo);

  await ctx.layout.finish();
  const set: TestImageSet = { layoutDir: dir, busyboxDigest: sha256Digest(busybox), images };
  await writeFile(join(dir, 'shoal-images.json'), JSON.stringify(set, null, 2));
  return set;
}

/**
 * Builds (or reuses from the cache) the test images and returns where their OCI layout is and
 * every digest in it. Needs only `/bin/busybox` (Debian busybox-static); no network.
 * @param cacheDir the cache root (default {@link defaultImageCacheDir}); the layout goes into a
 *   subdirectory keyed by the busybox binary's hash and the builder version.
 * @throws ImageBuildError when busybox is missing or the cache is not writable.
 */
export async function buildTestImages(cacheDir?: string): Promise<TestImageSet> {
  const root = cacheDir ?? (await defaultImageCacheDir());
  let busybox: Buffer;
  try {
    busybox = await readFile(BUSYBOX_PATH);
  } catch (err) {
    throw new ImageBuildError(`cannot read ${BUSYBOX_PATH} (install busybox-static)`, { cause: err });
  }
  const libc = await readHostLibc();
  const inputs = libc === undefined ? busybox : Buffer.concat([busybox, libc.data]);
  const key = `v${BUILDER_VERSION}-${goArch()}-${sha256Digest(inputs).slice(7, 23)}`;
  const final = join(root, key);
  try {
    const set = JSON.parse(await readFile(join(final, 'shoal-images.json'), 'utf8')) as TestImageSet;
    return { ...set, layoutDir: final };
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError))
      throw new ImageBuildError(`cannot read the cache in ${final}`, { cause: err });
  }
  try {
    await mkdir(root, { recursive: true });
    const work = await mkdtemp(join(root, `.build-${key}-`));
    try {
      await buildInto(work, busybox, libc);
      await rename(work, final);
    } catch (err) {
      await rm(work, { recursive: true, force: true });
      const code = errnoCode(err);
      // Another process finished the same build first: use its result.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
    const set = JSON.parse(await readFile(join(final, 'shoal-images.json'), 'utf8')) as TestImageSet;
    return { ...set, layoutDir: final };
  } catch (err) {
    if (err instanceof ImageBuildError) throw err;
    throw new ImageBuildError(`cannot write ${root}`, { cause: err });
  }
}
