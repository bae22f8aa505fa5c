/**
 * Pushes the test images of an OCI layout to a registry with the distribution API: blobs first,
 * then the manifests of an index's children by digest, then the tags.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryPushError } from '../errors.js';
import { RegistryClient, type RegistryAuth } from '../registry/registry-client.js';
import { buildTestImages, type BuiltImage, type BuiltManifest, type TestImageSet } from './build-test-images.js';
import { readLayoutBlob } from './oci-layout.js';

export interface PushTestImagesOptions {
  /** A set from {@link buildTestImages}; built (or taken from the cache) when absent. */
  set?: TestImageSet;
  /** Only these references (`shoal-test/busybox:1`, ...); default all. */
  only?: readonly string[];
  auth?: RegistryAuth;
  signal?: AbortSignal;
}

/** An image as pushed: its full reference on the registry plus the built digests. */
export interface PushedImage extends BuiltImage {
  /** `127.0.0.1:5000/shoal-test/busybox:1` */
  remoteRef: string;
  /** `127.0.0.1:5000/shoal-test/busybox@sha256:...` */
  pinnedRef: string;
}

async function pushManifestTree(client: RegistryClient, layout: string, repo: string, m: BuiltManifest): Promise<void> {
  for (const d of [m.config, ...m.layers])
    await client.pushBlob(repo, d.digest, await readLayoutBlob(layout, d.digest));
  await client.pushManifest(repo, m.digest, m.mediaType, await readLayoutBlob(layout, m.digest));
}

/**
 * Pushes the test images to `registryUrl` (`http://198.18.1.1:5000`) as built: OCI and Docker
 * schema2 manifests, gzip/zstd/uncompressed layers, an OCI index and a Docker manifest list.
 * @returns each image with its remote reference and digests (manifest, config, layers).
 * @throws RegistryPushError when the registry refuses a request.
 */
export async function pushTestImages(registryUrl: string, opts: PushTestImagesOptions = {}): Promise<PushedImage[]> {
  const set = opts.set ?? (await buildTestImages());
  const client = new RegistryClient(registryUrl, opts.auth, opts.signal);
  const pushed: PushedImage[] = [];
  for (const image of set.images) {
    if (opts.only && !opts.only.includes(image.ref)) continue;
    const repo = image.repository;
    for (const m of image.manifest ? [image.manifest] : (image.children ?? [])) {
      await pushManifestTree(client, set.layoutDir, repo, m);
    }
    const digest = await client.pushManifest(
      repo,
      image.tag,
      image.mediaType,
      await readLayoutBlob(set.layoutDir, image.digest),
    );
    if (digest && digest !== image.digest) {
      throw new RegistryPushError(
        registryUrl,
        201,
        `registry computed ${digest} for ${image.ref}, expected ${image.digest}`,
      );
    }
    pushed.push({
      ...image,
      remoteRef: `${client.host}/${image.ref}`,
      pinnedRef: `${client.host}/${repo}@${image.digest}`,
    });
  }
  return pushed;
}

/** Reads the set description of an already-built layout directory. */
export async function readTestImageSet(layoutDir: string): Promise<TestImageSet> {
  const set = JSON.parse(await readFile(join(layoutDir, 'shoal-images.json'), 'utf8')) as TestImageSet;
  return { ...set, layoutDir };
}
