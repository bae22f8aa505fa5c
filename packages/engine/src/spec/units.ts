/**
 * Parsing of the human forms a service spec uses: sizes ("64m", "1g", "512k", 1048576), cpus
 * ("0.5") and ulimits ("nofile=1024:2048"). Each parser names the field in its error.
 */
import { InvalidSpecError } from '../errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Bytes of a size like `64m`, `1.5g`, `512k` or a plain number (binary units, as Docker). */
export function parseSize(value: string | number, field: string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new InvalidSpecError(field, `${value} is not a non-negative whole number of bytes`);
    }
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) {
    throw new InvalidSpecError(field, `${JSON.stringify(value)} is not a size (examples: 64m, 1g, 512k, 1048576)`);
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new InvalidSpecError(field, `${JSON.stringify(value)} is too large`);
  return bytes;
}

/** Memory swap: -1 (or "-1") means unlimited, else a size. */
export function parseSwap(value: string | number, field: string): number {
  if (value === -1 || value === '-1') return -1;
  return parseSize(value, field);
}

/** A CPU count like `0.5` or `2` into a CFS quota for the 100 ms period. */
export function parseCpus(value: string | number, field = 'cpus'): { period: number; quota: number } {
  const n = typeof value === 'number' ? value : /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n <= 0) {
    throw new InvalidSpecError(field, `${JSON.stringify(value)} is not a positive number of CPUs (e.g. 0.5)`);
  }
  const period = 100_000;
  const quota = Math.round(n * period);
  if (quota < 1000) throw new InvalidSpecError(field, `${n} CPUs is below the minimum of 0.01`);
  return { period, quota };
}

/** The kernel's resource limits, by the name a ulimit uses. */
export const RLIMIT_NAMES = [
  'as',
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
] as const;

export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/** A ulimit given as `name=soft[:hard]` or as an object; soft must not exceed hard. */
export function parseUlimit(value: string | Ulimit, field = 'ulimits'): { type: string; soft: number; hard: number } {
  let name: string;
  let soft: number;
  let hard: number;
  if (typeof value === 'string') {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value.trim());
    if (!m?.[1] || m[2] === undefined) {
      throw new InvalidSpecError(field, `${JSON.stringify(value)} is not name=soft[:hard] (e.g. nofile=1024:2048)`);
    }
    name = m[1];
    soft = Number(m[2]);
    hard = m[3] === undefined ? soft : Number(m[3]);
  } else {
    ({ name, soft, hard } = value);
  }
  if (!(RLIMIT_NAMES as readonly string[]).includes(name)) {
    throw new InvalidSpecError(field, `unknown ulimit ${JSON.stringify(name)} (known: ${RLIMIT_NAMES.join(', ')})`);
  }
  // -1 is unlimited (RLIM_INFINITY) as in Docker; runc takes it as the maximum uint64
  const norm = (n: number): number => (n === -1 ? Number.MAX_SAFE_INTEGER : n);
  if (!Number.isSafeInteger(soft) || !Number.isSafeInteger(hard) || soft < -1 || hard < -1) {
    throw new InvalidSpecError(field, `${name}: limits must be whole numbers >= -1`);
  }
  if (norm(soft) > norm(hard))
    throw new InvalidSpecError(field, `${name}: soft limit ${soft} exceeds hard limit ${hard}`);
  return { type: `RLIMIT_${name.toUpperCase()}`, soft: norm(soft), hard: norm(hard) };
}
