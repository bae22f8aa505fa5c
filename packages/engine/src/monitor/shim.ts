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
import { errnoCode } from '@shoal/common';
import { MonitorError, RuncFailedError } from '../errors.js';
import { processAlive, processStartTime } from './proc.js';

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
  /** The shim process, known at once: record it before `go()` so that recovery can find it. */
  shimPid: number;
  shimStart: number;
  go(): void;
  abort(): void;
  /** Resolves once runc has created (and, in `run` mode, started) the container. */
  ready: Promise<ShimStarted>;
}

/**
 * `ready` is awaited by the caller (or abandoned after `abort()`); this only keeps Node from
 * reporting its rejection as unhandled before the caller gets to it. The error is not lost.
 */
function handledLater<T>(p: Promise<T>): Promise<T> {
  p.catch((err: unknown) => err);
  return p;
}

/**
 * Starts the shim in its own session; it prepares its pipes and log file, then waits for `go()`
 * before running runc, so that its start-up overlaps with the rootfs mount. If this process dies
 * before `go()`, the shim reads EOF and exits without running runc.
 */
export function spawnShim(o: ShimStartOptions): ShimHandle {
  if (!existsSync(o.shimPath)) throw new MonitorError(`${o.shimPath} not found: run scripts/build-native.sh`);
  const args = ['-i', o.id, '-r', o.runcPath, '-R', o.runcRoot, '-b', o.bundle, '-d', o.dir, '-m', o.mode];
  args.push('-s', String(o.logMaxBytes), '-n', String(o.logMaxFiles), '-S', '3', '-W');
  const child = spawn(o.shimPath, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'], detached: true });
  child.unref();
  const shimPid = child.pid;
  if (shimPid === undefined) {
    // spawn failed synchronously (EAGAIN, ENOMEM...): 'error' follows on the next tick
    child.on('error', (err) => err);
    throw new MonitorError(`cannot run ${o.shimPath}`);
  }
  const shimStart = processStartTime(shimPid) ?? 0;
  const sync = child.stdio[3] as Duplex;
  let aborted = false;
  let syncError: Error | undefined;
  const ready = new Promise<ShimStarted>((resolve, reject) => {
    const chunks: Buffer[] = [];
    sync.on('data', (b: Buffer) => chunks.push(b));
    // EPIPE/ECONNRESET when the shim died; the close below reports what happened
    sync.on('error', (e) => (syncError = e));
    child.on('error', (e) => reject(new MonitorError(`cannot run ${o.shimPath}: ${String(e)}`, { cause: e })));
    sync.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const nl = text.indexOf('\n');
      const head = (nl < 0 ? text : text.slice(0, nl)).split(' ');
      if (head[0] === 'ok' && head.length >= 3) {
        resolve({ pid: Number(head[1]), shimPid, shimStart });
      } else if (head[0] === 'err') {
        reject(new RuncFailedError(o.mode, o.id, Number(head[1]), nl < 0 ? '' : text.slice(nl + 1)));
      } else {
        const why = syncError ? `: ${syncError.message}` : '';
        reject(
          new MonitorError(aborted ? 'aborted' : `no start-up report from the shim for ${o.id.slice(0, 12)}${why}`),
        );
      }
    });
  });
  return {
    shimPid,
    shimStart,
    go: () => void sync.write('g'),
    abort: () => {
      aborted = true;
      sync.destroy();
    },
    ready: handledLater(ready),
  };
}

export { processStartTime } from './proc.js';

/** True while the shim with this pid and start time lives (not a zombie, not a reused pid). */
export function shimAlive(pid: number | undefined, start: number | undefined): boolean {
  return processAlive(pid, start);
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
  let text: string;
  try {
    text = await readFile(`${dir}/exit.json`, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as ExitRecord; // written whole (tmp + rename) by the shim
}

/** Resident memory of a process in kB (VmRSS), or undefined when it is gone. */
export function residentKb(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined;
    throw err;
  }
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m?.[1] ? Number(m[1]) : undefined;
}
