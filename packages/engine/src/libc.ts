/**
 * The few libc calls Node has no API for, through koffi (FFI, prebuilt, no compiler): flock for
 * the state lock, lsetxattr/lgetxattr for overlay opaque dirs and PAX xattrs, mknod for whiteout
 * and device nodes, mount/umount2 for rootfs and secrets without spawning mount(8). Loaded lazily so that importing the engine never needs libc.
 */
import { createRequire } from 'node:module';
import os from 'node:os';

interface Libc {
  flock: (fd: number, op: number) => number;
  lsetxattr: (path: string, name: string, value: Buffer, size: number, flags: number) => number;
  lgetxattr: (path: string, name: string, value: Buffer | null, size: number) => number;
  mknod: (path: string, mode: number, dev: bigint) => number;
  mount: (src: string, target: string, fstype: string | null, flags: number, data: string | null) => number;
  umount2: (target: string, flags: number) => number;
  errno: () => number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as {
    load(name: string): { func(sig: string): (...args: unknown[]) => unknown };
    errno(): number;
  };
  const lib = koffi.load('libc.so.6');
  const flock = lib.func('int flock(int fd, int op)');
  const lsetxattr = lib.func('int lsetxattr(const char *path, const char *name, void *value, size_t size, int flags)');
  const lgetxattr = lib.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)');
  const mknod = lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
  const mount = lib.func(
    'int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)',
  );
  const umount2 = lib.func('int umount2(const char *target, int flags)');
  libc = {
    flock: (fd, op) => flock(fd, op) as number,
    lsetxattr: (p, n, v, s, f) => lsetxattr(p, n, v, s, f) as number,
    lgetxattr: (p, n, v, s) => Number(lgetxattr(p, n, v, s)),
    mknod: (p, m, d) => mknod(p, m, d) as number,
    mount: (a, b, c, d, e) => mount(a, b, c, d, e) as number,
    umount2: (t, f) => umount2(t, f) as number,
    errno: () => koffi.errno(),
  };
  return libc;
}

/** A Node-style system error for a failed libc call (`errno` defaults to the last one). */
function sysError(call: string, path: string, errno = load().errno()): NodeJS.ErrnoException {
  const name = Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `E${errno}`;
  const err = new Error(`${call} ${path}: ${name}`) as NodeJS.ErrnoException;
  err.code = name;
  err.errno = errno;
  err.syscall = call;
  err.path = path;
  return err;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** flock(2) without blocking the event loop: returns false when LOCK_NB would block. */
export function flockNb(fd: number, op: number): boolean {
  const lib = load();
  if (lib.flock(fd, op | LOCK_NB) === 0) return true;
  const errno = lib.errno();
  if (errno === os.constants.errno.EWOULDBLOCK || errno === os.constants.errno.EAGAIN) return false;
  throw sysError('flock', `fd ${fd}`);
}

/** Sets an extended attribute on `path` itself (not following a symlink). */
export function lsetxattr(path: string, name: string, value: Buffer): void {
  if (load().lsetxattr(path, name, value, value.length, 0) !== 0) throw sysError('lsetxattr', path);
}

/** Reads an extended attribute of `path` itself, or undefined when it is absent. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const lib = load();
  const buf = Buffer.alloc(4096);
  const n = lib.lgetxattr(path, name, buf, buf.length);
  if (n < 0) {
    if (lib.errno() === os.constants.errno.ENODATA) return undefined;
    throw sysError('lgetxattr', path);
  }
  return buf.subarray(0, n);
}

/** The Linux dev_t of major:minor (glibc's makedev). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** mknod(2): `type` is S_IFCHR, S_IFBLK or S_IFIFO; `perm` the permission bits. */
export function mknod(path: string, type: number, perm: number, major = 0, minor = 0): void {
  if (load().mknod(path, type | (perm & 0o7777), makedev(major, minor)) !== 0) throw sysError('mknod', path);
}

/** mount(2); throws an errno error (code EINVAL, ENOENT, ...). */
export function sysMount(
  source: string,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
): void {
  if (load().mount(source, target, fstype, flags, data) !== 0) throw sysError('mount', target);
}

/** umount2(2); resolves false when `target` was not a mount point (EINVAL) or is gone (ENOENT). */
export function sysUmount(target: string, flags = 0): boolean {
  const lib = load();
  if (lib.umount2(target, flags) === 0) return true;
  const errno = lib.errno();
  if (errno === os.constants.errno.EINVAL || errno === os.constants.errno.ENOENT) return false;
  throw sysError('umount2', target, errno);
}
