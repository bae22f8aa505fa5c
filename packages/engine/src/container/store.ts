/**
 * Per-container state on disk, shared by every process that opens the same data root:
 *
 *   <dataRoot>/containers/<id>/state.json       ContainerRecord, written atomically (tmp + rename)
 *   <dataRoot>/containers/<id>/exit.json        written by the shim when the init exits
 *   <dataRoot>/containers/<id>/container.log*   written by the shim
 *   <dataRoot>/names/<name> -> <id>             a symlink: creating it reserves the name atomically
 *   <dataRoot>/containers.lock                  flock held around read-modify-write of state.json
 */
import { renameSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, stat, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ignoreErrno } from '@shoal/common';
import { ContainerNotFoundError, NameInUseError, StateUnreadableError } from '../errors.js';
import { withStateLock } from '../state-lock.js';
import type { ContainerRecord } from './types.js';

export class ContainerStore {
  readonly containersDir: string;
  readonly namesDir: string;
  readonly lockPath: string;

  constructor(readonly dataRoot: string) {
    this.containersDir = join(dataRoot, 'containers');
    this.namesDir = join(dataRoot, 'names');
    this.lockPath = join(dataRoot, 'containers.lock');
  }

  async init(): Promise<void> {
    await mkdir(this.containersDir, { recursive: true });
    await mkdir(this.namesDir, { recursive: true });
  }

  dir(id: string): string {
    return join(this.containersDir, id);
  }

  /** Reserves `name` for `id`; throws NameInUseError when another container holds it. */
  async reserveName(name: string, id: string): Promise<void> {
    try {
      await symlink(id, join(this.namesDir, name));
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      const holder = await readlink(join(this.namesDir, name)).catch(() => '');
      // a name left behind by a container whose state is gone (crash mid-remove) is free again
      if (holder && !(await this.exists(holder))) {
        await unlink(join(this.namesDir, name)).catch(() => undefined);
        return this.reserveName(name, id);
      }
      throw new NameInUseError(name, holder.slice(0, 12) || 'another container');
    }
  }

  async releaseName(name: string, id: string): Promise<void> {
    const path = join(this.namesDir, name);
    const holder = await readlink(path).catch(() => undefined);
    if (holder === id) await unlink(path).catch(() => undefined);
  }

  async exists(id: string): Promise<boolean> {
    return (await stat(join(this.dir(id), 'state.json')).catch(ignoreErrno('ENOENT', 'ENOTDIR'))) !== undefined;
  }

  /**
   * The record of `id`. Only a missing file is ContainerNotFoundError; a record that cannot be
   * read (EACCES, I/O) or parsed is StateUnreadableError naming the file.
   */
  async read(id: string): Promise<ContainerRecord> {
    const path = join(this.dir(id), 'state.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new ContainerNotFoundError(id, { cause: err });
      throw StateUnreadableError.from(path, err);
    }
    try {
      return JSON.parse(text) as ContainerRecord;
    } catch (err) {
      throw new StateUnreadableError(path, `not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Writes the record atomically (tmp + rename). Synchronous on purpose: a few KB on local disk
   * take microseconds, less than the thread-pool round trips of the async calls (start latency).
   */
  write(rec: ContainerRecord): Promise<void> {
    const path = join(this.dir(rec.id), 'state.json');
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec, null, 1));
    renameSync(tmp, path);
    return Promise.resolve();
  }

  /**
   * Read-modify-write of one record under the state lock; returns the record as it is now.
   * `fn` returns false to leave the record untouched.
   */
  update(id: string, fn: (rec: ContainerRecord) => ContainerRecord | void | false): Promise<ContainerRecord> {
    return withStateLock(this.lockPath, 'exclusive', async () => {
      const rec = await this.read(id);
      const next = fn(rec);
      if (next === false) return rec;
      await this.write(next ?? rec);
      return next ?? rec;
    });
  }

  /** Every container id with a state file. */
  async ids(): Promise<string[]> {
    const names = await readdir(this.containersDir).catch(() => [] as string[]);
    const out: string[] = [];
    for (const n of names) if (await this.exists(n)) out.push(n);
    return out;
  }

  async all(): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const id of await this.ids()) {
      try {
        out.push(await this.read(id));
      } catch (err) {
        if (!(err instanceof ContainerNotFoundError)) throw err; // removed meanwhile
      }
    }
    return out;
  }

  /** Finds a container by full id, name or unique id prefix. */
  async resolve(ref: string): Promise<string> {
    if (/^[0-9a-f]{64}$/.test(ref) && (await this.exists(ref))) return ref;
    if (!ref.includes('/')) {
      const byName = await readlink(join(this.namesDir, ref)).catch(() => undefined);
      if (byName && (await this.exists(byName))) return byName;
    }
    if (/^[0-9a-f]{1,64}$/.test(ref)) {
      const hits = (await this.ids()).filter((id) => id.startsWith(ref));
      if (hits.length === 1 && hits[0]) return hits[0];
    }
    throw new ContainerNotFoundError(ref);
  }

  /** Removes the container's state dir and name (under the lock: no update races with it). */
  async destroy(rec: ContainerRecord): Promise<void> {
    await withStateLock(this.lockPath, 'exclusive', async () => {
      await this.releaseName(rec.name, rec.id);
      await rm(this.dir(rec.id), { recursive: true, force: true });
    });
  }
}
