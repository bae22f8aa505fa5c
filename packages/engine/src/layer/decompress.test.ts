import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { openDecompressed, sniffCompression, zstdProcess } from './decompress.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('zstd decompresses through zlib and through the zstd program (Node < 22.15) alike', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-zstd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const data = Buffer.concat([randomBytes(100_000), Buffer.alloc(200_000, 7)]);
  writeFileSync(join(dir, 'plain'), data);
  execFileSync('zstd', ['-q', '-o', join(dir, 'blob.zst'), join(dir, 'plain')]);
  const { stream, compression } = await openDecompressed(join(dir, 'blob.zst'));
  assert.equal(compression, 'zstd');
  assert.ok((await collect(stream)).equals(data));
  assert.ok((await collect(zstdProcess(join(dir, 'blob.zst')))).equals(data));
  // a corrupt frame is an error, never a short stream
  writeFileSync(join(dir, 'bad.zst'), Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(64)]));
  await assert.rejects(collect(zstdProcess(join(dir, 'bad.zst'))), /zstd/);
});

test('compression is sniffed from magic bytes', () => {
  assert.equal(sniffCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
  assert.equal(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.equal(sniffCompression(Buffer.from('ustar')), 'none');
});
