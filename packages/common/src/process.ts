import { errnoCode } from './errors.js';

/**
 * True if a process with this pid exists (signal 0). A process owned by someone else (EPERM)
 * counts as alive. A pid may have been reused: callers that must know it is *their* process
 * also check /proc/<pid>/cmdline.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
