/** Durable whole-file writes: temp file in the same directory, fsync, rename, fsync the directory. */
import { open, rename, unlink, mkdir } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { fsyncDir, ignoreErrno } from '@shoal/common';
import { ownedSuffix } from './tmp-owner.js';

/** Writes `data` to `path` so that readers see either the old or the new file, never a mix. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${ownedSuffix()}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(ignoreErrno('ENOENT'));
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(ignoreErrno('ENOENT'));
    throw err;
  }
  await fsyncDir(dir);
}
