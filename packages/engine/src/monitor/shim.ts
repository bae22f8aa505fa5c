/**
 * Starting and watching the per-container monitor, `shoal-shim` (native/shim.c). The shim
 * detaches from the engine, runs `runc run -d` (or `runc create`) with the container's stdout
 * and stderr on pipes it owns, reports the init pid on a pipe, then logs and waits for the init
 * on its own. The engine only reads files the shim writes: `exit.json` and `container.log*`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { MonitorError, RuncFailedError } from '../errors.js';

/** Where build-native.sh puts the shim, relative to this module (dist/monitor or src/monitor). */
export function defaultShimPath(): string {
  const env = process.env['SHOAL_SHIM'];
  if (env) return env;
  return fileURLToPath(new URL('../../native/bin/shoal-shim', import.meta.url));
}

export interface ShimStartOptions {
  shimPath: string;
  runcPath: string;
  runcRoot: string;
  id: string;
  bundle: string;
  /** The container's state dir: the shim writes `pid`, `exit.json` and the log files here. */
  dir: string;
  /** `run`: create and start in one runc call; `create`: leave the init waiting for `runc start`. */
  mode: 'run' | 'create';
  logMaxBytes: number;
  logMaxFiles: number;
}

export interface ShimStarted {
  /** Host pid of the container's init. */
  pid: number;
  /** Pid of the shim that monitors it. */
  shimPid: number;
  /** Start time of the shim (clock ticks since boot) to recognise it after a pid is reused. */
  shimStart: number;
}

/** A shim started ahead of its bundle: `go()` once the bundle is ready, `abort()` to give up. */
export interface ShimHandle {
  go(): void;
  abort(): void;
  /** Resolves once runc has created (and, in `run` mode, started) the container. */
  ready: Promise<ShimStarted>;
}

/**
 * Starts the shim in its own session; it prepares its pipes and log file, then waits for `go()`
 * before running runc, so that its start-up overlaps with the rootfs mount.
 */
export function spawnShim(o: ShimStartOptions): ShimHandle {
  if (!existsSync(o.shimPath)) {
    const err = new MonitorError(`${o.shimPath} not found: run scripts/build-native.sh`);
    const ready = Promise.reject(err);
    ready.catch(() => undefined);
    return { go: () => undefined, abort: () => undefined, ready };
  }
  const args = ['-i', o.id, '-r', o.runcPath, '-R', o.runcRoot, '-b', o.bundle, '-d', o.dir, '-m', o.mode];
  args.push('-s', String(o.logMaxBytes), '-n', String(o.logMaxFiles), '-S', '3', '-W');
  const child = spawn(o.shimPath, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'], detached: true });
  child.unref();
  const sync = child.stdio[3] as Duplex;
  let aborted = false;
  const ready = new Promise<ShimStarted>((resolve, reject) => {
    const chunks: Buffer[] = [];
    sync.on('data', (b: Buffer) => chunks.push(b));
    sync.on('error', () => undefined);
    child.on('error', (e) => reject(new MonitorError(`cannot run ${o.shimPath}: ${String(e)}`, { cause: e })));
    sync.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const nl = text.indexOf('\n');
      const head = (nl < 0 ? text : text.slice(0, nl)).split(' ');
      if (head[0] === 'ok' && head.length >= 3) {
        const shimPid = Number(head[2]);
        resolve({ pid: Number(head[1]), shimPid, shimStart: processStartTime(shimPid) ?? 0 });
      } else if (head[0] === 'err') {
        reject(new RuncFailedError(o.mode, o.id, Number(head[1]), nl < 0 ? '' : text.slice(nl + 1)));
      } else {
        reject(new MonitorError(aborted ? 'aborted' : `no start-up report from the shim for ${o.id.slice(0, 12)}`));
      }
    });
  });
  ready.catch(() => undefined);
  return {
    go: () => void sync.write('g'),
    abort: () => {
      aborted = true;
      sync.destroy();
    },
    ready,
  };
}

/** Runs the shim and resolves once runc has created (and, in `run` mode, started) the container. */
export function startShim(o: ShimStartOptions): Promise<ShimStarted> {
  const h = spawnShim(o);
  h.go();
  return h.ready;
}

/** Field 22 of /proc/<pid>/stat (start time in ticks), or undefined if the process is gone. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); field 22 is rest[19]
    const v = Number(rest[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** True while the shim with this pid and start time lives (not a zombie, not a reused pid). */
export function shimAlive(pid: number | undefined, start: number | undefined): boolean {
  if (!pid) return false;
  const now = processStartTime(pid);
  if (now === undefined) return false;
  if (start && now !== start) return false;
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** What the shim records when the init exits. */
export interface ExitRecord {
  exitCode: number;
  /** The signal that killed the init, 0 if it exited on its own. */
  signal: number;
  exitedAt: string;
}

/** Reads `<dir>/exit.json`, or undefined while the container runs. */
export async function readExitFile(dir: string): Promise<ExitRecord | undefined> {
  try {
    return JSON.parse(await readFile(`${dir}/exit.json`, 'utf8')) as ExitRecord;
  } catch {
    return undefined;
  }
}

/** Resident memory of a process in kB (VmRSS), or undefined when it is gone. */
export function residentKb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
