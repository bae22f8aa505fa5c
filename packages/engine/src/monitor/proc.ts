/**
 * Process identity from /proc: a pid alone can be reused, so owners (a shim, the engine process
 * holding a lease, a collector) are named by pid *and* start time (field 22 of /proc/PID/stat).
 */
import { readFileSync } from 'node:fs';
import { errnoCode } from '@shoal/common';

/** A process as pid plus start time (clock ticks since boot). */
export interface ProcessIdentity {
  pid: number;
  start: number;
}

/** Fields 3.. of /proc/<pid>/stat (after the command name), or undefined if the process is gone. */
function statFields(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Field 22 of /proc/<pid>/stat (start time in ticks), or undefined if the process is gone. */
export function processStartTime(pid: number): number | undefined {
  const rest = statFields(pid);
  // rest[0] is field 3 (state); field 22 is rest[19]
  const v = Number(rest?.[19]);
  return rest && Number.isFinite(v) ? v : undefined;
}

/** True while the process with this pid and start time lives (not a zombie, not a reused pid). */
export function processAlive(pid: number | undefined, start: number | undefined): boolean {
  if (!pid) return false;
  const rest = statFields(pid);
  if (!rest || rest[0] === 'Z') return false;
  return !start || Number(rest[19]) === start;
}

let self: ProcessIdentity | undefined;

/** This process. */
export function selfIdentity(): ProcessIdentity {
  self ??= { pid: process.pid, start: processStartTime(process.pid) ?? 0 };
  return self;
}

/** `pid-start`, for file names that say which process made them. */
export function identityTag(p: ProcessIdentity = selfIdentity()): string {
  return `${p.pid}-${p.start}`;
}

/** Parses `pid-start` (see identityTag); undefined when malformed. */
export function parseIdentityTag(tag: string): ProcessIdentity | undefined {
  const m = /^(\d+)-(\d+)$/.exec(tag);
  return m ? { pid: Number(m[1]), start: Number(m[2]) } : undefined;
}
