/**
 * Pulling one image from a registry into the content and layer stores:
 * manifest (by tag or digest, digest verified) -> platform pick from an index -> config blob ->
 * layer blobs (size + sha256 verified while streaming, skipped when present, shared between
 * concurrent pulls) -> unpacked layer dirs (diffID verified). Nothing is committed here: the
 * caller records the image and its refs when everything is in place.
 */
import { sleep, throwIfAborted } from '@shoal/common';
import { DigestMismatchError, RegistryUnreachableError, UnsupportedMediaTypeError } from '../errors.js';
import type { BlobStore } from '../content/blob-store.js';
import type { LayerStore } from '../layer/layer-store.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { parseConfig, parseManifest, pickPlatform } from './manifest.js';
import { formatReference, repoName, type ImageReference } from './reference.js';
import type { StoredImage } from './image-store.js';
import type { Descriptor, ImageConfigFile, Platform, ProgressCallback } from './types.js';

export interface PullDeps {
  blobs: BlobStore;
  layers: LayerStore;
  registry: RegistryClient;
  platform: Platform;
}

/** What a pull added to the stores, so that a failed pull can take it back. */
export interface Created {
  blobs: string[];
  layers: string[];
}

export interface PullOutcome {
  image: StoredImage;
  /** Refs to record: `name:tag` (if pulled by tag) and `name@digest`. */
  refs: string[];
}

const LAYER_CONCURRENCY = 3;
/** Tries per layer blob when the registry drops the connection or answers 5xx. */
const BLOB_ATTEMPTS = 3;

export async function pullImage(
  deps: PullDeps,
  ref: ImageReference,
  created: Created,
  onProgress: ProgressCallback = () => undefined,
  signal?: AbortSignal,
): Promise<PullOutcome> {
  const refStr = formatReference(ref);
  const first = await deps.registry.getManifest(ref, ref.digest ?? ref.tag ?? 'latest', signal);
  let parsed = parseManifest(first.bytes, first.mediaType, refStr);
  let manifestBytes = first.bytes;
  let manifestDigest = first.digest;
  let indexDigest: string | undefined;
  if (parsed.kind === 'index') {
    indexDigest = first.digest;
    await putBlob(deps, first.bytes, first.digest, created);
    const entry = pickPlatform(parsed.index, deps.platform, refStr);
    const m = await deps.registry.getManifest(ref, entry.digest, signal);
    if (m.bytes.length !== entry.size) {
      throw new DigestMismatchError(`${entry.size} bytes`, `${m.bytes.length} bytes`, `manifest ${entry.digest} size`);
    }
    parsed = parseManifest(m.bytes, m.mediaType || entry.mediaType, `${refStr} (${entry.digest})`);
    if (parsed.kind !== 'manifest') {
      throw new UnsupportedMediaTypeError(parsed.mediaType, `${refStr}: nested index`);
    }
    manifestBytes = m.bytes;
    manifestDigest = m.digest;
  }
  const manifest = parsed.manifest;
  onProgress({ kind: 'resolved', ref: refStr, manifestDigest, layers: manifest.layers.length });

  // Config: small, fetched whole and verified.
  const configDesc = manifest.config;
  if (
    await deps.blobs.ingest(
      configDesc.digest,
      configDesc.size,
      () => deps.registry.openBlob(ref, configDesc.digest, signal),
      undefined,
      'image config',
    )
  ) {
    created.blobs.push(configDesc.digest);
  }
  const config: ImageConfigFile = parseConfig(await deps.blobs.read(configDesc.digest), manifest.layers.length, refStr);
  const diffIds = config.rootfs.diff_ids;

  // Layers, a few at a time: download (or reuse), then unpack (or reuse).
  const queue = manifest.layers.map((l, i) => ({ l, diffId: diffIds[i] as string }));
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      throwIfAborted(signal);
      await fetchLayer(deps, ref, job.l, job.diffId, created, onProgress, signal);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LAYER_CONCURRENCY, queue.length) }, worker));

  await putBlob(deps, manifestBytes, manifestDigest, created);
  const image: StoredImage = {
    id: configDesc.digest,
    manifestDigest,
    diffIds,
    layerDigests: manifest.layers.map((l) => l.digest),
    size: configDesc.size + manifest.layers.reduce((n, l) => n + l.size, 0),
  };
  if (indexDigest) image.indexDigest = indexDigest;
  if (config.created) image.created = config.created;
  if (config.architecture) image.architecture = config.architecture;
  if (config.os) image.os = config.os;
  const refs = [`${repoName(ref)}@${indexDigest ?? manifestDigest}`];
  if (ref.tag !== undefined && ref.digest === undefined) refs.unshift(`${repoName(ref)}:${ref.tag}`);
  onProgress({ kind: 'done', ref: refStr, id: image.id });
  return { image, refs };
}

async function putBlob(deps: PullDeps, bytes: Buffer, digest: string, created: Created): Promise<void> {
  if (await deps.blobs.has(digest)) return;
  await deps.blobs.put(bytes, { digest, size: bytes.length }, 'manifest');
  created.blobs.push(digest);
}

async function fetchLayer(
  deps: PullDeps,
  ref: ImageReference,
  desc: Descriptor,
  diffId: string,
  created: Created,
  onProgress: ProgressCallback,
  signal?: AbortSignal,
): Promise<void> {
  const { digest, size } = desc;
  // Present and known to unpack to this layer: nothing to do. A layer that is here but was never
  // checked against this blob is checked below (hashing the blob, not unpacking it again).
  if ((await deps.layers.verified(diffId, digest)) && (await deps.blobs.has(digest))) {
    onProgress({ kind: 'layer', digest, phase: 'exists', done: size, total: size });
    return;
  }
  let fresh: boolean;
  for (let attempt = 1; ; attempt++) {
    let last = 0;
    try {
      fresh = await deps.blobs.ingest(
        digest,
        size,
        () => deps.registry.openBlob(ref, digest, signal),
        (done, total) => {
          // At most ~100 events per layer.
          if (done === total || done - last >= Math.max(total / 100, 64 << 10)) {
            last = done;
            onProgress({ kind: 'layer', digest, phase: 'downloading', done, total });
          }
        },
        `layer blob of ${formatReference(ref)}`,
      );
      break;
    } catch (err) {
      // A dropped connection or a 5xx may pass: retry from scratch (nothing was kept).
      if (!(err instanceof RegistryUnreachableError) || attempt >= BLOB_ATTEMPTS) throw err;
      await sleep(300 * attempt, signal);
    }
  }
  if (fresh) created.blobs.push(digest);
  onProgress({ kind: 'layer', digest, phase: 'extracting', done: size, total: size });
  const hadLayer = await deps.layers.has(diffId);
  await deps.layers.ensure(diffId, { digest, path: deps.blobs.path(digest) });
  if (!hadLayer) created.layers.push(diffId);
  onProgress({ kind: 'layer', digest, phase: 'done', done: size, total: size });
}
