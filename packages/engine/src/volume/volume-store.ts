/**
 * Named local volumes, as Docker's `local` driver:
 *
 *   <dataRoot>/volumes/<name>/_data        the volume's content (its Mountpoint)
 *   <dataRoot>/volumes/<name>/volume.json  {Name, Driver, Labels, Options, CreatedAt}
 *   <dataRoot>/volumes/.lock               flock around every change (create, mount, remove)
 *
 * A volume is made in `.new-<random>/` and renamed into place, so it appears whole or not at all.
 * A volume with driver options `type`/`device`/`o` (a tmpfs, or a bind of a host dir) has that
 * device mounted at `_data` when a container first uses it; it stays mounted until the volume
 * is removed (or the host reboots). A volume is in use while any container record (running or
 * not) names it; `remove` and `prune` refuse or skip those. Container creation writes its record
 * before it ensures its volumes, and removal checks the records under the lock, so a volume is
 * never deleted under a container being made.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ignoreErrno } from '@shoal/common';
import {
  InvalidVolumeError,
  StateUnreadableError,
  VolumeInUseError,
  VolumeMountError,
  VolumeNotFoundError,
} from '../errors.js';
import { sysMount, sysUmount } from '../libc.js';
import { withStateLock } from '../state-lock.js';
import { parseSize } from '../spec/units.js';

/** What `volume inspect` prints (Docker's shape). */
export interface VolumeInfo {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
}

export interface VolumeCreateOptions {
  /** Only `local`. */
  driver?: string;
  labels?: Record<string, string>;
  /** The local driver's options: `type`, `device`, `o`. */
  driverOpts?: Record<string, string>;
}

/** Docker's label on volumes made for `-v /path` without a name. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const MS_BIND = 4096;
const MS_REC = 16384;
const MNT_DETACH = 2;
const TMPFS_FLAGS = new Set(['exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'atime', 'noatime', 'ro', 'rw']);
const TMPFS_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks']);

/** Checks a volume name as Docker's local driver does; throws one line naming it. */
export function checkVolumeName(name: string): void {
  if (typeof name !== 'string' || name.length < 2) {
    throw new InvalidVolumeError(
      `volume name ${JSON.stringify(name)} is too short: names need at least two characters [a-zA-Z0-9][a-zA-Z0-9_.-]`,
    );
  }
  if (!NAME_RE.test(name) || name.length > 255) {
    throw new InvalidVolumeError(
      `volume name ${JSON.stringify(name)} has characters a local volume name cannot have: only [a-zA-Z0-9][a-zA-Z0-9_.-] (a host directory must be an absolute path)`,
    );
  }
}

/** Checks driver and driver options (Docker's local driver: type, device, o); throws one line. */
export function checkVolumeOptions(o: VolumeCreateOptions, what = 'volume'): void {
  const driver = o.driver ?? 'local';
  if (driver !== 'local') {
    throw new InvalidVolumeError(`${what}: volume driver ${JSON.stringify(driver)} is not supported (only "local")`);
  }
  for (const [k, v] of Object.entries(o.labels ?? {})) {
    if (!k) throw new InvalidVolumeError(`${what}: a label needs a key (got ${JSON.stringify(`=${v}`)})`);
  }
  const opts = o.driverOpts ?? {};
  for (const k of Object.keys(opts)) {
    if (!['type', 'device', 'o'].includes(k)) {
      throw new InvalidVolumeError(
        `${what}: invalid option key ${JSON.stringify(k)} (the local driver takes type, device, o)`,
      );
    }
  }
  const { type, device, o: mountOpts } = opts;
  if (type === undefined && device === undefined) {
    if (mountOpts !== undefined) throw new InvalidVolumeError(`${what}: option "o" needs "type" and "device"`);
    return;
  }
  if (!type) throw new InvalidVolumeError(`${what}: missing required option "type" (tmpfs, or none with o=bind)`);
  if (!device) throw new InvalidVolumeError(`${what}: missing required option "device"`);
  const parts = (mountOpts ?? '').split(',').filter(Boolean);
  if (type === 'tmpfs') {
    for (const p of parts) {
      const key = p.includes('=') ? p.slice(0, p.indexOf('=')) : p;
      if (!(TMPFS_FLAGS.has(p) || (p.includes('=') && TMPFS_KEYS.has(key)))) {
        throw new InvalidVolumeError(`${what}: tmpfs option ${JSON.stringify(p)} is not supported`);
      }
      if (key === 'size') {
        try {
          parseSize(p.slice(5), 'size');
        } catch (err) {
          throw new InvalidVolumeError(`${what}: tmpfs option ${JSON.stringify(p)}: not a size`, { cause: err });
        }
      }
    }
    return;
  }
  if (type === 'none') {
    if (!parts.includes('bind') && !parts.includes('rbind')) {
      throw new InvalidVolumeError(`${what}: type "none" needs o=bind (a bind of a host directory)`);
    }
    for (const p of parts) {
      if (!['bind', 'rbind', 'ro', 'rw'].includes(p)) {
        throw new InvalidVolumeError(
          `${what}: bind option ${JSON.stringify(p)} is not supported (bind, rbind, ro, rw)`,
        );
      }
    }
    if (!device.startsWith('/'))
      throw new InvalidVolumeError(`${what}: device ${JSON.stringify(device)} must be an absolute host path`);
    return;
  }
  throw new InvalidVolumeError(
    `${what}: type ${JSON.stringify(type)} is not supported here (tmpfs, or none with o=bind)`,
  );
}

/** Which containers use which volumes (by volume name). */
export type VolumeUsers = () => Promise<Map<string, string[]>>;

export class VolumeStore {
  readonly dir: string;
  private readonly lockPath: string;

  constructor(
    dataRoot: string,
    private readonly users: VolumeUsers,
  ) {
    this.dir = join(dataRoot, 'volumes');
    this.lockPath = join(this.dir, '.lock');
  }

  private locked<T>(fn: () => Promise<T> | T): Promise<T> {
    return mkdir(this.dir, { recursive: true }).then(() => withStateLock(this.lockPath, 'exclusive', fn));
  }

  /** `<dataRoot>/volumes/<name>/_data`. */
  mountpointOf(name: string): string {
    return join(this.dir, name, '_data');
  }

  /**
   * Creates a volume (a random name when none is given), or returns the existing one of that
   * name unchanged (as Docker's `volume create` does). Everything is checked first.
   */
  async create(name: string | undefined, o: VolumeCreateOptions = {}): Promise<VolumeInfo> {
    return (await this.ensure(name, o)).volume;
  }

  /** The volume, created with `o` when it does not exist; says whether it was created now. */
  async ensure(
    name: string | undefined,
    o: VolumeCreateOptions = {},
  ): Promise<{ volume: VolumeInfo; created: boolean }> {
    const n = name ?? randomBytes(32).toString('hex');
    checkVolumeName(n);
    checkVolumeOptions(o);
    return this.locked(async () => {
      const existing = this.read(n);
      if (existing) return { volume: existing, created: false };
      const info: VolumeInfo = {
        CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        Driver: 'local',
        Labels: o.labels && Object.keys(o.labels).length ? { ...o.labels } : null,
        Mountpoint: this.mountpointOf(n),
        Name: n,
        Options: o.driverOpts && Object.keys(o.driverOpts).length ? { ...o.driverOpts } : null,
        Scope: 'local',
      };
      const tmp = join(this.dir, `.new-${randomBytes(6).toString('hex')}`);
      try {
        await mkdir(join(tmp, '_data'), { recursive: true, mode: 0o755 });
        await writeFile(join(tmp, 'volume.json'), JSON.stringify(info, null, 1));
        await rename(tmp, join(this.dir, n));
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
      return { volume: info, created: true };
    });
  }

  /** The volume named `name`; VolumeNotFoundError when there is none. */
  async inspect(name: string): Promise<VolumeInfo> {
    const v = this.read(name);
    if (!v) throw new VolumeNotFoundError(name);
    return Promise.resolve(v);
  }

  /** Every volume, sorted by name. */
  async list(): Promise<VolumeInfo[]> {
    const names = (await readdir(this.dir).catch(ignoreErrno('ENOENT'))) ?? [];
    const out: VolumeInfo[] = [];
    for (const n of names.sort()) {
      if (n.startsWith('.')) continue;
      const v = this.read(n);
      if (v) out.push(v);
    }
    return out;
  }

  /** Names of the containers using each volume. */
  usage(): Promise<Map<string, string[]>> {
    return this.users();
  }

  /**
   * Removes a volume that no container uses (VolumeInUseError otherwise); its device is
   * unmounted first. With `force`, a missing volume is not an error.
   */
  async remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.locked(async () => {
      if (!this.read(name)) {
        if (opts.force) return;
        throw new VolumeNotFoundError(name);
      }
      const using = (await this.users()).get(name) ?? [];
      if (using.length) throw new VolumeInUseError(name, using);
      await this.destroy(name);
    });
  }

  /** Removes unused volumes: anonymous ones, or every unused one with `all`. */
  async prune(
    opts: { all?: boolean; filter?: (v: VolumeInfo) => boolean } = {},
  ): Promise<{ removed: string[]; spaceReclaimed: number }> {
    return this.locked(async () => {
      const used = await this.users();
      const removed: string[] = [];
      let space = 0;
      for (const v of await this.list()) {
        if (used.get(v.Name)?.length) continue;
        if (!opts.all && v.Labels?.[ANONYMOUS_LABEL] === undefined) continue;
        if (opts.filter && !opts.filter(v)) continue;
        if (!v.Options?.['type']) space += await du(v.Mountpoint);
        await this.destroy(v.Name);
        removed.push(v.Name);
      }
      return { removed, spaceReclaimed: space };
    });
  }

  /**
   * The host dir to mount for the volume: for a volume with a device (tmpfs, bind), the device
   * is mounted at `_data` first unless it is already.
   */
  async mountpoint(name: string): Promise<string> {
    const v = await this.inspect(name);
    const type = v.Options?.['type'];
    if (!type) return v.Mountpoint;
    return this.locked(() => {
      if (isMountPoint(v.Mountpoint)) return v.Mountpoint;
      const device = v.Options?.['device'] ?? '';
      const parts = (v.Options?.['o'] ?? '').split(',').filter(Boolean);
      try {
        if (type === 'tmpfs') {
          const data = parts.map((p) => (p.startsWith('size=') ? `size=${parseSize(p.slice(5), 'size')}` : p));
          sysMount('tmpfs', v.Mountpoint, 'tmpfs', 0, data.join(',') || null);
        } else {
          sysMount(device, v.Mountpoint, null, MS_BIND | (parts.includes('rbind') ? MS_REC : 0), null);
        }
      } catch (err) {
        throw new VolumeMountError(
          name,
          `mounting ${type} ${device} at ${v.Mountpoint} failed: ${errnoCode(err) ?? String(err)}`,
          {
            cause: err,
          },
        );
      }
      return v.Mountpoint;
    });
  }

  private read(name: string): VolumeInfo | undefined {
    if (!NAME_RE.test(name)) return undefined;
    const dir = join(this.dir, name);
    let raw: string;
    try {
      raw = readFileSync(join(dir, 'volume.json'), 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      // a volume made before volume.json existed (only its _data dir)
      if (!existsSync(join(dir, '_data'))) return undefined;
      return {
        CreatedAt: statSync(dir)
          .mtime.toISOString()
          .replace(/\.\d+Z$/, 'Z'),
        Driver: 'local',
        Labels: null,
        Mountpoint: this.mountpointOf(name),
        Name: name,
        Options: null,
        Scope: 'local',
      };
    }
    try {
      return { ...(JSON.parse(raw) as VolumeInfo), Mountpoint: this.mountpointOf(name) };
    } catch (err) {
      throw new StateUnreadableError(join(dir, 'volume.json'), 'not JSON', { cause: err });
    }
  }

  private async destroy(name: string): Promise<void> {
    const mp = this.mountpointOf(name);
    while (isMountPoint(mp)) sysUmount(mp, MNT_DETACH);
    const gone = join(this.dir, `.del-${randomBytes(6).toString('hex')}`);
    await rename(join(this.dir, name), gone);
    await rm(gone, { recursive: true, force: true });
  }
}

function isMountPoint(path: string): boolean {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === path);
}

async function du(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(ignoreErrno('ENOENT'));
  for (const e of entries ?? []) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await du(p);
    else if (e.isFile()) total += (await stat(p)).size;
  }
  return total;
}
