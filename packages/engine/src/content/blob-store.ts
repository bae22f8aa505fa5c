/**
 * Content-addressed blob store: `<root>/blobs/sha256/<hex>`. A blob appears there only after its
 * bytes were hashed, counted, fsynced and renamed into place, so a crash or a bad download never
 * leaves a partial blob under a digest name (temp files live in `<root>/tmp` and are swept).
 *
 * Concurrent ingests of one digest in this process share one download (a map of in-flight
 * promises); ingests in other processes may race, which is harmless: both verify, the second
 * rename replaces identical content.
 */
import { createHash } from 'node:crypto';
import { fsyncDir, ignoreErrno } from '@shoal/common';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DigestMismatchError, InvalidReferenceError } from '../errors.js';
import { isDigest } from '../image/reference.js';
import { contentLockPath, withContentLock } from './content-lock.js';
import { ownedSuffix, ownerAlive } from './tmp-owner.js';

export type ByteSource = () => Promise<AsyncIterable<Uint8Array>>;

/** Called with bytes received so far and the expected total. */
export type BlobProgress = (done: number, total: number) => void;

interface InFlight {
  promise: Promise<boolean>;
  listeners: Set<BlobProgress>;
}

export class BlobStore {
  readonly blobDir: string;
  readonly tmpDir: string;
  private readonly inflight = new Map<string, InFlight>();

  constructor(readonly root: string) {
    this.blobDir = join(root, 'blobs', 'sha256');
    this.tmpDir = join(root, 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  /** Path of the blob named by `digest` (whether or not it exists). */
  path(digest: string): string {
    if (!isDigest(digest)) throw new InvalidReferenceError(digest, 'not a sha256 digest');
    return join(this.blobDir, digest.slice(7));
  }

  async has(digest: string): Promise<boolean> {
    return (await stat(this.path(digest)).catch(ignoreErrno('ENOENT'))) !== undefined;
  }

  async read(digest: string): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  stream(digest: string): NodeJS.ReadableStream {
    return createReadStream(this.path(digest));
  }

  /** Stores `data` under its digest, checking it against `expected` when given. Returns the digest. */
  async put(data: Uint8Array, expected?: { digest: string; size?: number }, what = 'blob'): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (expected && expected.digest !== digest) throw new DigestMismatchError(expected.digest, digest, what);
    if (expected?.size !== undefined && expected.size !== data.length) {
      throw new DigestMismatchError(`${expected.size} bytes`, `${data.length} bytes`, `${what} ${digest} size`);
    }
    if (await this.has(digest)) return digest;
    await this.commitTemp(digest, async (fh) => {
      await fh.writeFile(data);
    });
    return digest;
  }

  /**
   * Ensures the blob `digest` of `size` bytes is present, reading it from `source` if missing.
   * Verifies size and sha256 while streaming; on mismatch throws DigestMismatchError and keeps
   * nothing. Returns true when this call (or the shared one it joined) wrote the blob.
   */
  async ingest(
    digest: string,
    size: number,
    source: ByteSource,
    onProgress?: BlobProgress,
    what = 'blob',
  ): Promise<boolean> {
    this.path(digest); // validates the digest
    const running = this.inflight.get(digest);
    if (running) {
      if (onProgress) running.listeners.add(onProgress);
      try {
        return await running.promise;
      } finally {
        if (onProgress) running.listeners.delete(onProgress);
      }
    }
    // Registered before the first await, so that a concurrent caller always finds it.
    const listeners = new Set<BlobProgress>(onProgress ? [onProgress] : []);
    const promise = withContentLock(contentLockPath(this.root, 'blob', digest.slice(7)), async (): Promise<boolean> => {
      if (await this.has(digest)) return false;
      await this.commitTemp(digest, async (fh) => {
        const hash = createHash('sha256');
        let done = 0;
        for await (const chunk of await source()) {
          done += chunk.length;
          if (done > size) {
            throw new DigestMismatchError(`${size} bytes`, `more than ${size} bytes`, `${what} ${digest} size`);
          }
          hash.update(chunk);
          await fh.write(chunk);
          for (const l of listeners) l(done, size);
        }
        if (done !== size) {
          throw new DigestMismatchError(`${size} bytes`, `${done} bytes`, `${what} ${digest} size (truncated)`);
        }
        const actual = `sha256:${hash.digest('hex')}`;
        if (actual !== digest) throw new DigestMismatchError(digest, actual, what);
      });
      return true;
    });
    this.inflight.set(digest, { promise, listeners });
    try {
      return await promise;
    } finally {
      this.inflight.delete(digest);
    }
  }

  /** Digests of every blob present. */
  async list(): Promise<string[]> {
    const names = (await readdir(this.blobDir).catch(ignoreErrno('ENOENT'))) ?? [];
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  async delete(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /** Size in bytes of a present blob. */
  async size(digest: string): Promise<number> {
    return (await stat(this.path(digest))).size;
  }

  /**
   * Removes temp files and dirs left by crashed processes: those whose owner process is gone;
   * with `all`, also those that name no owner. Returns how many went.
   */
  async sweepTemp(all = false): Promise<number> {
    const names = (await readdir(this.tmpDir).catch(ignoreErrno('ENOENT'))) ?? [];
    let n = 0;
    for (const name of names) {
      const alive = ownerAlive(name);
      if (alive === true || (alive === undefined && !all)) continue;
      await rm(join(this.tmpDir, name), { recursive: true, force: true });
      n++;
    }
    return n;
  }

  /** A fresh temp path under `<root>/tmp` owned by this process (swept once it dies). */
  tempPath(prefix: string): string {
    return join(this.tmpDir, `${prefix}-${ownedSuffix()}`);
  }

  private async commitTemp(digest: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = this.tempPath(`blob-${digest.slice(7, 19)}`);
    const fh = await open(tmp, 'wx', 0o644);
    let ok = false;
    try {
      await write(fh);
      await fh.sync();
      ok = true;
    } finally {
      await fh.close();
      if (!ok) await unlink(tmp).catch(ignoreErrno('ENOENT'));
    }
    try {
      await rename(tmp, this.path(digest));
    } catch (err) {
      await unlink(tmp).catch(ignoreErrno('ENOENT'));
      throw err;
    }
    await fsyncDir(this.blobDir);
  }
}
