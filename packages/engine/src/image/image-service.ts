/**
 * ImageService: the image half of the engine behind one object. It owns a data root:
 *
 *   <root>/blobs/sha256/<hex>   verified content (manifests, indexes, configs, compressed layers)
 *   <root>/l/<12 hex>/diff      unpacked layers in overlayfs form, keyed by diffID
 *   <root>/images.json          images and refs (name:tag / name@digest -> image id)
 *   <root>/images.lock          exclusive lock around every metadata read-modify-write
 *   <root>/gc.lock              shared while pulling/loading, exclusive while deleting content
 *   <root>/lease.lock           shared by the runtime from resolve() to recording its container
 *   <root>/tmp/                 temp files and dirs, named after their owner process (pid + start
 *                               time): swept when the store opens once their owner is gone
 *
 * Lock order: lease.lock, gc.lock, images.lock. Several processes (shoald, a daemonless `shoal image`)
 * may use one root at the same time.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { errnoCode, ignoreErrno, silentLogger, type Logger } from '@shoal/common';
import { BlobStore } from '../content/blob-store.js';
import { sweepContentLocks } from '../content/content-lock.js';
import { ownerAlive } from '../content/tmp-owner.js';
import {
  ImageInUseError,
  ImageNotFoundError,
  InvalidReferenceError,
  StateLockedError,
  StateUnreadableError,
} from '../errors.js';
import { LayerStore } from '../layer/layer-store.js';
import { RegistryClient, type RegistryClientOptions } from '../registry/registry-client.js';
import { registryOptions } from '../registry/registry-config.js';
import { acquireStateLock, type LockHandle } from '../state-lock.js';
import { loadArchive, type LoadOptions } from './archive-load.js';
import { ImageStore, type ImageIndexFile, type StoredImage } from './image-store.js';
import { DEFAULT_PLATFORM } from './manifest.js';
import { pullImage, type Created, type PullOutcome } from './pull.js';
import { formatReference, parseReference } from './reference.js';
import type {
  ImageConfigFile,
  ImageManifest,
  ImageRecord,
  InUseHook,
  Platform,
  ProgressCallback,
  ResolvedImage,
} from './types.js';

export const DEFAULT_ENGINE_ROOT = '/var/lib/shoal/engine';

export interface ImageServiceOptions {
  /** Data root (default /var/lib/shoal/engine). */
  root?: string;
  /** Merged over `<root>/registries.json` and $SHOAL_INSECURE_REGISTRIES (see registry-config.ts). */
  registry?: RegistryClientOptions;
  platform?: Platform;
  /** Which images containers use (id -> container names); consulted by remove() and gc(). */
  inUse?: InUseHook;
  /** How long to wait for another process's lock (ms, default 60 000). */
  lockTimeoutMs?: number;
  logger?: Logger;
}

export interface PullOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Registries allowed plain HTTP for this pull, besides the service's (`--insecure-registry`). */
  insecureRegistries?: string[];
}

export interface RemoveResult {
  untagged: string[];
  /** Image ids deleted. */
  deleted: string[];
}

export interface GcResult {
  images: string[];
  blobs: number;
  layers: number;
  /** Temp files and dirs (downloads, half-unpacked or half-deleted layers) removed. */
  temp: number;
}

/** An image an archive held, with the refs the archive itself named for it. */
export interface LoadedImage extends ImageRecord {
  /** Refs (`name:tag`) from the archive; `repoTags` also has tags the image had before. */
  loadedRefs: string[];
}

export interface ImageInspect extends ImageRecord {
  config: ImageConfigFile;
  manifest: ImageManifest;
  layerDirs: string[];
}

export class ImageService {
  readonly root: string;
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly store: ImageStore;
  readonly registry: RegistryClient;
  private readonly registryOpts: RegistryClientOptions | undefined;
  private readonly platform: Platform;
  private readonly gcLock: string;
  private readonly leaseLock: string;
  private readonly lockTimeoutMs: number;
  private inUseHook: InUseHook | undefined;
  private readonly log: Logger;
  private ready: Promise<void> | undefined;
  /** Temp entries of dead processes removed when the store opened (reported by the next gc). */
  private sweptAtOpen = 0;

  constructor(opts: ImageServiceOptions = {}) {
    this.root = opts.root ?? DEFAULT_ENGINE_ROOT;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 60_000;
    this.blobs = new BlobStore(this.root);
    this.layers = new LayerStore(this.root);
    this.store = new ImageStore(this.root, { timeoutMs: this.lockTimeoutMs });
    this.log = opts.logger ?? silentLogger();
    this.registryOpts = opts.registry;
    this.registry = new RegistryClient({ logger: this.log, ...registryOptions(this.root, opts.registry) });
    this.platform = opts.platform ?? DEFAULT_PLATFORM;
    this.gcLock = join(this.root, 'gc.lock');
    this.leaseLock = join(this.root, 'lease.lock');
    this.inUseHook = opts.inUse;
  }

  /**
   * A lease that keeps images from being removed: hold it from `resolve()` until the container
   * that uses the image is recorded (and so reported by the in-use hook). remove() and gc() wait
   * for leases before they decide what is unused. Release it promptly.
   */
  lease(): Promise<LockHandle> {
    return acquireStateLock(this.leaseLock, 'shared', { timeoutMs: this.lockTimeoutMs });
  }

  /** Runs the in-use check and the metadata change with no lease outstanding. */
  private async unleased<T>(fn: (users: Map<string, string[]>) => Promise<T>): Promise<T> {
    const lock = await acquireStateLock(this.leaseLock, 'exclusive', { timeoutMs: this.lockTimeoutMs });
    try {
      return await fn(await this.inUse());
    } finally {
      lock.release();
    }
  }

  /** Lets the runtime report which images its containers use. */
  setInUseHook(hook: InUseHook | undefined): void {
    this.inUseHook = hook;
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await this.blobs.init();
      await this.layers.init();
      const swept = await this.sweep(false);
      this.sweptAtOpen += swept;
      if (swept > 0) this.log.info({ root: this.root, swept }, 'removed temp files of dead processes');
    })();
    return this.ready;
  }

  /**
   * Removes what crashed processes left: temp blobs and unpack dirs, half-unpacked and
   * half-deleted layer dirs, temp copies of images.json and unused per-item lock files. Only
   * entries whose owner process is gone, and with `all` also those naming no owner. Returns
   * how many temp entries went (lock files are not counted).
   */
  private async sweep(all: boolean): Promise<number> {
    let n = await this.blobs.sweepTemp(all);
    n += await this.layers.sweep(all);
    for (const name of (await readdir(this.root).catch(ignoreErrno('ENOENT'))) ?? []) {
      if (!name.startsWith('.images.json.') || !name.endsWith('.tmp')) continue;
      const alive = ownerAlive(name);
      if (alive === true || (alive === undefined && !all)) continue;
      await rm(join(this.root, name), { force: true });
      n++;
    }
    await sweepContentLocks(this.root);
    return n;
  }

  /** Pulls `ref` from its registry; resolves to the stored image. */
  async pull(ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
    await this.init();
    const parsed = parseReference(ref);
    const [outcome] = await this.ingest((created) =>
      pullImage(
        { blobs: this.blobs, layers: this.layers, registry: this.registryFor(opts), platform: this.platform },
        parsed,
        created,
        opts.onProgress,
        opts.signal,
      ).then((o) => [o]),
    );
    this.log.info({ ref: formatReference(parsed), id: outcome?.image.id }, 'image pulled');
    return this.recordOf(outcome?.image.id ?? '');
  }

  /** The service's registry client, or one that also allows plain HTTP to `opts.insecureRegistries`. */
  private registryFor(opts: PullOptions): RegistryClient {
    if (!opts.insecureRegistries?.length) return this.registry;
    const given = this.registryOpts ?? {};
    return new RegistryClient({
      logger: this.log,
      ...registryOptions(this.root, {
        ...given,
        insecureRegistries: [...(given.insecureRegistries ?? []), ...opts.insecureRegistries],
      }),
    });
  }

  /**
   * Loads a `docker save` or OCI layout tar; resolves to the images it held. Every blob and every
   * layer's diffID is checked before the store changes: a bad archive changes nothing.
   */
  async load(path: string, opts: LoadOptions = {}): Promise<LoadedImage[]> {
    await this.init();
    const outcomes = await this.ingest((created) =>
      loadArchive({ blobs: this.blobs, layers: this.layers, platform: this.platform }, path, created, opts),
    );
    const out: LoadedImage[] = [];
    for (const o of outcomes) out.push({ ...(await this.recordOf(o.image.id)), loadedRefs: [...o.refs] });
    return out;
  }

  /**
   * Runs a pull or load under the shared gc lock, then records images and refs. On failure,
   * content this run added and nothing references is deleted again (when no other pull is running;
   * else left to gc).
   */
  private async ingest(run: (created: Created) => Promise<PullOutcome[]>): Promise<PullOutcome[]> {
    const created: Created = { blobs: [], layers: [] };
    let shared: LockHandle | undefined = await acquireStateLock(this.gcLock, 'shared', {
      timeoutMs: this.lockTimeoutMs,
    });
    try {
      const outcomes = await run(created);
      // A pull of what is already recorded (same image, same refs) changes nothing: no locked
      // rewrite and fsync of the index. Content cannot go meanwhile: gc waits for our shared lock.
      if (recorded(await this.store.read(), outcomes)) return outcomes;
      await this.store.update((idx) => {
        for (const o of outcomes) {
          idx.images[o.image.id] = o.image;
          for (const r of o.refs) idx.refs[r] = o.image.id;
        }
      });
      return outcomes;
    } catch (err) {
      shared.release();
      shared = undefined;
      await this.undo(created).catch((e: unknown) => this.log.warn({ err: e }, 'cleanup after failed pull'));
      throw err;
    } finally {
      shared?.release();
    }
  }

  private async undo(created: Created): Promise<void> {
    if (created.blobs.length === 0 && created.layers.length === 0) return;
    let lock: LockHandle;
    try {
      lock = await acquireStateLock(this.gcLock, 'exclusive', { timeoutMs: 0 });
    } catch (err) {
      // Held shared by another pull, which may use this content: gc will collect it.
      if (err instanceof StateLockedError) return;
      throw err;
    }
    try {
      const live = liveSets(await this.store.read());
      for (const d of created.blobs) if (!live.blobs.has(d)) await this.blobs.delete(d);
      for (const d of created.layers) if (!live.layers.has(d)) await this.layers.remove(d);
    } finally {
      lock.release();
    }
  }

  /** What the runtime needs to run `ref`: id, config and layer dirs (bottom first). */
  async resolve(ref: string): Promise<ResolvedImage> {
    const idx = await this.store.read();
    const { id } = ImageStore.lookup(idx, ref);
    const image = idx.images[id];
    if (!image) throw new ImageNotFoundError(ref);
    const config = await this.readJsonBlob<ImageConfigFile>(image.id, ref);
    const layerDirs: string[] = [];
    for (const d of image.diffIds) {
      if (!(await this.layers.has(d))) throw new ImageNotFoundError(`${ref} (layer ${d} missing from the store)`);
      layerDirs.push(this.layers.diffDir(d));
    }
    let normal: string;
    try {
      normal = formatReference(parseReference(ref));
    } catch (err) {
      // an id prefix is not a reference
      if (!(err instanceof InvalidReferenceError)) throw err;
      normal = id;
    }
    return { id, ref: /^[a-f0-9]{12,64}$|^sha256:/.test(ref) ? id : normal, config: config.config ?? {}, layerDirs };
  }

  /** Every image with its refs, newest first. */
  async list(): Promise<ImageRecord[]> {
    const recs = ImageStore.records(await this.store.read());
    return recs.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? ''));
  }

  async inspect(ref: string): Promise<ImageInspect> {
    const idx = await this.store.read();
    const { id } = ImageStore.lookup(idx, ref);
    const rec = ImageStore.records(idx).find((r) => r.id === id);
    if (!rec) throw new ImageNotFoundError(ref);
    const config = await this.readJsonBlob<ImageConfigFile>(rec.id, ref);
    const manifest = await this.readJsonBlob<ImageManifest>(rec.manifestDigest, ref);
    return { ...rec, config, manifest, layerDirs: rec.diffIds.map((d) => this.layers.diffDir(d)) };
  }

  private async readJsonBlob<T>(digest: string, ref: string): Promise<T> {
    const path = this.blobs.path(digest);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT')
        throw new ImageNotFoundError(`${ref} (blob ${digest} missing from the store)`, { cause: err });
      throw StateUnreadableError.from(path, err);
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new StateUnreadableError(path, `not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }

  private async recordOf(id: string): Promise<ImageRecord> {
    const rec = ImageStore.records(await this.store.read()).find((r) => r.id === id);
    if (!rec) throw new ImageNotFoundError(id);
    return rec;
  }

  private async inUse(): Promise<Map<string, string[]>> {
    return this.inUseHook ? await this.inUseHook() : new Map();
  }

  /**
   * Removes a reference. By tag: drops that tag, and when it was the image's last tag also its
   * digest refs and the image. By digest ref: drops that ref, and the image when it was the last. By id: drops the image and all its refs. Refused with ImageInUseError (nothing
   * changed) when the image would go while a container uses it, unless `force`.
   */
  async remove(ref: string, opts: { force?: boolean } = {}): Promise<RemoveResult> {
    await this.init();
    const result = await this.unleased((users) =>
      this.store.update((idx) => {
        const { id, key } = ImageStore.lookup(idx, ref);
        const refs = ImageStore.refsOf(idx, id);
        let drop = key ? [key] : refs;
        // As Docker: digest refs do not keep an image alive once its last tag is removed.
        if (key && !key.includes('@') && !refs.some((r) => r !== key && !r.includes('@'))) drop = refs;
        const remaining = refs.filter((r) => !drop.includes(r));
        const goes = remaining.length === 0;
        const using = users.get(id);
        if (goes && using && using.length > 0 && !opts.force) throw new ImageInUseError(ref, using);
        for (const r of drop) delete idx.refs[r];
        if (goes) delete idx.images[id];
        return { untagged: drop, deleted: goes ? [id] : [] };
      }),
    );
    if (result.deleted.length > 0) await this.prune(false);
    return result;
  }

  /**
   * Garbage collection: removes dangling images (no refs) that no container uses, then every
   * blob and layer dir no remaining image references, and stale temp files.
   */
  async gc(): Promise<GcResult> {
    await this.init();
    const images = await this.unleased((users) =>
      this.store.update((idx) => {
        const referenced = new Set(Object.values(idx.refs));
        const gone: string[] = [];
        for (const id of Object.keys(idx.images)) {
          if (!referenced.has(id) && !(users.get(id)?.length ?? 0)) {
            delete idx.images[id];
            gone.push(id);
          }
        }
        return gone;
      }),
    );
    const counts = await this.prune(true);
    counts.temp += this.sweptAtOpen;
    this.sweptAtOpen = 0;
    return { images, ...counts };
  }

  /** Deletes unreferenced blobs and layers; waits for running pulls when `wait`, else skips. */
  private async prune(wait: boolean): Promise<{ blobs: number; layers: number; temp: number }> {
    let lock: LockHandle;
    try {
      lock = await acquireStateLock(this.gcLock, 'exclusive', { timeoutMs: wait ? this.lockTimeoutMs : 0 });
    } catch (err) {
      // Only "a pull holds it" means "later"; any other failure (EACCES...) is reported.
      if (wait || !(err instanceof StateLockedError)) throw err;
      return { blobs: 0, layers: 0, temp: 0 };
    }
    try {
      const live = liveSets(await this.store.read());
      let blobs = 0;
      let layers = 0;
      for (const d of await this.blobs.list()) {
        if (!live.blobs.has(d)) {
          await this.blobs.delete(d);
          blobs++;
        }
      }
      for (const d of await this.layers.list()) {
        if (!live.layers.has(d)) {
          await this.layers.remove(d);
          layers++;
        }
      }
      // No pull or load runs (we hold gc.lock exclusively): temp entries without an owner go too.
      const temp = await this.sweep(wait);
      return { blobs, layers, temp };
    } finally {
      lock.release();
    }
  }
}

/** Blobs and layers referenced by recorded images. */
/** Whether the index already holds every image and ref of `outcomes` exactly. */
function recorded(idx: ImageIndexFile, outcomes: PullOutcome[]): boolean {
  return outcomes.every(
    (o) => isDeepStrictEqual(idx.images[o.image.id], o.image) && o.refs.every((r) => idx.refs[r] === o.image.id),
  );
}

function liveSets(idx: ImageIndexFile): { blobs: Set<string>; layers: Set<string> } {
  const blobs = new Set<string>();
  const layers = new Set<string>();
  for (const img of Object.values<StoredImage>(idx.images)) {
    blobs.add(img.id);
    blobs.add(img.manifestDigest);
    if (img.indexDigest) blobs.add(img.indexDigest);
    for (const d of img.layerDigests) blobs.add(d);
    for (const d of img.diffIds) layers.add(d);
  }
  return { blobs, layers };
}
