/**
 * Image metadata: `<root>/images.json` = `{ version, images: {<id>: record}, refs: {<ref>: <id>} }`,
 * rewritten atomically (temp + fsync + rename) under the exclusive `<root>/images.lock`.
 * A ref is `registry/repo:tag` or `registry/repo@sha256:...`. Readers without the lock always see
 * a whole file. An image with no ref is dangling (kept until removed by id or by gc).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { writeFileAtomic } from '../content/atomic-file.js';
import { withStateLock, type LockOptions } from '../state-lock.js';
import { ImageNotFoundError, StateUnreadableError } from '../errors.js';
import { isDigest, parseReference, formatReference, tagRef } from './reference.js';
import type { ImageRecord } from './types.js';

/** What is stored per image (refs are kept in the ref table, not here). */
export type StoredImage = Omit<ImageRecord, 'repoTags' | 'repoDigests'>;

export interface ImageIndexFile {
  version: 1;
  images: Record<string, StoredImage>;
  refs: Record<string, string>;
}

export class ImageStore {
  readonly file: string;
  readonly lockPath: string;

  constructor(
    readonly root: string,
    private readonly lockOpts: LockOptions = {},
  ) {
    this.file = join(root, 'images.json');
    this.lockPath = join(root, 'images.lock');
  }

  /** The index; empty when there is none yet. An unreadable or corrupt file is an error, not empty. */
  async read(): Promise<ImageIndexFile> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return { version: 1, images: {}, refs: {} };
      throw StateUnreadableError.from(this.file, err);
    }
    let parsed: Partial<ImageIndexFile>;
    try {
      parsed = JSON.parse(text) as Partial<ImageIndexFile>;
    } catch (err) {
      throw new StateUnreadableError(this.file, `not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new StateUnreadableError(this.file, 'not an image index object');
    return { version: 1, images: parsed.images ?? {}, refs: parsed.refs ?? {} };
  }

  /** Read-modify-write under the exclusive metadata lock. */
  async update<T>(fn: (idx: ImageIndexFile) => T | Promise<T>): Promise<T> {
    return withStateLock(
      this.lockPath,
      'exclusive',
      async () => {
        const idx = await this.read();
        const out = await fn(idx);
        await writeFileAtomic(this.file, `${JSON.stringify(idx, null, 1)}\n`);
        return out;
      },
      this.lockOpts,
    );
  }

  /** Full records (with repoTags/repoDigests) of every image. */
  static records(idx: ImageIndexFile): ImageRecord[] {
    const tags = new Map<string, string[]>();
    const digests = new Map<string, string[]>();
    for (const [ref, id] of Object.entries(idx.refs)) {
      const m = ref.includes('@') ? digests : tags;
      m.set(id, [...(m.get(id) ?? []), ref]);
    }
    return Object.values(idx.images).map((img) => ({
      ...img,
      repoTags: (tags.get(img.id) ?? []).sort(),
      repoDigests: (digests.get(img.id) ?? []).sort(),
    }));
  }

  /**
   * The image id that `ref` names: a full id (`sha256:<hex>`), a unique hex id prefix (>= 12),
   * `name:tag` or `name@digest` (also matched against an image's manifest digest).
   */
  static lookup(idx: ImageIndexFile, ref: string): { id: string; key?: string } {
    if (isDigest(ref)) {
      if (idx.images[ref]) return { id: ref };
      throw new ImageNotFoundError(ref);
    }
    if (/^[a-f0-9]{12,64}$/.test(ref)) {
      const hits = Object.keys(idx.images).filter((id) => id.slice(7).startsWith(ref));
      if (hits.length === 1 && hits[0]) return { id: hits[0] };
      if (hits.length > 1) throw new ImageNotFoundError(`${ref} (ambiguous id prefix)`);
    }
    const parsed = parseReference(ref);
    if (parsed.digest) {
      const key = `${parsed.registry}/${parsed.repository}@${parsed.digest}`;
      const id = idx.refs[key];
      if (id) return { id, key };
      const byManifest = Object.values(idx.images).find(
        (i) => i.manifestDigest === parsed.digest || i.indexDigest === parsed.digest,
      );
      if (byManifest) return { id: byManifest.id };
      throw new ImageNotFoundError(formatReference(parsed));
    }
    const key = tagRef(parsed) ?? formatReference(parsed);
    const id = idx.refs[key];
    if (!id) throw new ImageNotFoundError(key);
    return { id, key };
  }

  /** Refs pointing at `id`. */
  static refsOf(idx: ImageIndexFile, id: string): string[] {
    return Object.entries(idx.refs)
      .filter(([, v]) => v === id)
      .map(([k]) => k);
  }
}
