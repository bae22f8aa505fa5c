/**
 * Resource limits of the container process: RLIMIT_NOFILE always (Docker's 1048576), plus the
 * spec's ulimits. Raising a hard limit above the engine's own needs CAP_SYS_RESOURCE, which an
 * engine inside a container may lack; then such a ulimit is refused here, naming it, instead of
 * failing later inside runc.
 */
import { readFileSync } from 'node:fs';
import { errnoCode } from '@shoal/common';
import { InvalidSpecError } from '../errors.js';
import { engineCapabilities } from './capabilities.js';
import { DEFAULT_NOFILE } from './defaults.js';
import type { OciRlimit } from './oci.js';
import { parseUlimit, type Ulimit } from './units.js';

const LIMITS_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

/** Hard limits from a /proc/<pid>/limits text (`unlimited` as Infinity), by RLIMIT_ name. */
export function parseHardLimits(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    const type = m?.[1] ? LIMITS_NAMES[m[1]] : undefined;
    if (!type || !m?.[3]) continue;
    out.set(type, m[3] === 'unlimited' ? Infinity : Number(m[3]));
  }
  return out;
}

let own: Map<string, number> | undefined;
function engineHardLimits(): Map<string, number> {
  if (own) return own;
  try {
    own = parseHardLimits(readFileSync('/proc/self/limits', 'utf8'));
  } catch (err) {
    // no /proc: nothing known, nothing capped
    if (errnoCode(err) !== 'ENOENT') throw err;
    own = new Map();
  }
  return own;
}

let nofileCache: number | undefined;

/** Docker's 1048576, but never above fs.nr_open or (without CAP_SYS_RESOURCE) the engine's own hard limit. */
export function defaultNofile(): number {
  if (nofileCache !== undefined) return nofileCache;
  let n = DEFAULT_NOFILE;
  try {
    n = Math.min(n, Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()) || n);
  } catch (err) {
    // no /proc/sys (old kernel or not Linux): keep Docker's default
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (!engineCapabilities().has('CAP_SYS_RESOURCE')) n = Math.min(n, engineHardLimits().get('RLIMIT_NOFILE') ?? n);
  nofileCache = n;
  return n;
}

export interface RlimitOptions {
  /** The engine's hard limits; default read from /proc/self/limits. */
  engineHard?: Map<string, number>;
  /** Whether the engine may raise hard limits; default: it has CAP_SYS_RESOURCE. */
  canRaise?: boolean;
}

/** RLIMIT_NOFILE plus the ulimits, last one per type winning. */
export function buildRlimits(ulimits: readonly (string | Ulimit)[], opts: RlimitOptions = {}): OciRlimit[] {
  const byType = new Map<string, OciRlimit>();
  const nofile = defaultNofile();
  byType.set('RLIMIT_NOFILE', { type: 'RLIMIT_NOFILE', soft: nofile, hard: nofile });
  const canRaise = opts.canRaise ?? engineCapabilities().has('CAP_SYS_RESOURCE');
  const hard = opts.engineHard ?? engineHardLimits();
  for (const u of ulimits) {
    const r = parseUlimit(u, 'ulimits');
    const max = hard.get(r.type);
    if (!canRaise && max !== undefined && r.hard > max) {
      throw new InvalidSpecError(
        'ulimits',
        `${r.type.slice(7).toLowerCase()} hard limit ${r.hard} is above the engine's own (${max}) and the engine lacks CAP_SYS_RESOURCE`,
      );
    }
    byType.set(r.type, r);
  }
  return [...byType.values()];
}
