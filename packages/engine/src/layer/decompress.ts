/**
 * Layer compression: sniffed from the magic bytes (the media type can lie, and skopeo keeps
 * zstd layers under gzip names in some paths): `1f 8b` gzip, `28 b5 2f fd` zstd, else plain tar.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { UnsupportedMediaTypeError } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

/** The compression of a buffer's first bytes. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Opens the blob file at `path` as a stream of uncompressed tar bytes. */
export async function openDecompressed(path: string): Promise<{ stream: Readable; compression: Compression }> {
  const fh = await open(path, 'r');
  const head = Buffer.alloc(4);
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const compression = sniffCompression(head);
  const raw = createReadStream(path);
  const chain = (out: Readable): Readable => {
    raw.on('error', (err) => out.destroy(err));
    out.on('close', () => raw.destroy());
    return raw.pipe(out as unknown as NodeJS.WritableStream) as unknown as Readable;
  };
  switch (compression) {
    case 'gzip':
      return { stream: chain(zlib.createGunzip()), compression };
    case 'zstd': {
      const create = (zlib as { createZstdDecompress?: () => unknown }).createZstdDecompress;
      if (!create) {
        raw.destroy();
        throw new UnsupportedMediaTypeError('zstd', `${path} (this Node has no zlib zstd; Node >= 22.15 needed)`);
      }
      return { stream: chain(create() as Readable), compression };
    }
    case 'none':
      return { stream: raw, compression };
  }
}
