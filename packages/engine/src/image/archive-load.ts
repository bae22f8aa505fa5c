/**
 * Loading image archives: `docker save` tars (manifest.json + repositories, layers as
 * `<id>/layer.tar` or `blobs/sha256/<hex>`) and OCI image layout tars (oci-layout, index.json,
 * blobs/). The archive is unpacked to a temp dir under the store (names checked: no absolute
 * paths, no `..`, symlinks may not leave the archive), every blob is verified while copied into
 * the content store, and each layer is unpacked once with its diffID checked.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, realpath, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join, posix, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { errnoCode } from '@shoal/common';
import { ArchiveInvalidError, EngineError } from '../errors.js';
import type { BlobStore } from '../content/blob-store.js';
import type { LayerStore } from '../layer/layer-store.js';
import { cleanEntryName } from '../layer/apply-layer.js';
import { sniffCompression } from '../layer/decompress.js';
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
  const work = join(deps.blobs.tmpDir, `load-${randomBytes(6).toString('hex')}`);
  await mkdir(work, { recursive: true, mode: 0o700 });
  try {
    await unpackArchive(path, work);
    const has = async (p: string): Promise<boolean> => (await stat(join(work, p)).catch(() => undefined)) !== undefined;
    if (await has('index.json')) return await loadOciLayout(deps, path, work, created, opts);
    if (await has('manifest.json')) return await loadDockerSave(deps, path, work, created);
    throw new ArchiveInvalidError(path, 'neither manifest.json (docker save) nor index.json (OCI layout) found');
  } finally {
    await rm(work, { recursive: true, force: true });
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

/** Copies `file` into the blob store, checking it against `expect` when given. */
async function ingestFile(
  deps: LoadDeps,
  file: string,
  created: Created,
  expect?: { digest: string; size: number },
  what = 'blob',
): Promise<{ digest: string; size: number }> {
  const d = expect ?? (await sha256File(file));
  if (await deps.blobs.ingest(d.digest, d.size, () => Promise.resolve(createReadStream(file)), undefined, what))
    created.blobs.push(d.digest);
  return d;
}

async function unpackLayers(
  deps: LoadDeps,
  layerDigests: string[],
  diffIds: string[],
  created: Created,
): Promise<void> {
  for (let i = 0; i < layerDigests.length; i++) {
    const diffId = diffIds[i] as string;
    const had = await deps.layers.has(diffId);
    await deps.layers.ensure(diffId, deps.blobs.path(layerDigests[i] as string));
    if (!had) created.layers.push(diffId);
  }
}

async function loadOciLayout(
  deps: LoadDeps,
  archive: string,
  work: string,
  created: Created,
  opts: LoadOptions,
): Promise<PullOutcome[]> {
  const blobPath = (digest: string): Promise<string> => inside(archive, work, `blobs/${digest.replace(':', '/')}`);
  const index = parseManifest(await readFile(join(work, 'index.json')), '', `${archive} index.json`);
  if (index.kind !== 'index') throw new ArchiveInvalidError(archive, 'index.json is not an image index');
  const out: PullOutcome[] = [];
  for (const top of index.index.manifests) {
    let desc: Descriptor = top;
    let indexDigest: string | undefined;
    let parsed = parseManifest(
      await readFile(await blobPath(desc.digest)),
      desc.mediaType,
      `${archive} ${desc.digest}`,
    );
    await ingestFile(deps, await blobPath(desc.digest), created, desc, 'manifest');
    if (parsed.kind === 'index') {
      indexDigest = desc.digest;
      desc = pickPlatform(parsed.index, deps.platform, `${archive} ${desc.digest}`);
      parsed = parseManifest(await readFile(await blobPath(desc.digest)), desc.mediaType, `${archive} ${desc.digest}`);
      await ingestFile(deps, await blobPath(desc.digest), created, desc, 'manifest');
      if (parsed.kind !== 'manifest') throw new ArchiveInvalidError(archive, `${desc.digest}: nested index`);
    }
    const m = parsed.manifest;
    await ingestFile(deps, await blobPath(m.config.digest), created, m.config, 'image config');
    const config = parseConfig(
      await deps.blobs.read(m.config.digest),
      m.layers.length,
      `${archive} ${m.config.digest}`,
    );
    for (const l of m.layers) await ingestFile(deps, await blobPath(l.digest), created, l, `layer blob in ${archive}`);
    await unpackLayers(
      deps,
      m.layers.map((l) => l.digest),
      config.rootfs.diff_ids,
      created,
    );
    const name =
      top.annotations?.['io.containerd.image.name'] ?? top.annotations?.['org.opencontainers.image.ref.name'];
    out.push({ image: record(m, config, desc.digest, indexDigest), refs: refsFor(name, opts) });
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

async function loadDockerSave(deps: LoadDeps, archive: string, work: string, created: Created): Promise<PullOutcome[]> {
  const entries = await readJson<DockerSaveEntry[]>(archive, join(work, 'manifest.json'), 'manifest.json');
  if (!Array.isArray(entries) || entries.length === 0)
    throw new ArchiveInvalidError(archive, 'manifest.json lists no images');
  const out: PullOutcome[] = [];
  for (const e of entries) {
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers) || e.Layers.some((l) => typeof l !== 'string')) {
      throw new ArchiveInvalidError(archive, 'manifest.json entry needs Config and Layers');
    }
    const configFile = await inside(archive, work, e.Config);
    const configD = await ingestFile(deps, configFile, created, undefined, 'image config');
    const hexName = posix.basename(e.Config).replace(/\.json$/, '');
    if (/^[a-f0-9]{64}$/.test(hexName) && `sha256:${hexName}` !== configD.digest) {
      throw new ArchiveInvalidError(archive, `config ${e.Config} hashes to ${configD.digest}`);
    }
    const layerFiles = e.Layers as string[];
    const config = parseConfig(await deps.blobs.read(configD.digest), layerFiles.length, `${archive} ${e.Config}`);
    const layers: Descriptor[] = [];
    let zstd = false;
    for (const lf of layerFiles) {
      const file = await inside(archive, work, lf);
      const d = await ingestFile(deps, file, created, undefined, `layer ${lf} in ${archive}`);
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
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: zstd ? OCI_MANIFEST : DOCKER_MANIFEST,
      config: { mediaType: zstd ? OCI_CONFIG : DOCKER_CONFIG, ...configD },
      layers,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = await deps.blobs.put(bytes);
    created.blobs.push(manifestDigest);
    await unpackLayers(
      deps,
      layers.map((l) => l.digest),
      config.rootfs.diff_ids,
      created,
    );
    const refs = (Array.isArray(e.RepoTags) ? e.RepoTags : [])
      .filter((t): t is string => typeof t === 'string')
      .map((t) => {
        const r = parseReference(t);
        return tagRef(r) ?? formatReference(r);
      });
    out.push({ image: record(manifest, config, manifestDigest), refs });
  }
  return out;
}
