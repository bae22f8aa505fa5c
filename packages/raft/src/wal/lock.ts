/**
 * A lock file so that two processes (or two opens in one process) never write the same raft data
 * directory. The file holds the owner's pid; a lock left by a dead process (kill -9) is taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, isProcessAlive } from '@shoal/common';
import { StorageLockedError } from '../errors.js';

const heldInProcess = new Set<string>();

export class DirLock {
  private released = false;
  private constructor(readonly path: string) {}

  /** Takes the lock of `dir` (file `dir/LOCK`); throws StorageLockedError when it is held. */
  static acquire(dir: string): DirLock {
    const path = join(dir, 'LOCK');
    if (heldInProcess.has(path)) throw new StorageLockedError(dir, process.pid);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        try {
          writeSync(fd, `${process.pid}\n`);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        heldInProcess.add(path);
        return new DirLock(path);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
        const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid)) {
          throw new StorageLockedError(dir, pid);
        }
        unlinkSync(path); // stale: its owner is gone
      }
    }
    throw new StorageLockedError(dir, -1);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    heldInProcess.delete(this.path);
    try {
      unlinkSync(this.path);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err; // already gone is fine
    }
  }
}
