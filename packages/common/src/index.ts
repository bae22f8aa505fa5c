/**
 * @module @shoal/common
 * Shared ground for every Shoal package: structured logging, the typed error base, ids,
 * abort-aware timers, backoff, a clock seam and a child-process helper.
 *
 * ```ts
 * import { createLogger, ShoalError, sleep } from '@shoal/common';
 * const log = createLogger('worker');
 * await sleep(100);
 * log.info({ took: 100 }, 'slept');
 * ```
 */
export {
  ShoalError,
  InvalidArgumentError,
  AbortedError,
  hasCode,
  errorMessage,
  errnoCode,
  errorKind,
  ignoreErrno,
  ERROR_KINDS,
  type ErrorKind,
  type ShoalErrorOptions,
} from './errors.js';
export { createLogger, silentLogger, type Logger } from './logger.js';
export { randomId64, newObjectId, isValidName } from './ids.js';
export { throwIfAborted, sleep, waitFor, ignoreAborted } from './abort.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { systemClock, type Clock } from './clock.js';
export { run, CommandFailedError, type RunOptions, type RunResult } from './exec.js';
export { fsyncDir, fsyncDirSync } from './fs.js';
export { isProcessAlive } from './process.js';
