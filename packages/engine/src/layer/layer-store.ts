/**
 * Unpacked layers: `<root>/l/<12 hex of the diffID>/diff`, each made once (in-process waiters
 * share one unpack; across processes the loser of the final rename discards its copy). A layer
 * directory appears under its name only after the tar was fully extracted and its sha256 equalled
 * the expected diffID; the full diffID is kept in `<dir>/diffid`. Paths are short on purpose:
 * overlay mount data (all lowerdirs) must fit in one page.
 *
 * Which compressed blobs are known to unpack to the layer is kept as empty marker files
 * `<dir>/blobs/<hex>`: a blob that was never checked against the layer's diffID (another
 * compression, or a corrupted archive naming a layer that is already here) is hashed before an
 * image may point at it.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { errnoCode, fsyncDir, ignoreErrno } from '@shoal/common';
import { join } from 'node:path';
import { DigestMismatchError, LayerInvalidError } from '../errors.js';
import { applyLayer } from './apply-layer.js';
import { openDecompressed, type Compression } from './decompress.js';
import { contentLockPath, withContentLock } from '../content/content-lock.js';
import { ownedSuffix, ownerAlive } from '../content/tmp-owner.js';

export const LAYER_ID_LENGTH = 12;

/** The compressed blob a layer is unpacked from. */
export interface LayerBlob {
  digest: string;
  path: string;
}

export interface EnsureOptions {
  onPhase?: (compression: Compression) => void;
  /** The caller already hashed the uncompressed blob and found `diffId` (archives). */
  verified?: boolean;
}

export class LayerStore {
  readonly dir: string;
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(private readonly root: string) {
    this.dir = join(root, 'l');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Short directory name of a layer. */
  static idOf(diffId: string): string {
    return diffId.replace(/^sha256:/, '').slice(0, LAYER_ID_LENGTH);
  }

  /** `<root>/l/<id>/diff`: the directory to use as an overlay lowerdir. */
  diffDir(diffId: string): string {
    return join(this.dir, LayerStore.idOf(diffId), 'diff');
  }

  private async recordedDiffId(id: string): Promise<string | undefined> {
    const d = await readFile(join(this.dir, id, 'diffid'), 'utf8').catch(ignoreErrno('ENOENT', 'ENOTDIR'));
    return d?.trim();
  }

  async has(diffId: string): Promise<boolean> {
    return (await this.recordedDiffId(LayerStore.idOf(diffId))) === diffId;
  }

  /** True when the layer is here and the blob `digest` is known to unpack to it. */
  async verified(diffId: string, digest: string): Promise<boolean> {
    if (!(await this.has(diffId))) return false;
    const st = await stat(this.markerPath(diffId, digest)).catch(ignoreErrno('ENOENT', 'ENOTDIR'));
    return st !== undefined;
  }

  private markerPath(diffId: string, digest: string, dir = join(this.dir, LayerStore.idOf(diffId))): string {
    return join(dir, 'blobs', digest.replace(/^sha256:/, ''));
  }

  /**
   * Makes sure the layer `diffId` is unpacked from `blob` and that `blob` unpacks to it: a layer
   * already here is not unpacked again, but a blob not yet checked against it is hashed (and
   * refused with DigestMismatchError, nothing changed, when it does not match). Returns the diff
   * dir. On a bad tar or a diffID mismatch nothing is left.
   */
  async ensure(diffId: string, blob: LayerBlob, opts: EnsureOptions = {}): Promise<string> {
    const key = `${diffId} ${blob.digest}`;
    const running = this.inflight.get(key);
    if (running) return running;
    const p = withContentLock(contentLockPath(this.root, 'layer', LayerStore.idOf(diffId)), () =>
      this.ensureLocked(diffId, blob, opts),
    );
    this.inflight.set(key, p);
    try {
      return await p;
    } finally {
      this.inflight.delete(key);
    }
  }

  private async ensureLocked(diffId: string, blob: LayerBlob, opts: EnsureOptions): Promise<string> {
    if (await this.has(diffId)) {
      if (await this.verified(diffId, blob.digest)) return this.diffDir(diffId);
      if (!opts.verified) {
        const actual = await uncompressedDigest(blob.path, opts.onPhase);
        if (actual !== diffId)
          throw new DigestMismatchError(diffId, actual, `layer ${blob.digest} uncompressed (diffID)`);
      }
      await this.mark(join(this.dir, LayerStore.idOf(diffId)), blob.digest);
      return this.diffDir(diffId);
    }
    const id = LayerStore.idOf(diffId);
    const final = join(this.dir, id);
    const existing = await this.recordedDiffId(id);
    if (existing !== undefined && existing !== diffId) {
      throw new LayerInvalidError(diffId, `short id ${id} already used by ${existing}`);
    }
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `.tmp-${id}-${ownedSuffix()}`);
    try {
      await mkdir(join(tmp, 'diff'), { recursive: true, mode: 0o755 });
      const { stream, compression } = await openDecompressed(blob.path);
      opts.onPhase?.(compression);
      const result = await applyLayer(stream, join(tmp, 'diff'), diffId);
      if (result.diffId !== diffId)
        throw new DigestMismatchError(diffId, result.diffId, `layer ${blob.digest} uncompressed (diffID)`);
      await writeFile(join(tmp, 'diffid'), `${diffId}\n`);
      await writeFile(join(tmp, 'size'), `${result.tarSize}\n`);
      await this.mark(tmp, blob.digest);
      await fsyncDir(tmp);
      try {
        await rename(tmp, final);
      } catch (err) {
        // Another process finished the same layer first: keep theirs (same content).
        if (!(await this.has(diffId))) throw err;
        await rm(tmp, { recursive: true, force: true });
        await this.mark(final, blob.digest);
      }
      await fsyncDir(this.dir);
      return this.diffDir(diffId);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /** Records that `digest` unpacks to the layer in `dir` (an empty file: made whole or not at all). */
  private async mark(dir: string, digest: string): Promise<void> {
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'blobs', digest.replace(/^sha256:/, '')), '');
  }

  /** diffIDs of every unpacked layer. */
  async list(): Promise<string[]> {
    const out: string[] = [];
    for (const name of (await readdir(this.dir).catch(ignoreErrno('ENOENT'))) ?? []) {
      if (name.startsWith('.')) continue;
      const d = await this.recordedDiffId(name);
      if (d) out.push(d);
    }
    return out;
  }

  /** Uncompressed size of an unpacked layer (0 when unknown). */
  async size(diffId: string): Promise<number> {
    const s = await readFile(join(this.dir, LayerStore.idOf(diffId), 'size'), 'utf8').catch(ignoreErrno('ENOENT'));
    return Number(s?.trim() ?? '0') || 0;
  }

  async remove(diffId: string): Promise<void> {
    if (!(await this.has(diffId))) return;
    const id = LayerStore.idOf(diffId);
    // Rename first so that a crash mid-delete never leaves a half layer under a valid name.
    const doomed = join(this.dir, `.del-${id}-${ownedSuffix()}`);
    await rename(join(this.dir, id), doomed);
    await rm(doomed, { recursive: true, force: true });
  }

  /**
   * Removes temp and half-deleted directories left by crashed processes: those whose owner
   * process is gone; with `all`, also those that name no owner. Returns how many went.
   */
  async sweep(all = false): Promise<number> {
    let n = 0;
    for (const name of (await readdir(this.dir).catch(ignoreErrno('ENOENT'))) ?? []) {
      if (!name.startsWith('.tmp-') && !name.startsWith('.del-')) continue;
      const alive = ownerAlive(name);
      if (alive === true || (alive === undefined && !all)) continue;
      await rm(join(this.dir, name), { recursive: true, force: true });
      n++;
    }
    return n;
  }
}

/** sha256 of the uncompressed tar in the (possibly compressed) blob at `path`. */
export async function uncompressedDigest(path: string, onPhase?: (c: Compression) => void): Promise<string> {
  const { stream, compression } = await openDecompressed(path);
  onPhase?.(compression);
  const hash = createHash('sha256');
  try {
    for await (const c of stream as AsyncIterable<Buffer>) hash.update(c);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw err;
    throw new LayerInvalidError(path, `cannot decompress: ${(err as Error).message}`, { cause: err });
  }
  return `sha256:${hash.digest('hex')}`;
}
