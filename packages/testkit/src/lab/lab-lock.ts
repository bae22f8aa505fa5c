/**
 * A directory lock (mkdir is atomic) holding the owner's pid. A lock whose owner died (kill -9)
 * is broken by the next taker, so a crashed `up` never blocks `down`.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode, sleep, isProcessAlive } from '@shoal/common';
import { LabLockedError } from '../errors.js';

async function holder(path: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(path, 'pid'), 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    // no pid written yet, or the lock was just released
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Takes the lock at `path` (waiting up to `timeoutMs`), runs `fn`, and releases it. */
export async function withLock<T>(path: string, what: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  let pidlessSince: number | undefined;
  for (;;) {
    try {
      await mkdir(path);
      await writeFile(join(path, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      const pid = await holder(path);
      if (pid === undefined) {
        // Just made by another taker that has not written its pid yet, or left by a crash
        // between mkdir and write: give the first case 2 s, then break it.
        pidlessSince ??= Date.now();
        if (Date.now() - pidlessSince > 2000) {
          await breakLock(path);
          pidlessSince = undefined;
        } else {
          await sleep(100);
        }
      } else if (!isProcessAlive(pid)) {
        await breakLock(path);
      } else if (Date.now() > deadline) {
        throw new LabLockedError(what, pid);
      } else {
        pidlessSince = undefined;
        await sleep(100);
      }
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { recursive: true, force: true });
  }
}

async function breakLock(path: string): Promise<void> {
  const stale = `${path}.stale-${process.pid}-${Date.now()}`;
  try {
    await rename(path, stale);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return; // another taker broke it first
    throw err;
  }
  await rm(stale, { recursive: true, force: true });
}
