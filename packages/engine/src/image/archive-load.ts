/**
 * Loading image archives: `docker save` tars (manifest.json + repositories, layers as
 * `<id>/layer.tar` or `blobs/sha256/<hex>`) and OCI image layout tars (oci-layout, index.json,
 * blobs/). The archive is unpacked to a temp dir under the store (names checked: no absolute
 * paths, no `..`, symlinks may not leave the archive), every blob is verified while copied into
 * the content store, and each layer is unpacked once with its diffID checked.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, realpath, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join, posix, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { errnoCode, ignoreErrno } from '@shoal/common';
import { ArchiveInvalidError, DigestMismatchError, EngineError } from '../errors.js';
import type { BlobStore } from '../content/blob-store.js';
import type { LayerStore } from '../layer/layer-store.js';
import { cleanEntryName } from '../layer/apply-layer.js';
import { sniffCompression } from '../layer/decompress.js';
import { uncompressedDigest } from '../layer/layer-store.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
} from './media-types.js';
import { parseConfig, parseManifest, pickPlatform } from './manifest.js';
import { formatReference, parseReference, tagRef } from './reference.js';
import type { Created, PullOutcome } from './pull.js';
import type { Descriptor, ImageManifest, Platform } from './types.js';

export interface LoadDeps {
  blobs: BlobStore;
  layers: LayerStore;
  platform: Platform;
}

export interface LoadOptions {
  /** Repository for OCI entries whose ref name is a bare tag (e.g. skopeo's `oci:dir:tag`). */
  name?: string;
}

/** Loads every image of the archive at `path`; returns what to commit. */
export async function loadArchive(
  deps: LoadDeps,
  path: string,
  created: Created,
  opts: LoadOptions = {},
): Promise<PullOutcome[]> {
  const work = deps.blobs.tempPath('load');
  await mkdir(work, { recursive: true, mode: 0o700 });
  try {
    await unpackArchive(path, work);
    const has = async (p: string): Promise<boolean> =>
      (await stat(join(work, p)).catch(ignoreErrno('ENOENT', 'ENOTDIR'))) !== undefined;
    let plans: LoadPlan[];
    if (await has('index.json')) plans = await planOciLayout(deps, path, work, opts);
    else if (await has('manifest.json')) plans = await planDockerSave(path, work);
    else throw new ArchiveInvalidError(path, 'neither manifest.json (docker save) nor index.json (OCI layout) found');
    // Everything was verified (digests, sizes, diffIDs): only now does the store change.
    const out: PullOutcome[] = [];
    for (const plan of plans) out.push(await commitPlan(deps, plan, created));
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** One image of an archive, checked and ready to be copied into the store. */
interface LoadPlan {
  /** Files to ingest, in order, with the digest and size they hash to. */
  blobs: { file: string; digest: string; size: number; what: string }[];
  /** A synthesised manifest (docker save) to store as well. */
  manifestBytes?: Buffer;
  /** Layer blobs (compressed digests) with the diffIDs they were checked to unpack to. */
  layers: { digest: string; diffId: string }[];
  image: PullOutcome['image'];
  refs: string[];
}

async function commitPlan(deps: LoadDeps, plan: LoadPlan, created: Created): Promise<PullOutcome> {
  for (const b of plan.blobs) {
    if (await deps.blobs.ingest(b.digest, b.size, () => Promise.resolve(createReadStream(b.file)), undefined, b.what))
      created.blobs.push(b.digest);
  }
  if (plan.manifestBytes) {
    const had = await deps.blobs.has(plan.image.manifestDigest);
    await deps.blobs.put(plan.manifestBytes, { digest: plan.image.manifestDigest }, 'manifest');
    if (!had) created.blobs.push(plan.image.manifestDigest);
  }
  for (const l of plan.layers) {
    const had = await deps.layers.has(l.diffId);
    await deps.layers.ensure(l.diffId, { digest: l.digest, path: deps.blobs.path(l.digest) }, { verified: true });
    if (!had) created.layers.push(l.diffId);
  }
  return { image: plan.image, refs: plan.refs };
}

/**
 * Checks every layer file against the config's diffIDs (the uncompressed tar's sha256), also
 * for layers the store already has: a corrupted archive must not give an image a blob that does
 * not unpack to its layer.
 */
async function verifyLayers(archive: string, files: string[], diffIds: string[], names: string[]): Promise<void> {
  for (let i = 0; i < files.length; i++) {
    let actual: string;
    try {
      actual = await uncompressedDigest(files[i] as string);
    } catch (err) {
      throw new ArchiveInvalidError(archive, `layer ${names[i]}: ${(err as Error).message}`, { cause: err });
    }
    if (actual !== diffIds[i])
      throw new DigestMismatchError(
        diffIds[i] as string,
        actual,
        `${archive}: layer ${names[i]} uncompressed (diffID)`,
      );
  }
}

async function unpackArchive(path: string, dest: string): Promise<void> {
  const extract = tar.extract();
  const consume = async (): Promise<void> => {
    for await (const entry of extract) {
      const h = entry.header;
      let rel: string;
      try {
        rel = cleanEntryName(h.name, path);
      } catch (err) {
        throw new ArchiveInvalidError(path, (err as Error).message, { cause: err });
      }
      if (rel === '') {
        entry.resume();
        continue;
      }
      const target = join(dest, rel);
      await mkdir(dirname(target), { recursive: true });
      if (h.type === 'file' || h.type === 'contiguous-file') {
        await pipeline(entry, createWriteStream(target, { flags: 'w', mode: 0o600 }));
      } else {
        entry.resume();
        if (h.type === 'directory') await mkdir(target, { recursive: true });
        else if (h.type === 'symlink') await symlink(h.linkname, target);
        // other entry types carry nothing an image needs
      }
    }
  };
  try {
    await Promise.all([pipeline(createReadStream(path), extract), consume()]);
  } catch (err) {
    extract.destroy();
    if (err instanceof EngineError) throw err;
    if (errnoCode(err) === 'ENOENT' && (err as { path?: string }).path === path) {
      throw new ArchiveInvalidError(path, 'no such file', { cause: err });
    }
    throw new ArchiveInvalidError(path, `cannot read tar: ${(err as Error).message}`, { cause: err });
  }
}

/** Resolves `rel` inside `work`, refusing symlinks that lead out of it. */
async function inside(archive: string, work: string, rel: string): Promise<string> {
  const clean = cleanEntryName(rel, archive);
  let real: string;
  try {
    real = await realpath(join(work, clean));
  } catch (err) {
    throw new ArchiveInvalidError(archive, `missing ${JSON.stringify(rel)}`, { cause: err });
  }
  const root = await realpath(work);
  if (real !== root && !real.startsWith(root + sep))
    throw new ArchiveInvalidError(archive, `${JSON.stringify(rel)} leads outside the archive`);
  return real;
}

async function readJson<T>(archive: string, file: string, what: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    throw new ArchiveInvalidError(archive, `${what} is not valid JSON`, { cause: err });
  }
}

async function sha256File(file: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(c);
    size += c.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** A blob of the layout at `file`, checked against its descriptor. */
async function checkedBlob(
  archive: string,
  file: string,
  desc: { digest: string; size: number },
  what: string,
): Promise<LoadPlan['blobs'][number]> {
  const d = await sha256File(file);
  if (d.digest !== desc.digest) throw new DigestMismatchError(desc.digest, d.digest, `${archive}: ${what}`);
  if (d.size !== desc.size)
    throw new DigestMismatchError(`${desc.size} bytes`, `${d.size} bytes`, `${archive}: ${what} ${desc.digest} size`);
  return { file, ...d, what: `${what} in ${archive}` };
}

async function planOciLayout(deps: LoadDeps, archive: string, work: string, opts: LoadOptions): Promise<LoadPlan[]> {
  const blobPath = (digest: string): Promise<string> => inside(archive, work, `blobs/${digest.replace(':', '/')}`);
  const index = parseManifest(await readFile(join(work, 'index.json')), '', `${archive} index.json`);
  if (index.kind !== 'index') throw new ArchiveInvalidError(archive, 'index.json is not an image index');
  const out: LoadPlan[] = [];
  for (const top of index.index.manifests) {
    const blobs: LoadPlan['blobs'] = [];
    let desc: Descriptor = top;
    let indexDigest: string | undefined;
    let file = await blobPath(desc.digest);
    blobs.push(await checkedBlob(archive, file, desc, 'manifest'));
    let parsed = parseManifest(await readFile(file), desc.mediaType, `${archive} ${desc.digest}`);
    if (parsed.kind === 'index') {
      indexDigest = desc.digest;
      desc = pickPlatform(parsed.index, deps.platform, `${archive} ${desc.digest}`);
      file = await blobPath(desc.digest);
      blobs.push(await checkedBlob(archive, file, desc, 'manifest'));
      parsed = parseManifest(await readFile(file), desc.mediaType, `${archive} ${desc.digest}`);
      if (parsed.kind !== 'manifest') throw new ArchiveInvalidError(archive, `${desc.digest}: nested index`);
    }
    const m = parsed.manifest;
    const configFile = await blobPath(m.config.digest);
    blobs.push(await checkedBlob(archive, configFile, m.config, 'image config'));
    const config = parseConfig(await readFile(configFile), m.layers.length, `${archive} ${m.config.digest}`);
    const layerFiles: string[] = [];
    for (const l of m.layers) {
      const lf = await blobPath(l.digest);
      blobs.push(await checkedBlob(archive, lf, l, 'layer blob'));
      layerFiles.push(lf);
    }
    await verifyLayers(
      archive,
      layerFiles,
      config.rootfs.diff_ids,
      m.layers.map((l) => l.digest),
    );
    const name =
      top.annotations?.['io.containerd.image.name'] ?? top.annotations?.['org.opencontainers.image.ref.name'];
    out.push({
      blobs,
      layers: m.layers.map((l, i) => ({ digest: l.digest, diffId: config.rootfs.diff_ids[i] as string })),
      image: record(m, config, desc.digest, indexDigest),
      refs: refsFor(name, opts),
    });
  }
  return out;
}

function refsFor(name: string | undefined, opts: LoadOptions): string[] {
  if (!name) return [];
  if (/^[\w][\w.-]{0,127}$/.test(name) && !name.includes('/')) {
    // A bare tag: needs a repository name from the caller.
    if (!opts.name) return [];
    const r = parseReference(`${opts.name}:${name}`);
    return [tagRef(r) ?? formatReference(r)];
  }
  const r = parseReference(name);
  return [tagRef(r) ?? formatReference(r)];
}

function record(
  m: ImageManifest,
  config: ReturnType<typeof parseConfig>,
  manifestDigest: string,
  indexDigest?: string,
): PullOutcome['image'] {
  const image: PullOutcome['image'] = {
    id: m.config.digest,
    manifestDigest,
    diffIds: config.rootfs.diff_ids,
    layerDigests: m.layers.map((l) => l.digest),
    size: m.config.size + m.layers.reduce((n, l) => n + l.size, 0),
  };
  if (indexDigest) image.indexDigest = indexDigest;
  if (config.created) image.created = config.created;
  if (config.architecture) image.architecture = config.architecture;
  if (config.os) image.os = config.os;
  return image;
}

interface DockerSaveEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

async function planDockerSave(archive: string, work: string): Promise<LoadPlan[]> {
  const entries = await readJson<DockerSaveEntry[]>(archive, join(work, 'manifest.json'), 'manifest.json');
  if (!Array.isArray(entries) || entries.length === 0)
    throw new ArchiveInvalidError(archive, 'manifest.json lists no images');
  const out: LoadPlan[] = [];
  for (const e of entries) {
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers) || e.Layers.some((l) => typeof l !== 'string')) {
      throw new ArchiveInvalidError(archive, 'manifest.json entry needs Config and Layers');
    }
    const configFile = await inside(archive, work, e.Config);
    const configD = await sha256File(configFile);
    const hexName = posix.basename(e.Config).replace(/\.json$/, '');
    if (/^[a-f0-9]{64}$/.test(hexName) && `sha256:${hexName}` !== configD.digest) {
      throw new ArchiveInvalidError(archive, `config ${e.Config} hashes to ${configD.digest}`);
    }
    const blobs: LoadPlan['blobs'] = [{ file: configFile, ...configD, what: `image config in ${archive}` }];
    const layerNames = e.Layers as string[];
    const config = parseConfig(await readFile(configFile), layerNames.length, `${archive} ${e.Config}`);
    const layers: Descriptor[] = [];
    const layerFiles: string[] = [];
    let zstd = false;
    for (const lf of layerNames) {
      const file = await inside(archive, work, lf);
      const d = await sha256File(file);
      blobs.push({ file, ...d, what: `layer ${lf} in ${archive}` });
      layerFiles.push(file);
      const head = Buffer.alloc(4);
      const fh = await open(file, 'r');
      try {
        await fh.read(head, 0, 4, 0);
      } finally {
        await fh.close();
      }
      const c = sniffCompression(head);
      if (c === 'zstd') zstd = true;
      layers.push({ mediaType: c === 'gzip' ? DOCKER_LAYER_GZIP : c === 'zstd' ? OCI_LAYER_ZSTD : DOCKER_LAYER, ...d });
    }
    await verifyLayers(archive, layerFiles, config.rootfs.diff_ids, layerNames);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: zstd ? OCI_MANIFEST : DOCKER_MANIFEST,
      config: { mediaType: zstd ? OCI_CONFIG : DOCKER_CONFIG, ...configD },
      layers,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
    const refs = (Array.isArray(e.RepoTags) ? e.RepoTags : [])
      .filter((t): t is string => typeof t === 'string')
      .map((t) => {
        const r = parseReference(t);
        return tagRef(r) ?? formatReference(r);
      });
    out.push({
      blobs,
      manifestBytes,
      layers: layers.map((l, i) => ({ digest: l.digest, diffId: config.rootfs.diff_ids[i] as string })),
      image: record(manifest, config, manifestDigest),
      refs,
    });
  }
  return out;
}
