/**
 * Secrets and configs of a container on a tmpfs of their own, never on disk:
 * `<containerDir>/mounts/secrets` is a small `noswap` tmpfs (0700, nodev, nosuid, noexec); each
 * file is written there with its uid, gid and mode, the caller's buffer is zeroed, the tmpfs is
 * remounted read-only, and each file is bind-mounted read-only at its target in the container.
 * Only paths go into config.json; the data stays in memory and in this tmpfs, which is unmounted
 * when the container is removed (and at engine start for crash leftovers).
 */
import { mkdir, open, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, ignoreErrno } from '@shoal/common';
import { InvalidMountError, SecretMountError } from '../errors.js';
import { checkTarget } from '../spec/mounts.js';
import type { OciMount } from '../spec/oci.js';
import {
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_REMOUNT,
  isMountPoint,
  listMounts,
  sysMount,
  unmountAll,
} from '../rootfs/mount.js';

export interface SecretFile {
  /** Secret (or config) name; the default target is derived from it. */
  name: string;
  /** `secret` (default): target /run/secrets/<name>, mode 0444. `config`: target /<name>, mode 0444. */
  kind?: 'secret' | 'config';
  /** Absolute container path, or a relative one (below /run/secrets for secrets, / for configs). */
  target?: string;
  /** The bytes. Zeroed after they are written unless `keepData` is set on the call. */
  data: Buffer;
  uid?: number;
  gid?: number;
  /** Permission bits, default 0o444. */
  mode?: number;
}

export interface MountedSecrets {
  /** The tmpfs mount point on the host. */
  dir: string;
  /** OCI bind mounts to add to the spec (`extraMounts`). */
  mounts: OciMount[];
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const BIND_OPTIONS = ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'];

export function secretsDir(containerDir: string): string {
  return join(containerDir, 'mounts', 'secrets');
}

function targetOf(f: SecretFile): string {
  const kind = f.kind ?? 'secret';
  const t = f.target ?? f.name;
  if (t.startsWith('/')) return checkTarget(t);
  return checkTarget(kind === 'secret' ? `/run/secrets/${t}` : `/${t}`);
}

function validate(files: readonly SecretFile[]): string[] {
  const targets: string[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    if (!NAME.test(f.name)) throw new SecretMountError(f.name, 'name must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (up to 64)');
    if (!Buffer.isBuffer(f.data)) throw new SecretMountError(f.name, 'data must be a Buffer');
    let target: string;
    try {
      target = targetOf(f);
    } catch (err) {
      throw new SecretMountError(f.name, err instanceof InvalidMountError ? err.message : 'bad target', { cause: err });
    }
    if (seen.has(target)) throw new SecretMountError(f.name, `target ${target} is used twice`);
    seen.add(target);
    for (const [k, v] of [
      ['uid', f.uid],
      ['gid', f.gid],
    ] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 2 ** 32 - 2)) {
        throw new SecretMountError(f.name, `${k} ${v} is not a valid id`);
      }
    }
    if (f.mode !== undefined && (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o777)) {
      throw new SecretMountError(f.name, `mode ${f.mode} is not a permission value (0 to 0o777)`);
    }
    targets.push(target);
  }
  return targets;
}

function mountTmpfs(dir: string, size: number): void {
  const flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const data = `size=${size},mode=0700`;
  try {
    // noswap (Linux 6.4+): the pages of the secret can never reach a swap device
    sysMount('tmpfs', dir, 'tmpfs', flags, `${data},noswap`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    sysMount('tmpfs', dir, 'tmpfs', flags, data);
  }
}

/**
 * Mounts the container's secrets tmpfs and returns the bind mounts for its spec. On failure
 * nothing is left mounted or written. An empty list mounts nothing.
 */
export async function mountSecrets(
  containerDir: string,
  files: readonly SecretFile[],
  opts: { keepData?: boolean } = {},
): Promise<MountedSecrets> {
  const dir = secretsDir(containerDir);
  const targets = validate(files);
  if (files.length === 0) return { dir, mounts: [] };
  if (isMountPoint(dir)) throw new SecretMountError(files[0]?.name ?? '', `${dir} is already mounted`);
  const total = files.reduce((n, f) => n + f.data.length + 4096, 0);
  const size = Math.max(1024 * 1024, Math.ceil((total * 2) / 4096) * 4096);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mounts: OciMount[] = [];
  let current = '';
  try {
    mountTmpfs(dir, size);
    for (const [i, f] of files.entries()) {
      current = f.name;
      const file = join(dir, `${f.kind ?? 'secret'}-${i}`);
      // created 0600 owned by root; the wanted owner and mode only once the bytes are in
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.writeFile(f.data);
        await fh.chown(f.uid ?? 0, f.gid ?? 0);
        await fh.chmod(f.mode ?? 0o444);
      } finally {
        await fh.close();
      }
      mounts.push({ destination: targets[i] as string, type: 'bind', source: file, options: [...BIND_OPTIONS] });
    }
    current = '';
    sysMount('tmpfs', dir, null, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
  } catch (err) {
    unmountAll(dir);
    // undo; a dir that cannot be removed is named in the error rather than hidden
    const left = await rm(join(containerDir, 'mounts'), { recursive: true, force: true }).then(
      () => '',
      (e: unknown) => `; ${join(containerDir, 'mounts')} left behind: ${errorMessage(e)}`,
    );
    throw new SecretMountError(
      current || (files[0]?.name ?? ''),
      `cannot mount the secrets tmpfs: ${errorMessage(err)}${left}`,
      {
        cause: err,
      },
    );
  } finally {
    if (!opts.keepData) for (const f of files) f.data.fill(0);
  }
  return { dir, mounts };
}

/** Unmounts the container's secrets tmpfs and removes its mount point. Idempotent. */
export async function unmountSecrets(containerDir: string): Promise<void> {
  const dir = secretsDir(containerDir);
  unmountAll(dir);
  await rmdir(dir).catch(ignoreErrno('ENOENT'));
  await rmdir(join(containerDir, 'mounts')).catch(ignoreErrno('ENOENT', 'ENOTEMPTY'));
}

/**
 * At engine start: unmounts secrets tmpfs left by a crash under `<dataRoot>/containers/*`, except
 * for the containers `keep` names (still running ones need theirs for a restart). Returns the
 * container ids it cleaned.
 */
export async function cleanupStaleSecretMounts(
  dataRoot: string,
  keep: (id: string) => boolean = () => false,
): Promise<string[]> {
  const base = join(dataRoot, 'containers');
  const ids = new Set<string>();
  const re = new RegExp(`^${escapeRe(base)}/([^/]+)/mounts/secrets$`);
  for (const m of listMounts()) {
    const id = re.exec(m.mountPoint)?.[1];
    if (id) ids.add(id);
  }
  const cleaned: string[] = [];
  for (const id of ids) {
    if (keep(id)) continue;
    await unmountSecrets(join(base, id));
    cleaned.push(id);
  }
  // empty mount points of crashed runs
  for (const id of (await readdir(base).catch(ignoreErrno('ENOENT'))) ?? []) {
    if (!keep(id) && !ids.has(id)) await unmountSecrets(join(base, id)).catch(ignoreErrno('ENOTDIR'));
  }
  return cleaned;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
