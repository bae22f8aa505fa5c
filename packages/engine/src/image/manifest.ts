/**
 * Parsing and checking of manifests, indexes and image configs, and the platform choice from an
 * index (linux/amd64 by default; a `variant` must match when asked for, else the entry without
 * one wins; attestation entries are skipped).
 */
import { PlatformNotFoundError, RegistryProtocolError, UnsupportedMediaTypeError } from '../errors.js';
import {
  CONFIG_TYPES,
  DOCKER_MANIFEST,
  INDEX_TYPES,
  isForeignLayer,
  LAYER_TYPES,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from './media-types.js';
import { isDigest } from './reference.js';
import type { Descriptor, ImageConfigFile, ImageIndex, ImageManifest, Platform } from './types.js';

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

/** Parses manifest bytes; `contentType` is used when the JSON has no mediaType. */
export function parseManifest(bytes: Uint8Array, contentType: string, where: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new RegistryProtocolError(where, 'manifest is not valid JSON', { cause: err });
  }
  if (typeof json !== 'object' || json === null) throw new RegistryProtocolError(where, 'manifest is not an object');
  const obj = json as Record<string, unknown>;
  if (obj['schemaVersion'] === 1) {
    throw new UnsupportedMediaTypeError('application/vnd.docker.distribution.manifest.v1+json', `${where} (schema1)`);
  }
  let mediaType = typeof obj['mediaType'] === 'string' ? obj['mediaType'] : contentType;
  if (!INDEX_TYPES.has(mediaType) && !MANIFEST_TYPES.has(mediaType)) {
    // OCI allows mediaType to be absent: go by shape.
    if (Array.isArray(obj['manifests'])) mediaType = OCI_INDEX;
    else if (obj['config'] && Array.isArray(obj['layers'])) mediaType = OCI_MANIFEST;
    else throw new UnsupportedMediaTypeError(mediaType || '(none)', where);
  }
  if (INDEX_TYPES.has(mediaType)) {
    const manifests = obj['manifests'];
    if (!Array.isArray(manifests)) throw new RegistryProtocolError(where, 'index without manifests');
    for (const d of manifests) checkDescriptor(d, where);
    return { kind: 'index', mediaType, index: obj as unknown as ImageIndex };
  }
  const manifest = obj as unknown as ImageManifest;
  checkDescriptor(manifest.config, `${where} config`);
  if (!CONFIG_TYPES.has(manifest.config.mediaType)) {
    throw new UnsupportedMediaTypeError(manifest.config.mediaType, `${where} config`);
  }
  if (!Array.isArray(manifest.layers)) throw new RegistryProtocolError(where, 'manifest without layers');
  for (const l of manifest.layers) {
    checkDescriptor(l, `${where} layer`);
    if (isForeignLayer(l.mediaType) || !LAYER_TYPES.has(l.mediaType)) {
      throw new UnsupportedMediaTypeError(l.mediaType, `${where} layer ${l.digest}`);
    }
  }
  return { kind: 'manifest', mediaType: mediaType === DOCKER_MANIFEST ? DOCKER_MANIFEST : mediaType, manifest };
}

function checkDescriptor(d: unknown, where: string): asserts d is Descriptor {
  const desc = d as Partial<Descriptor> | null;
  if (
    !desc ||
    typeof desc.digest !== 'string' ||
    !isDigest(desc.digest) ||
    typeof desc.size !== 'number' ||
    !Number.isSafeInteger(desc.size) ||
    desc.size < 0 ||
    typeof desc.mediaType !== 'string'
  ) {
    throw new RegistryProtocolError(where, `bad descriptor ${JSON.stringify(d)?.slice(0, 200)}`);
  }
}

export function platformString(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The index entry for `want`, or PlatformNotFoundError listing what there is. */
export function pickPlatform(index: ImageIndex, want: Platform, ref: string): Descriptor {
  const candidates = index.manifests.filter(
    (d) =>
      MANIFEST_TYPES.has(d.mediaType) &&
      d.platform?.os === want.os &&
      d.platform.architecture === want.architecture &&
      d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
  );
  const exact = want.variant ? candidates.find((d) => d.platform?.variant === want.variant) : undefined;
  const plain = candidates.find((d) => !d.platform?.variant);
  const pick = exact ?? (want.variant ? undefined : (plain ?? candidates[0]));
  if (!pick) {
    throw new PlatformNotFoundError(
      ref,
      platformString(want),
      index.manifests.map((d) => platformString(d.platform)),
    );
  }
  return pick;
}

/** Parses and checks an image config against its manifest's layers. */
export function parseConfig(bytes: Uint8Array, layers: number, where: string): ImageConfigFile {
  let cfg: ImageConfigFile;
  try {
    cfg = JSON.parse(Buffer.from(bytes).toString('utf8')) as ImageConfigFile;
  } catch (err) {
    throw new RegistryProtocolError(where, 'image config is not valid JSON', { cause: err });
  }
  const ids = cfg?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || ids.some((d) => typeof d !== 'string' || !isDigest(d))) {
    throw new RegistryProtocolError(where, 'image config has no valid rootfs.diff_ids');
  }
  if (ids.length !== layers) {
    throw new RegistryProtocolError(where, `image config lists ${ids.length} diff_ids for ${layers} layers`);
  }
  return cfg;
}
