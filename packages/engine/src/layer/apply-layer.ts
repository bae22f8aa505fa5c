/**
 * Unpacks one layer tar into an empty directory in overlayfs form:
 * - `.wh.<name>` becomes a 0/0 character device `<name>` (overlay whiteout);
 * - `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory;
 * - regular files, directories, symlinks, hardlinks, char/block devices and fifos keep numeric
 *   uid/gid, mode (setuid/setgid/sticky included), mtime and PAX `SCHILY.xattr.*` attributes.
 * Names that are absolute, contain `..`, or pass through a symlink of the layer are refused with
 * LayerInvalidError (the caller removes the half-made directory). Needs root (chown, mknod,
 * trusted.* xattrs).
 *
 * The decompressed bytes are hashed on the way; the result carries the diffID to verify.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ignoreErrno } from '@shoal/common';
import { LayerInvalidError } from '../errors.js';
import { lsetxattr, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../libc.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

export interface ApplyResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: string;
  /** Uncompressed tar size in bytes. */
  tarSize: number;
  entries: number;
}

/**
 * Cleans a tar entry name into a relative POSIX path; throws on absolute names or `..`.
 * Returns '' for the root itself.
 */
export function cleanEntryName(name: string, layer: string): string {
  if (name.startsWith('/')) throw new LayerInvalidError(layer, `absolute path ${JSON.stringify(name)}`);
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new LayerInvalidError(layer, `path with .. ${JSON.stringify(name)}`);
    parts.push(p);
  }
  return parts.join('/');
}

/** Extracts the uncompressed tar `input` into `dest` (which must exist and be empty). */
export async function applyLayer(input: Readable, dest: string, layer: string): Promise<ApplyResult> {
  const hash = createHash('sha256');
  let tarSize = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      tarSize += chunk.length;
      cb(null, chunk);
    },
  });
  const extract = tar.extract();
  const symlinks = new Set<string>();
  const dirTimes: { path: string; mtime: Date }[] = [];
  let entries = 0;

  const throughSymlink = (rel: string): boolean => {
    let i = rel.indexOf('/');
    while (i >= 0) {
      if (symlinks.has(rel.slice(0, i))) return true;
      i = rel.indexOf('/', i + 1);
    }
    return false;
  };

  const ensureParent = async (rel: string): Promise<void> => {
    const parent = posix.dirname(rel);
    if (parent !== '.') await mkdir(join(dest, parent), { recursive: true, mode: 0o755 });
  };

  /** Removes whatever is at `rel` unless both it and the new entry are directories. */
  const clear = async (rel: string, newIsDir: boolean): Promise<void> => {
    const st = await lstat(join(dest, rel)).catch(ignoreErrno('ENOENT'));
    if (!st) return;
    if (st.isDirectory() && newIsDir) return;
    await rm(join(dest, rel), { recursive: true, force: true });
    symlinks.delete(rel);
  };

  const consume = async (): Promise<void> => {
    for await (const entry of extract) {
      entries++;
      const h = entry.header;
      const pax = (h.pax ?? {}) as Record<string, string>;
      const rel = cleanEntryName(h.name, layer);
      if (rel === '') {
        // the root directory itself: apply its metadata to dest
        entry.resume();
        if (h.type === 'directory') await setMeta(dest, h, pax, false);
        continue;
      }
      if (throughSymlink(rel)) throw new LayerInvalidError(layer, `${JSON.stringify(h.name)} goes through a symlink`);
      const base = posix.basename(rel);
      const parentRel = posix.dirname(rel);
      const target = join(dest, rel);

      if (base === OPAQUE_MARKER) {
        entry.resume();
        const dir = parentRel === '.' ? dest : join(dest, parentRel);
        await mkdir(dir, { recursive: true, mode: 0o755 });
        lsetxattr(dir, OPAQUE_XATTR, Buffer.from('y'));
        continue;
      }
      if (base.startsWith(WHITEOUT_PREFIX)) {
        entry.resume();
        const name = base.slice(WHITEOUT_PREFIX.length);
        if (name === '' || name === '.' || name === '..')
          throw new LayerInvalidError(layer, `bad whiteout ${JSON.stringify(h.name)}`);
        const wrel = parentRel === '.' ? name : `${parentRel}/${name}`;
        await ensureParent(wrel);
        await clear(wrel, false);
        mknod(join(dest, wrel), S_IFCHR, 0, 0, 0);
        continue;
      }

      await ensureParent(rel);
      switch (h.type) {
        case 'directory': {
          entry.resume();
          await clear(rel, true);
          await mkdir(target, { recursive: true, mode: 0o755 });
          await setMeta(target, h, pax, false);
          dirTimes.push({ path: target, mtime: mtimeOf(h, pax) });
          break;
        }
        case 'file':
        case 'contiguous-file': {
          await clear(rel, false);
          await pipeline(entry, createWriteStream(target, { flags: 'wx', mode: 0o600 }));
          await setMeta(target, h, pax, false);
          break;
        }
        case 'symlink': {
          entry.resume();
          await clear(rel, false);
          await symlink(h.linkname ?? '', target);
          symlinks.add(rel);
          await setMeta(target, h, pax, true);
          break;
        }
        case 'link': {
          entry.resume();
          const src = cleanEntryName(h.linkname ?? '', layer);
          if (src === '' || throughSymlink(src))
            throw new LayerInvalidError(layer, `bad hardlink target ${JSON.stringify(h.linkname)}`);
          const srcStat = await lstat(join(dest, src)).catch(ignoreErrno('ENOENT', 'ENOTDIR'));
          if (!srcStat)
            throw new LayerInvalidError(
              layer,
              `hardlink ${JSON.stringify(h.name)} to missing ${JSON.stringify(h.linkname)}`,
            );
          if (srcStat.isDirectory())
            throw new LayerInvalidError(layer, `hardlink to a directory ${JSON.stringify(h.linkname)}`);
          await clear(rel, false);
          await link(join(dest, src), target);
          if (symlinks.has(src)) symlinks.add(rel);
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          entry.resume();
          await clear(rel, false);
          const type = h.type === 'fifo' ? S_IFIFO : h.type === 'block-device' ? S_IFBLK : S_IFCHR;
          mknod(target, type, h.mode ?? 0o644, h.devmajor ?? 0, h.devminor ?? 0);
          await setMeta(target, h, pax, false);
          break;
        }
        default:
          entry.resume();
          throw new LayerInvalidError(
            layer,
            `unsupported tar entry type ${String(h.type)} for ${JSON.stringify(h.name)}`,
          );
      }
    }
  };

  const feeding = pipeline(input, hasher, extract);
  const consuming = consume();
  try {
    await Promise.all([feeding, consuming]);
  } catch (err) {
    extract.destroy();
    input.destroy();
    // Let the other side settle before the caller removes the directory.
    await Promise.allSettled([feeding, consuming]);
    if (err instanceof LayerInvalidError) throw err;
    throw new LayerInvalidError(layer, `cannot extract: ${(err as Error).message}`, { cause: err });
  }
  // Directory mtimes last: creating children changed them.
  for (const d of dirTimes.reverse()) await utimes(d.path, d.mtime, d.mtime);
  return { diffId: `sha256:${hash.digest('hex')}`, tarSize, entries };
}

function mtimeOf(h: tar.Header, pax: Record<string, string>): Date {
  const p = pax['mtime'];
  if (p !== undefined && /^\d+(\.\d+)?$/.test(p)) return new Date(Number(p) * 1000);
  return h.mtime ?? new Date(0);
}

async function setMeta(path: string, h: tar.Header, pax: Record<string, string>, isSymlink: boolean): Promise<void> {
  const uid = numericId(pax['uid'], h.uid);
  const gid = numericId(pax['gid'], h.gid);
  await lchown(path, uid, gid);
  if (!isSymlink) await chmod(path, (h.mode ?? 0o644) & 0o7777); // after chown, which clears setuid
  for (const [k, v] of Object.entries(pax)) {
    if (k.startsWith('SCHILY.xattr.')) lsetxattr(path, k.slice('SCHILY.xattr.'.length), Buffer.from(v, 'utf8'));
  }
  const mtime = mtimeOf(h, pax);
  await lutimes(path, mtime, mtime);
}

function numericId(paxValue: string | undefined, header: number | undefined): number {
  if (paxValue !== undefined && /^\d+$/.test(paxValue)) return Number(paxValue);
  return header ?? 0;
}
