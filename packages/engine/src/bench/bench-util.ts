/** Helpers shared by the engine benchmark's parts: timing, medians, child processes, memory. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { errnoCode } from '@shoal/common';

export const CONC = Number(process.env['BENCH_CONC'] ?? 4);
export const RUNC = '/usr/sbin/runc';
export const CMD = ['sleep', '3600'];
/** Containers started at once from one process in the parallel figure, and how many times. */
export const PAR = Number(process.env['BENCH_PAR'] ?? 20);
export const PAR_ROUNDS = Number(process.env['BENCH_PAR_ROUNDS'] ?? 3);

export const say = (s: string): void => void process.stdout.write(`${s}\n`);
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
export const r1 = (x: number): number => Math.round(x * 10) / 10;
export const r2 = (x: number): number => Math.round(x * 100) / 100;

export interface Series {
  serial: number[];
  conc: number[];
  concWallMs: number;
  /** Wall time of PAR creates+starts issued at once, per round. */
  parWallMs: number[];
}

/** Runs `fn(i)` for i < n, `conc` at a time, timing each call. */
export async function timed(
  n: number,
  conc: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ lat: number[]; wall: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        await fn(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  return { lat, wall: performance.now() - t0 };
}

export function exec(
  cmd: string,
  args: string[],
  opts: { stdio?: ('ignore' | 'pipe' | number)[]; env?: NodeJS.ProcessEnv } = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: opts.stdio ?? ['ignore', 'ignore', 'pipe'], env: opts.env });
    let err = '';
    c.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    c.on('error', reject);
    c.on('close', (code) =>
      code === 0 ? resolve(0) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`)),
    );
  });
}

export function pssKb(pid: number): number | undefined {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined; // gone
    throw err;
  }
}
