import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsyncDir, ignoreErrno } from '@shoal/common';

/**
 * Writes `data` to `path` so that a crash leaves either the old or the new file, never a torn
 * one: a temporary file in the same directory created with `mode` (so the bytes are never
 * readable by others, whatever the umask), fsync, rename over `path`, fsync of the directory.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.chmod(mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** Creates `dir` (and parents) and makes it `mode` (0700 for key directories). */
export async function ensurePrivateDir(dir: string, mode = 0o700): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
  await chmod(dir, mode);
}

/** Removes a file, ignoring only its absence. */
export async function removeFile(path: string): Promise<void> {
  await rm(path).catch(ignoreErrno('ENOENT'));
}
