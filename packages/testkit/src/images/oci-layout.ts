import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Media types the test images use (OCI image spec and Docker image manifest v2 schema 2). */
export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** A content descriptor: what a manifest says about a blob it references. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The canonical JSON bytes used for manifests and configs (stable key order as written, no spaces). */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * Writes an OCI image layout (`oci-layout`, `blobs/sha256/*`, `index.json`) to a directory. Blobs
 * are content-addressed, so writing the same bytes twice is free.
 */
export class OciLayoutWriter {
  private readonly refs: Descriptor[] = [];
  private readonly written = new Set<string>();

  constructor(readonly dir: string) {}

  /** Stores a blob and returns its digest and size. */
  async putBlob(data: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256Digest(data);
    if (!this.written.has(digest)) {
      const dir = join(this.dir, 'blobs', 'sha256');
      await mkdir(dir, { recursive: true });
      const file = join(dir, digest.slice('sha256:'.length));
      await writeFile(`${file}.tmp`, data);
      await rename(`${file}.tmp`, file);
      this.written.add(digest);
    }
    return { mediaType, digest, size: data.byteLength };
  }

  /** Stores a JSON document (manifest, index or config) as a blob. */
  async putJson(value: unknown, mediaType: string): Promise<{ desc: Descriptor; bytes: Buffer }> {
    const bytes = jsonBytes(value);
    return { desc: await this.putBlob(bytes, mediaType), bytes };
  }

  /** Lists a top-level manifest or index in `index.json` under a reference name. */
  addRef(desc: Descriptor, refName: string): void {
    this.refs.push({ ...desc, annotations: { 'org.opencontainers.image.ref.name': refName } });
  }

  /** Writes `oci-layout` and `index.json`. */
  async finish(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), jsonBytes({ imageLayoutVersion: '1.0.0' }));
    const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: this.refs };
    await writeFile(join(this.dir, 'index.json'), jsonBytes(index));
  }
}

/** Reads a blob of an OCI layout by digest. */
export function readLayoutBlob(layoutDir: string, digest: string): Promise<Buffer> {
  const [alg, hex] = digest.split(':');
  if (alg !== 'sha256' || !hex || !/^[0-9a-f]{64}$/.test(hex)) throw new RangeError(`bad digest: ${digest}`);
  return readFile(join(layoutDir, 'blobs', 'sha256', hex));
}
