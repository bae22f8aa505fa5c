/**
 * Unpacked layers: `<root>/l/<12 hex of the diffID>/diff`, each made once (in-process waiters
 * share one unpack; across processes the loser of the final rename discards its copy). A layer
 * directory appears under its name only after the tar was fully extracted and its sha256 equalled
 * the expected diffID; the full diffID is kept in `<dir>/diffid`. Paths are short on purpose:
 * overlay mount data (all lowerdirs) must fit in one page.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { fsyncDir } from '@shoal/common';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DigestMismatchError, LayerInvalidError } from '../errors.js';
import { applyLayer } from './apply-layer.js';
import { openDecompressed, type Compression } from './decompress.js';
import { contentLockPath, withContentLock } from '../content/content-lock.js';

export const LAYER_ID_LENGTH = 12;

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

  async has(diffId: string): Promise<boolean> {
    const recorded = await readFile(join(this.dir, LayerStore.idOf(diffId), 'diffid'), 'utf8').catch(() => undefined);
    return recorded?.trim() === diffId;
  }

  /**
   * Makes sure the layer `diffId` is unpacked, extracting the (possibly compressed) blob at
   * `blobPath` if needed. Returns its diff dir. On a bad tar or a diffID mismatch nothing is left.
   */
  async ensure(diffId: string, blobPath: string, onPhase?: (compression: Compression) => void): Promise<string> {
    const running = this.inflight.get(diffId);
    if (running) return running;
    const p = this.unpack(diffId, blobPath, onPhase);
    this.inflight.set(diffId, p);
    try {
      return await p;
    } finally {
      this.inflight.delete(diffId);
    }
  }

  private unpack(diffId: string, blobPath: string, onPhase?: (c: Compression) => void): Promise<string> {
    // Another process unpacking the same layer: wait for it, then find the layer there.
    return withContentLock(contentLockPath(this.root, 'layer', LayerStore.idOf(diffId)), () =>
      this.unpackLocked(diffId, blobPath, onPhase),
    );
  }

  private async unpackLocked(diffId: string, blobPath: string, onPhase?: (c: Compression) => void): Promise<string> {
    if (await this.has(diffId)) return this.diffDir(diffId);
    const id = LayerStore.idOf(diffId);
    const final = join(this.dir, id);
    const existing = await readFile(join(final, 'diffid'), 'utf8').catch(() => undefined);
    if (existing !== undefined && existing.trim() !== diffId) {
      throw new LayerInvalidError(diffId, `short id ${id} already used by ${existing.trim()}`);
    }
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `.tmp-${id}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(join(tmp, 'diff'), { recursive: true, mode: 0o755 });
      const { stream, compression } = await openDecompressed(blobPath);
      onPhase?.(compression);
      const result = await applyLayer(stream, join(tmp, 'diff'), diffId);
      if (result.diffId !== diffId)
        throw new DigestMismatchError(diffId, result.diffId, 'layer diffID (uncompressed tar)');
      await writeFile(join(tmp, 'diffid'), `${diffId}\n`);
      await writeFile(join(tmp, 'size'), `${result.tarSize}\n`);
      await fsyncDir(tmp);
      try {
        await rename(tmp, final);
      } catch (err) {
        // Another process finished the same layer first: keep theirs.
        if (await this.has(diffId)) await rm(tmp, { recursive: true, force: true });
        else throw err;
      }
      await fsyncDir(this.dir);
      return this.diffDir(diffId);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /** diffIDs of every unpacked layer. */
  async list(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (name.startsWith('.')) continue;
      const d = await readFile(join(this.dir, name, 'diffid'), 'utf8').catch(() => undefined);
      if (d) out.push(d.trim());
    }
    return out;
  }

  /** Uncompressed size of an unpacked layer (0 when unknown). */
  async size(diffId: string): Promise<number> {
    const s = await readFile(join(this.dir, LayerStore.idOf(diffId), 'size'), 'utf8').catch(() => '0');
    return Number(s.trim()) || 0;
  }

  async remove(diffId: string): Promise<void> {
    if (!(await this.has(diffId))) return;
    const id = LayerStore.idOf(diffId);
    // Rename first so that a crash mid-delete never leaves a half layer under a valid name.
    const doomed = join(this.dir, `.del-${id}-${randomBytes(4).toString('hex')}`);
    await rename(join(this.dir, id), doomed);
    await rm(doomed, { recursive: true, force: true });
  }

  /** Removes temp and half-deleted directories left by crashed processes. */
  async sweep(olderThanMs = 3_600_000): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.startsWith('.tmp-') && !name.startsWith('.del-')) continue;
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      if (st && (name.startsWith('.del-') || now - st.mtimeMs > olderThanMs)) {
        await rm(join(this.dir, name), { recursive: true, force: true });
      }
    }
  }
}
