/**
 * The file trees of the offline test images: a busybox-static root filesystem, and the two
 * layers of the whiteout image. Everything is derived from the local `/bin/busybox` binary.
 */
import type { TarEntry } from './tar-writer.js';

/** Where Debian's busybox-static installs the binary. */
export const BUSYBOX_PATH = '/bin/busybox';

/** The PATH of the test images. */
export const TEST_IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Applets the test images must provide; the build fails if busybox lacks one. */
export const REQUIRED_APPLETS = [
  'sh',
  'httpd',
  'nc',
  'sleep',
  'cat',
  'echo',
  'ls',
  'id',
  'ping',
  'wget',
  'nslookup',
  'true',
  'false',
  'env',
  'hostname',
  'ip',
  'mkdir',
  'rm',
  'ps',
  'kill',
  'grep',
  'sha256sum',
  'test',
  'touch',
  'date',
] as const;

/** The entrypoint script: marks that it ran, then execs the command. */
export const ENTRYPOINT_SCRIPT = '#!/bin/sh\nexport SHOAL_ENTRYPOINT=1\nexec "$@"\n';

/** Go's name for this machine's architecture (image platforms use Go names). */
export function goArch(nodeArch: string = process.arch): string {
  switch (nodeArch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'arm':
      return 'arm';
    default:
      return nodeArch; // arm64, ppc64, s390x, riscv64 keep their names
  }
}

/**
 * The C library a static glibc busybox loads at run time to resolve names (glibc's NSS: files and
 * dns live in libc.so.6 since 2.34). Without it, `nc NAME` says "bad address" and `wget NAME`
 * crashes; `nslookup` alone works. Debian's multiarch directory for this machine's architecture.
 */
export function hostLibcPath(nodeArch: string = process.arch): string | undefined {
  const triplet: Record<string, string> = {
    x64: 'x86_64-linux-gnu',
    arm64: 'aarch64-linux-gnu',
    ppc64: 'powerpc64le-linux-gnu',
    s390x: 's390x-linux-gnu',
    riscv64: 'riscv64-linux-gnu',
  };
  const t = triplet[nodeArch];
  return t === undefined ? undefined : `/lib/${t}/libc.so.6`;
}

/**
 * The root filesystem of `shoal-test/busybox`: every applet as a symlink to /bin/busybox, plus the
 * host's libc.so.6 at the same path when given (so that names resolve through /etc/hosts and
 * /etc/resolv.conf, as in any glibc image).
 */
export function busyboxEntries(
  busybox: Uint8Array,
  applets: readonly string[],
  arch: string,
  libc?: { path: string; data: Uint8Array },
): TarEntry[] {
  const entries: TarEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', mode: 0o755, data: busybox },
  ];
  if (libc !== undefined) {
    const parts = libc.path.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++) entries.push({ type: 'dir', path: parts.slice(0, i).join('/') });
    entries.push({ type: 'file', path: parts.join('/'), mode: 0o755, data: libc.data });
  }
  for (const a of [...new Set(applets)].filter((a) => a !== 'busybox' && /^[a-z0-9][a-z0-9._-]*$/.test(a)).sort()) {
    entries.push({ type: 'symlink', path: `bin/${a}`, target: 'busybox' });
  }
  entries.push(
    { type: 'file', path: 'bin/shoal-entry', mode: 0o755, data: ENTRYPOINT_SCRIPT },
    { type: 'dir', path: 'dev' },
    { type: 'dir', path: 'etc' },
    {
      type: 'file',
      path: 'etc/passwd',
      data: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    },
    { type: 'file', path: 'etc/group', data: 'root:x:0:\nnogroup:x:65534:\n' },
    { type: 'file', path: 'etc/shoal-arch', data: `${arch}\n` },
    { type: 'file', path: 'etc/os-release', data: 'ID=shoal-test\nNAME="Shoal test image (busybox-static)"\n' },
    { type: 'dir', path: 'home' },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'srv' },
    { type: 'file', path: 'srv/index.html', data: 'hello from shoal-test/busybox\n' },
    { type: 'dir', path: 'sys' },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'usr' },
    { type: 'dir', path: 'usr/bin' },
    { type: 'dir', path: 'var' },
    { type: 'dir', path: 'var/run' },
  );
  return entries;
}

/** A one-file layer that overwrites /etc/shoal-arch (tells which entry of a multi-arch index ran). */
export function archEntries(arch: string): TarEntry[] {
  return [
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/shoal-arch', data: `${arch}\n` },
  ];
}

/** The middle layer of `shoal-test/whiteout`: files the upper layer deletes or hides. */
export function whiteoutLowerEntries(): TarEntry[] {
  return [
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/removed.txt', data: 'this file is deleted by the upper layer\n' },
    { type: 'file', path: 'etc/kept.txt', data: 'kept\n' },
    { type: 'dir', path: 'data' },
    { type: 'dir', path: 'data/opaque' },
    { type: 'file', path: 'data/opaque/old-a.txt', data: 'old a\n' },
    { type: 'file', path: 'data/opaque/old-b.txt', data: 'old b\n' },
    { type: 'dir', path: 'data/opaque/old-dir' },
    { type: 'file', path: 'data/opaque/old-dir/deep.txt', data: 'old deep\n' },
    { type: 'dir', path: 'data/plain' },
    { type: 'file', path: 'data/plain/old.txt', data: 'old\n' },
  ];
}

/** The upper layer of `shoal-test/whiteout`: a file whiteout and an opaque directory. */
export function whiteoutUpperEntries(): TarEntry[] {
  return [
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/.wh.removed.txt', mode: 0o644, data: '' },
    { type: 'dir', path: 'data' },
    { type: 'dir', path: 'data/opaque' },
    { type: 'file', path: 'data/opaque/.wh..wh..opq', data: '' },
    { type: 'file', path: 'data/opaque/new.txt', data: 'new\n' },
    { type: 'dir', path: 'data/plain' },
    { type: 'file', path: 'data/plain/added.txt', data: 'added\n' },
  ];
}

/** What a correct unpacking of `shoal-test/whiteout:1` shows (paths relative to the rootfs). */
export const WHITEOUT_EXPECTED = {
  present: ['etc/kept.txt', 'data/opaque/new.txt', 'data/plain/old.txt', 'data/plain/added.txt', 'bin/busybox'],
  absent: [
    'etc/removed.txt',
    'etc/.wh.removed.txt',
    'data/opaque/old-a.txt',
    'data/opaque/old-b.txt',
    'data/opaque/old-dir',
    'data/opaque/.wh..wh..opq',
  ],
} as const;
