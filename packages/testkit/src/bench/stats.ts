/** Small helpers of the cluster benchmark: medians, rounding and a process's resident memory. */
import { readFileSync } from 'node:fs';
import { errnoCode } from '@shoal/common';

/** The median (mean of the two middle values for an even count); NaN for no values. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** `x` rounded to `d` decimals; null for NaN (JSON has no NaN). */
export function round(x: number, d = 0): number | null {
  return Number.isFinite(x) ? Number(x.toFixed(d)) : null;
}

/** Shoal's figure over Swarm's, 2 decimals (below 1: Shoal's is the smaller one); null if either is missing. */
export function ratio(ours: number | null, theirs: number | null): number | null {
  return ours === null || theirs === null || theirs === 0 ? null : Number((ours / theirs).toFixed(2));
}

function procKb(file: string, field: RegExp): number {
  try {
    const m = field.exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return NaN;
    throw err;
  }
}

/** Resident set size of a process in MB (VmRSS); NaN when it is gone. */
export function rssMb(pid: number): number {
  return procKb(`/proc/${pid}/status`, /^VmRSS:\s+(\d+) kB/m) / 1024;
}

/**
 * Proportional set size in MB (smaps_rollup Pss): resident pages, each shared page divided by
 * the number of processes mapping it (so a runtime binary mapped by five daemons counts a fifth).
 */
export function pssMb(pid: number): number {
  return procKb(`/proc/${pid}/smaps_rollup`, /^Pss:\s+(\d+) kB/m) / 1024;
}
