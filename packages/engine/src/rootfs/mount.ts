/**
 * mount(2)/umount2(2) in-process through koffi (no mount(8) spawn), with the errno as a Node-style
 * error code, and a reader of /proc/self/mountinfo. Used by the rootfs, secrets and tests.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_PRIVATE = 0x40000;
export const MNT_DETACH = 0x2;

interface Sys {
  mount: (src: string, target: string, fstype: string | null, flags: number, data: string | null) => number;
  umount2: (target: string, flags: number) => number;
  errno: () => number;
}

let sys: Sys | undefined;

function load(): Sys {
  if (sys) return sys;
  const koffi = createRequire(import.meta.url)('koffi') as {
    load(name: string): { func(sig: string): (...args: unknown[]) => unknown };
    errno(): number;
  };
  const lib = koffi.load('libc.so.6');
  const mount = lib.func(
    'int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)',
  );
  const umount2 = lib.func('int umount2(const char *target, int flags)');
  sys = {
    mount: (a, b, c, d, e) => mount(a, b, c, d, e) as number,
    umount2: (t, f) => umount2(t, f) as number,
    errno: () => koffi.errno(),
  };
  return sys;
}

function errnoError(call: string, path: string, errno: number): NodeJS.ErrnoException {
  const name = Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `E${errno}`;
  const err = new Error(`${call} ${path}: ${name}`) as NodeJS.ErrnoException;
  err.code = name;
  err.errno = errno;
  err.syscall = call;
  err.path = path;
  return err;
}

/** mount(2); throws an errno error (code EINVAL, ENOENT, ...). */
export function sysMount(
  source: string,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
): void {
  const s = load();
  if (s.mount(source, target, fstype, flags, data) !== 0) throw errnoError('mount', target, s.errno());
}

/** umount2(2); resolves false when `target` was not a mount point (EINVAL) or is gone (ENOENT). */
export function sysUmount(target: string, flags = 0): boolean {
  const s = load();
  if (s.umount2(target, flags) === 0) return true;
  const errno = s.errno();
  if (errno === os.constants.errno.EINVAL || errno === os.constants.errno.ENOENT) return false;
  throw errnoError('umount2', target, errno);
}

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
      } catch {
        if (sysUmount(m.mountPoint, MNT_DETACH)) n++;
      }
    }
  }
  return n;
}
