/**
 * Layer compression: sniffed from the magic bytes (the media type can lie, and skopeo keeps
 * zstd layers under gzip names in some paths): `1f 8b` gzip, `28 b5 2f fd` zstd, else plain tar.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
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
        return { stream: zstdProcess(path), compression };
      }
      return { stream: chain(create() as Readable), compression };
    }
    case 'none':
      return { stream: raw, compression };
  }
}

/**
 * Node < 22.15 has no zlib zstd: decompress with the `zstd` program (Debian's zstd, installed by
 * setup) instead. A missing program or a failed decompression destroys the stream with an error.
 */
export function zstdProcess(path: string): Readable {
  const child = spawn('zstd', ['-dc', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  // the output ends only once zstd has exited 0, so that a failure is never seen as a short stream
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.on('error', () => {
    out.destroy(new UnsupportedMediaTypeError('zstd', `${path} (no zlib zstd in this Node and no zstd program)`));
  });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new Error(`zstd -dc ${path} failed (exit ${code}): ${stderr.trim()}`));
  });
  out.on('close', () => child.kill());
  return out;
}
