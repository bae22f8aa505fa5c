/**
 * Mount flags, mount(2)/umount2(2) in-process (libc.ts, no mount(8) spawn) with the errno as a
 * Node-style error code, and a reader of /proc/self/mountinfo. Used by the rootfs, secrets and tests.
 */
import { readFileSync } from 'node:fs';
import { errnoCode } from '@shoal/common';
import { sysMount, sysUmount } from '../libc.js';

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_PRIVATE = 0x40000;
export const MNT_DETACH = 0x2;

export { sysMount, sysUmount };

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Every mount of this process's mount namespace. */
export function listMounts(): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [pre = '', post = ''] = line.split(' - ');
    const f = pre.split(' ');
    const g = post.split(' ');
    out.push({
      mountPoint: unescape(f[4] ?? ''),
      options: f[5] ?? '',
      fsType: g[0] ?? '',
      source: unescape(g[1] ?? ''),
      superOptions: g[2] ?? '',
    });
  }
  return out;
}

export function isMountPoint(path: string): boolean {
  return listMounts().some((m) => m.mountPoint === path);
}

/** Mount points at or below `dir`, deepest first (the order to unmount them). */
export function mountsUnder(dir: string): MountInfo[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return listMounts()
    .filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(prefix))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length);
}

/** Unmounts every mount at or below `dir` (stacked ones too), lazily if busy. Idempotent. */
export function unmountAll(dir: string): number {
  let n = 0;
  for (let round = 0; round < 16; round++) {
    const list = mountsUnder(dir);
    if (list.length === 0) break;
    for (const m of list) {
      try {
        if (sysUmount(m.mountPoint)) n++;
      } catch (err) {
        if (errnoCode(err) !== 'EBUSY') throw err;
        if (sysUmount(m.mountPoint, MNT_DETACH)) n++; // busy: detach it now, the kernel frees it later
      }
    }
  }
  return n;
}
