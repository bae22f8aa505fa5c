/**
 * User mounts of a container: binds from the host, named volumes under the data root and tmpfs.
 * `planMounts` validates every mount first (absolute, normalised, unique targets; existing bind
 * sources; known options) and only returns; `createVolumeDirs` then makes the volume dirs, so
 * bad input changes nothing.
 */
import { lstat, mkdir, readdir, stat } from 'node:fs/promises';
import { ignoreErrno, run } from '@shoal/common';
import { join, posix } from 'node:path';
import { InvalidMountError } from '../errors.js';
import type { OciMount } from './oci.js';
import { parseSize } from './units.js';

export type Propagation = 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';

export interface BindMountInput {
  type: 'bind';
  /** Absolute host path; must exist. */
  source: string;
  target: string;
  readOnly?: boolean;
  /** Default `rprivate`. */
  propagation?: Propagation;
  /** Default true (`rbind`); false gives a plain `bind` without submounts. */
  recursive?: boolean;
}

export interface VolumeMountInput {
  type: 'volume';
  /** Volume name: `<dataRoot>/volumes/<name>/_data`, created on first use. */
  source: string;
  target: string;
  readOnly?: boolean;
}

export interface TmpfsMountInput {
  type: 'tmpfs';
  target: string;
  /** Size like `64m` or bytes; default none (the kernel's half of RAM). */
  size?: string | number;
  /** Permission bits, e.g. 0o1777. */
  mode?: number;
  /** More mount options (`exec`, `uid=1000`...); later ones win over the defaults. */
  options?: string[];
  readOnly?: boolean;
}

export type MountInput = BindMountInput | VolumeMountInput | TmpfsMountInput;

const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;
/** tmpfs options a user may set; flags with an opposite are resolved "last one wins". */
const TMPFS_FLAGS: Record<string, string> = {
  exec: 'noexec',
  noexec: 'exec',
  suid: 'nosuid',
  nosuid: 'suid',
  dev: 'nodev',
  nodev: 'dev',
  ro: 'rw',
  rw: 'ro',
  atime: 'noatime',
  noatime: 'atime',
  strictatime: '',
  relatime: '',
  nodiratime: '',
  sync: 'async',
  async: 'sync',
  dirsync: '',
  private: '',
  rprivate: '',
  shared: '',
  rshared: '',
  slave: '',
  rslave: '',
};
const TMPFS_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'huge', 'mpol']);

/** An absolute, normalised container path; throws naming the mount. */
export function checkTarget(target: string): string {
  if (typeof target !== 'string' || !target.startsWith('/')) {
    throw new InvalidMountError(String(target), 'target must be an absolute path');
  }
  if (target.split('/').includes('..')) throw new InvalidMountError(target, 'target must not contain ".."');
  const norm = posix.normalize(target).replace(/\/+$/, '') || '/';
  if (norm === '/') throw new InvalidMountError(target, 'cannot mount over the container root "/"');
  return norm;
}

/** Merges option lists: for paired flags and key=value options the later one wins. */
export function mergeOptions(base: readonly string[], extra: readonly string[]): string[] {
  const out: string[] = [];
  const put = (o: string): void => {
    const key = o.includes('=') ? o.slice(0, o.indexOf('=')) : o;
    const opposite = TMPFS_FLAGS[o];
    for (let i = out.length - 1; i >= 0; i--) {
      const cur = out[i] as string;
      const curKey = cur.includes('=') ? cur.slice(0, cur.indexOf('=')) : cur;
      const bothPropagation = PROPAGATIONS.has(o) && PROPAGATIONS.has(cur);
      if (curKey === key || (opposite && cur === opposite) || bothPropagation) out.splice(i, 1);
    }
    out.push(o);
  };
  for (const o of [...base, ...extra]) put(o);
  return out;
}

export interface PlannedMounts {
  mounts: OciMount[];
  /** Named volumes to create once every mount is valid: host dir and container target. */
  volumes: { dir: string; target: string }[];
}

/** Validates user mounts and turns them into OCI mounts (nothing is created). */
export async function planMounts(inputs: readonly MountInput[], dataRoot: string): Promise<PlannedMounts> {
  const seen = new Set<string>();
  const mounts: OciMount[] = [];
  const volumes: { dir: string; target: string }[] = [];
  for (const m of inputs) {
    const target = checkTarget(m.target);
    if (seen.has(target)) throw new InvalidMountError(target, 'two mounts have this target');
    seen.add(target);
    switch (m.type) {
      case 'bind': {
        if (typeof m.source !== 'string' || !m.source.startsWith('/')) {
          throw new InvalidMountError(target, `bind source ${JSON.stringify(m.source)} must be an absolute host path`);
        }
        try {
          await stat(m.source);
        } catch (err) {
          throw new InvalidMountError(target, `bind source ${m.source} does not exist`, { cause: err });
        }
        const prop = m.propagation ?? 'rprivate';
        if (!PROPAGATIONS.has(prop)) {
          throw new InvalidMountError(
            target,
            `propagation ${JSON.stringify(prop)} is not one of ${[...PROPAGATIONS].join(', ')}`,
          );
        }
        mounts.push({
          destination: target,
          type: 'bind',
          source: posix.normalize(m.source),
          options: [m.recursive === false ? 'bind' : 'rbind', prop, ...(m.readOnly ? ['ro'] : [])],
        });
        break;
      }
      case 'volume': {
        if (!VOLUME_NAME.test(m.source)) {
          throw new InvalidMountError(
            target,
            `volume name ${JSON.stringify(m.source)} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`,
          );
        }
        const dir = join(dataRoot, 'volumes', m.source, '_data');
        volumes.push({ dir, target });
        mounts.push({
          destination: target,
          type: 'bind',
          source: dir,
          options: ['rbind', 'rprivate', ...(m.readOnly ? ['ro'] : [])],
        });
        break;
      }
      case 'tmpfs': {
        const opts: string[] = [];
        if (m.size !== undefined) opts.push(`size=${parseSize(m.size, `mounts[${target}].size`)}`);
        if (m.mode !== undefined) {
          if (!Number.isInteger(m.mode) || m.mode < 0 || m.mode > 0o7777) {
            throw new InvalidMountError(target, `tmpfs mode ${m.mode} is not a permission value (0 to 0o7777)`);
          }
          opts.push(`mode=${m.mode.toString(8).padStart(4, '0')}`);
        }
        for (const o of m.options ?? []) {
          const key = o.includes('=') ? o.slice(0, o.indexOf('=')) : o;
          if (!(o in TMPFS_FLAGS) && !(o.includes('=') && TMPFS_KEYS.has(key))) {
            throw new InvalidMountError(target, `tmpfs option ${JSON.stringify(o)} is not supported`);
          }
          if (key === 'size') opts.push(`size=${parseSize(o.slice(5), `mounts[${target}].size`)}`);
          else opts.push(o);
        }
        if (m.readOnly) opts.push('ro');
        mounts.push({
          destination: target,
          type: 'tmpfs',
          source: 'tmpfs',
          options: mergeOptions(['noexec', 'nosuid', 'nodev', 'rprivate'], opts),
        });
        break;
      }
      default: {
        const t = (m as { type?: unknown }).type;
        throw new InvalidMountError(target, `type ${JSON.stringify(t)} is not bind, volume or tmpfs`);
      }
    }
  }
  return { mounts, volumes };
}

/**
 * Creates the planned named-volume dirs (idempotent). A volume made now gets a copy of what the
 * image has at its target (Docker's copy-up), when that path is a real directory of the rootfs:
 * no symlink on the way, so nothing outside the rootfs can be copied.
 */
export async function createVolumeDirs(volumes: PlannedMounts['volumes'], rootfs?: string): Promise<void> {
  for (const v of volumes) {
    const existed = await stat(v.dir).then(
      () => true,
      () => false,
    );
    await mkdir(v.dir, { recursive: true, mode: 0o755 });
    if (existed || !rootfs) continue;
    const src = await imageDir(rootfs, v.target);
    // cp -a keeps owners, modes, times, xattrs and symlinks as they are
    if (src) await run('cp', ['-a', '--no-dereference', `${src}/.`, `${v.dir}/`]);
  }
}

/**
 * Copies what the image has at `target` into the volume dir `dir` when the dir is empty (Docker
 * copies into an empty volume on every mount, not only a new one). Only a real directory of the
 * rootfs is copied: no symlink on the way.
 */
export async function copyUpVolume(rootfs: string, target: string, dir: string): Promise<void> {
  if ((await readdir(dir)).length) return;
  const src = await imageDir(rootfs, target);
  if (src) await run('cp', ['-a', '--no-dereference', `${src}/.`, `${dir}/`]);
}

/** `<rootfs><target>` when each component is a real directory (not a symlink), else undefined. */
async function imageDir(rootfs: string, target: string): Promise<string | undefined> {
  let path = rootfs;
  for (const part of target.split('/').filter(Boolean)) {
    path = join(path, part);
    const st = await lstat(path).catch(ignoreErrno('ENOENT', 'ENOTDIR'));
    if (!st?.isDirectory()) return undefined;
  }
  return path;
}

/** Parents before children: mounts sorted by path depth, stable otherwise. */
export function sortMounts(mounts: OciMount[]): OciMount[] {
  const depth = (p: string): number => p.split('/').filter(Boolean).length;
  return mounts
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i)
    .map((x) => x.m);
}
