/**
 * A container's root filesystem: the image's unpacked layer dirs (read-only, shared) stacked with
 * overlayfs under a writable upper dir of its own. Layout per container dir:
 * `upper/` (its changes), `work/` (overlayfs scratch), `merged/` (the default mount point) and,
 * only when the layer list is too long for one page of mount data, `l/<n>` short symlinks.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, ignoreErrno } from '@shoal/common';
import { RootfsMountError } from '../errors.js';
import { isMountPoint, sysMount, unmountAll } from './mount.js';

/** mount(2) data is limited to one page; stay clear of it. */
const MAX_MOUNT_DATA = 4000;

export interface RootfsPaths {
  upper: string;
  work: string;
  /** Where the overlay is mounted. */
  merged: string;
}

export interface MountRootfsOptions {
  /** Container id (for errors). */
  id: string;
  /** Holds `upper`, `work` (and `merged` unless `target` is given): `<dataRoot>/containers/<id>`. */
  containerDir: string;
  /** Unpacked layer dirs, bottom first (as the image store lists them). */
  layerDirs: readonly string[];
  /** Mount point; default `<containerDir>/merged`. */
  target?: string;
}

export function rootfsPaths(containerDir: string, target?: string): RootfsPaths {
  return {
    upper: join(containerDir, 'upper'),
    work: join(containerDir, 'work'),
    merged: target ?? join(containerDir, 'merged'),
  };
}

/** overlay's mount data for the layers (top first) and the container's upper/work dirs. */
export function overlayData(layerDirs: readonly string[], upper: string, work: string): string {
  for (const d of [...layerDirs, upper, work]) {
    if (/[,:]/.test(d)) throw new Error(`path ${d} contains "," or ":", which overlay mount options cannot hold`);
  }
  return `lowerdir=${[...layerDirs].reverse().join(':')},upperdir=${upper},workdir=${work}`;
}

function mountWithCwd(data: string, target: string, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('mount', ['-t', 'overlay', 'overlay', '-o', data, target], {
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(err.trim() || `mount exited ${code}`))));
  });
}

/**
 * Mounts the overlay and returns its paths. Idempotent: an existing overlay at the target is
 * kept. On failure nothing it made is left (dirs removed, nothing mounted).
 */
export async function mountRootfs(opts: MountRootfsOptions): Promise<RootfsPaths> {
  const paths = rootfsPaths(opts.containerDir, opts.target);
  if (opts.layerDirs.length === 0) throw new RootfsMountError(opts.id, 'the image has no layers');
  for (const d of opts.layerDirs) {
    const st = await stat(d).catch(ignoreErrno('ENOENT', 'ENOTDIR'));
    if (!st?.isDirectory()) throw new RootfsMountError(opts.id, `layer dir ${d} does not exist`);
  }
  if (isMountPoint(paths.merged)) return paths;
  const made: string[] = [];
  try {
    for (const d of [paths.upper, paths.work, paths.merged]) {
      const existed = await stat(d).then(
        () => true,
        () => false,
      );
      await mkdir(d, { recursive: true, mode: 0o755 });
      if (!existed) made.push(d);
    }
    const data = overlayData(opts.layerDirs, paths.upper, paths.work);
    if (data.length <= MAX_MOUNT_DATA) {
      sysMount('overlay', paths.merged, 'overlay', 0, data);
    } else {
      // too long: short symlinks l/0..n and relative paths, resolved from the mount's cwd
      const links = join(opts.containerDir, 'l');
      await rm(links, { recursive: true, force: true });
      await mkdir(links);
      made.push(links);
      await Promise.all(opts.layerDirs.map((d, i) => symlink(d, join(links, String(i)))));
      const lower = opts.layerDirs
        .map((_, i) => `l/${i}`)
        .reverse()
        .join(':');
      const rel = `lowerdir=${lower},upperdir=upper,workdir=work`;
      if (rel.length > MAX_MOUNT_DATA)
        throw new Error(`${opts.layerDirs.length} layers are too many for one overlay mount`);
      await mountWithCwd(rel, paths.merged, opts.containerDir);
    }
    return paths;
  } catch (err) {
    // undo; a dir that cannot be removed is named in the error rather than hidden
    const left: string[] = [];
    for (const d of made.reverse()) {
      await rm(d, { recursive: true, force: true }).catch((e: unknown) => left.push(`${d} (${errorMessage(e)})`));
    }
    const also = left.length ? `; left behind: ${left.join(', ')}` : '';
    if (err instanceof RootfsMountError && !also) throw err;
    throw new RootfsMountError(opts.id, `overlay mount on ${paths.merged} failed: ${errorMessage(err)}${also}`, {
      cause: err,
    });
  }
}

/**
 * Unmounts the overlay (and anything mounted below it). With `remove`, also deletes the upper,
 * work, merged and link dirs. Idempotent: safe after a crash or a second call.
 */
export async function unmountRootfs(
  containerDir: string,
  opts: { target?: string; remove?: boolean; id?: string } = {},
): Promise<void> {
  const paths = rootfsPaths(containerDir, opts.target);
  try {
    unmountAll(paths.merged);
  } catch (err) {
    throw new RootfsMountError(opts.id ?? containerDir, `unmount of ${paths.merged} failed`, { cause: err });
  }
  if (!opts.remove) return;
  for (const d of [paths.merged, paths.upper, paths.work, join(containerDir, 'l')]) {
    await rm(d, { recursive: true, force: true });
  }
}

/** Whether the directory holds anything (used to check the upper dir in tests). */
export async function isEmptyDir(dir: string): Promise<boolean> {
  return ((await readdir(dir).catch(ignoreErrno('ENOENT'))) ?? []).length === 0;
}
