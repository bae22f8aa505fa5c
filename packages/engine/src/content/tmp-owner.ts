/**
 * Temp names that say who owns them: `o<pid>.<start time>` (start time = field 22 of
 * /proc/<pid>/stat). A process killed with -9 leaves its temp files and directories behind; the
 * next process that opens the store removes those whose owner no longer lives, and never touches
 * the ones of a live process (a reused pid has another start time).
 */
import { randomBytes } from 'node:crypto';
import { processAlive, processStartTime } from '../monitor/proc.js';

/** Start time (clock ticks since boot) of `pid`, or undefined when no such process runs (a zombie owns nothing). */
export function startTimeOf(pid: number): number | undefined {
  const start = processStartTime(pid);
  return start !== undefined && processAlive(pid, start) ? start : undefined;
}

let self: string | undefined;

/** This process's owner tag, `o<pid>.<start>`. */
export function ownerTag(): string {
  self ??= `o${process.pid}.${startTimeOf(process.pid) ?? 0}`;
  return self;
}

/** A unique temp name part owned by this process: `o<pid>.<start>-<random>`. */
export function ownedSuffix(): string {
  return `${ownerTag()}-${randomBytes(4).toString('hex')}`;
}

const TAG = /(?:^|[-.])o(\d+)\.(\d+)-[0-9a-f]+(?:\.tmp)?$/;

/**
 * Whether the temp entry `name` may belong to a live process: true when its owner tag names a
 * running process with the same start time, false when the owner is gone, undefined when the
 * name carries no owner (written by an older version).
 */
export function ownerAlive(name: string): boolean | undefined {
  const m = TAG.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  const start = Number(m[2]);
  if (pid === process.pid) return startTimeOf(pid) === start || start === 0;
  const now = startTimeOf(pid);
  return now !== undefined && now === start;
}
