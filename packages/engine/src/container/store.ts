/**
 * Per-container state on disk, shared by every process that opens the same data root:
 *
 *   <dataRoot>/containers/<id>/state.json       ContainerRecord, written atomically (tmp + rename)
 *   <dataRoot>/containers/<id>/lock             flock held around read-modify-write of this record
 *   <dataRoot>/containers/<id>/exit.json        written by the shim when the init exits
 *   <dataRoot>/containers/<id>/container.log*   written by the shim
 *   <dataRoot>/containers/.new-<pid>-<start>-<id>/  a record being written (renamed into place whole)
 *   <dataRoot>/containers/.del-<pid>-<start>-<id>/  a record being deleted
 *   <dataRoot>/names/<name> -> <id>             a symlink: creating it reserves the name atomically
 *   <dataRoot>/names.lock                       flock taken only to free a name whose record is gone
 *
 * Locks are per container, so operations on different containers never wait for each other. The
 * temp names carry the pid and start time of the process that made them: anyone may remove them
 * once that process is gone, and nobody touches them while it lives.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, stat, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ignoreErrno } from '@shoal/common';
import { ContainerNotFoundError, NameInUseError, StateUnreadableError } from '../errors.js';
import { identityTag, parseIdentityTag, processAlive } from '../monitor/proc.js';
import { withStateLock } from '../state-lock.js';
import type { ContainerRecord } from './types.js';

const ID_RE = /^[0-9a-f]{64}$/;

export class ContainerStore {
  readonly containersDir: string;
  readonly namesDir: string;
  private readonly namesLock: string;

  constructor(readonly dataRoot: string) {
    this.containersDir = join(dataRoot, 'containers');
    this.namesDir = join(dataRoot, 'names');
    this.namesLock = join(dataRoot, 'names.lock');
  }

  async init(): Promise<void> {
    await mkdir(this.containersDir, { recursive: true });
    await mkdir(this.namesDir, { recursive: true });
  }

  dir(id: string): string {
    return join(this.containersDir, id);
  }

  /**
   * Writes a new record: it appears whole (with its lease) or not at all, because it is written
   * into a temp dir named after this process and renamed into place.
   */
  create(rec: ContainerRecord): void {
    const tmp = join(this.containersDir, `.new-${identityTag()}-${rec.id}`);
    mkdirSync(tmp);
    try {
      writeFileSync(join(tmp, 'state.json'), JSON.stringify(rec, null, 1));
      renameSync(tmp, this.dir(rec.id));
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Reserves `name` for `id` (whose record must exist already); throws NameInUseError when
   * another container holds it. A name whose record is gone (a crash while removing) is freed,
   * under a lock, so that two processes freeing it cannot drop each other's new reservation.
   */
  async reserveName(name: string, id: string): Promise<void> {
    const path = join(this.namesDir, name);
    for (let attempt = 0; ; attempt++) {
      try {
        await symlink(id, path);
        return;
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      const holder = await readlink(path).catch(ignoreErrno('ENOENT', 'EINVAL'));
      if (holder === undefined && attempt < 3) continue; // released meanwhile
      if (holder && attempt < 3 && !(await this.exists(holder))) {
        await withStateLock(this.namesLock, 'exclusive', async () => {
          const now = await readlink(path).catch(ignoreErrno('ENOENT', 'EINVAL'));
          if (now === holder && !(await this.exists(holder))) await unlink(path).catch(ignoreErrno('ENOENT'));
        });
        continue;
      }
      throw new NameInUseError(name, holder?.slice(0, 12) || 'another container');
    }
  }

  /** The id a name points at, if any. */
  async nameHolder(name: string): Promise<string | undefined> {
    return readlink(join(this.namesDir, name)).catch(ignoreErrno('ENOENT', 'EINVAL'));
  }

  async releaseName(name: string, id: string): Promise<void> {
    const path = join(this.namesDir, name);
    const holder = await readlink(path).catch(ignoreErrno('ENOENT', 'EINVAL'));
    if (holder === id) await unlink(path).catch(ignoreErrno('ENOENT'));
  }

  async exists(id: string): Promise<boolean> {
    if (!ID_RE.test(id)) return false;
    const st = await stat(join(this.dir(id), 'state.json')).catch(ignoreErrno('ENOENT', 'ENOTDIR'));
    return st !== undefined;
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
   * Only the lease holder, or a caller inside `update`, writes a record.
   */
  write(rec: ContainerRecord): void {
    const path = join(this.dir(rec.id), 'state.json');
    const tmp = `${path}.${identityTag()}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec, null, 1));
    renameSync(tmp, path);
  }

  /**
   * Read-modify-write of one record under its own lock; returns the record as it is now.
   * `fn` returns false to leave the record untouched.
   */
  async update(id: string, fn: (rec: ContainerRecord) => ContainerRecord | void | false): Promise<ContainerRecord> {
    return this.locked(id, async () => {
      const rec = await this.read(id);
      const next = fn(rec);
      if (next === false) return rec;
      this.write(next ?? rec);
      return next ?? rec;
    });
  }

  /** Runs `fn` under the record's lock; ContainerNotFoundError when the record is gone. */
  async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withStateLock(join(this.dir(id), 'lock'), 'exclusive', fn, { createDir: false });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR')
        throw new ContainerNotFoundError(id, { cause: err });
      throw err;
    }
  }

  /** Every container id with a state file. */
  async ids(): Promise<string[]> {
    const names = (await readdir(this.containersDir).catch(ignoreErrno('ENOENT'))) ?? [];
    const out: string[] = [];
    for (const n of names) if (ID_RE.test(n) && (await this.exists(n))) out.push(n);
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
    if (ID_RE.test(ref) && (await this.exists(ref))) return ref;
    if (!ref.includes('/') && !ref.startsWith('.')) {
      const byName = await this.nameHolder(ref);
      if (byName && (await this.exists(byName))) return byName;
    }
    if (/^[0-9a-f]{1,64}$/.test(ref)) {
      const hits = (await this.ids()).filter((id) => id.startsWith(ref));
      if (hits.length === 1 && hits[0]) return hits[0];
    }
    throw new ContainerNotFoundError(ref);
  }

  /**
   * Removes the container's name and state dir. Under the record's lock the name is released and
   * the dir renamed away (the record is gone at once for everyone); then the dir is deleted.
   */
  async destroy(rec: ContainerRecord): Promise<void> {
    const gone = join(this.containersDir, `.del-${identityTag()}-${rec.id}`);
    let moved = false;
    try {
      await this.locked(rec.id, async () => {
        await this.releaseName(rec.name, rec.id);
        renameSync(this.dir(rec.id), gone);
        moved = true;
      });
    } catch (err) {
      if (!(err instanceof ContainerNotFoundError)) throw err;
      await this.releaseName(rec.name, rec.id); // the dir is gone already (a crash mid-remove)
    }
    if (moved) await rm(gone, { recursive: true, force: true });
  }

  /**
   * Removes what crashed processes left: records half written (`.new-*`) or half deleted
   * (`.del-*`) and temp copies of state files, each only once the process that made it is gone.
   * Returns what it removed.
   */
  async removeDebris(): Promise<string[]> {
    const removed: string[] = [];
    const deadOwner = (tag: string): boolean => {
      const owner = parseIdentityTag(tag);
      return owner !== undefined && !processAlive(owner.pid, owner.start);
    };
    for (const n of (await readdir(this.containersDir).catch(ignoreErrno('ENOENT'))) ?? []) {
      const m = /^\.(?:new|del)-(\d+-\d+)-[0-9a-f]{64}$/.exec(n);
      if (m?.[1] && deadOwner(m[1])) {
        await rm(join(this.containersDir, n), { recursive: true, force: true });
        removed.push(n);
        continue;
      }
      if (!ID_RE.test(n)) continue;
      for (const f of (await readdir(this.dir(n)).catch(ignoreErrno('ENOENT', 'ENOTDIR'))) ?? []) {
        const t = /^state\.json\.(\d+-\d+)\.tmp$/.exec(f);
        if (t?.[1] && deadOwner(t[1])) {
          await unlink(join(this.dir(n), f)).catch(ignoreErrno('ENOENT'));
          removed.push(join(n, f));
        }
      }
    }
    return removed;
  }
}
