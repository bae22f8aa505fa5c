/**
 * A thin wrapper over the runc binary: every call passes the engine's private `--root` (on
 * tmpfs), runs with umask 022 semantics inherited from the engine, and turns a non-zero exit into
 * RuncFailedError carrying runc's own message.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { errnoCode } from '@shoal/common';
import { RuncFailedError } from '../errors.js';

/** `runc state` output. */
export interface RuncState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
  rootfs: string;
  created: string;
}

export interface RuncExecOptions {
  /** Kill the process (SIGKILL to the exec'd process, by its pid) after this long. */
  timeoutMs?: number;
  /** Keep at most this many bytes of combined output (default 64 KiB). */
  maxOutput?: number;
  /** Inherit the caller's stdio instead of capturing (for an interactive `container exec`). */
  inheritStdio?: boolean;
  env?: string[];
  cwd?: string;
  user?: string;
  pidFile?: string;
  signal?: AbortSignal;
}

export interface RuncExecResult {
  exitCode: number;
  output: string;
  timedOut: boolean;
}

interface Captured {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class Runc {
  constructor(
    readonly binary: string,
    readonly root: string,
  ) {}

  /** Runs runc with the root flag; resolves with its exit status and output. */
  private call(args: string[]): Promise<Captured> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, ['--root', this.root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
      );
    });
  }

  private async checked(op: string, id: string, args: string[]): Promise<string> {
    const r = await this.call(args);
    if (r.code !== 0) throw new RuncFailedError(op, id, r.code, r.stderr || r.stdout);
    return r.stdout;
  }

  /** The container's runc state, or undefined when runc does not know it. */
  async state(id: string): Promise<RuncState | undefined> {
    const r = await this.call(['state', id]);
    if (r.code !== 0) {
      if (/does not exist|not found/i.test(r.stderr)) return undefined;
      throw new RuncFailedError('state', id, r.code, r.stderr);
    }
    return JSON.parse(r.stdout) as RuncState;
  }

  /** Releases a created container's init (the exec FIFO). */
  async start(id: string): Promise<void> {
    await this.checked('start', id, ['start', id]);
  }

  /** Sends a signal to the init (or to every process with `all`). Tolerates an exited container. */
  async kill(id: string, signal: string, all = false): Promise<void> {
    const r = await this.call(['kill', ...(all ? ['--all'] : []), id, signal]);
    if (r.code === 0) return;
    if (/not running|process already finished|container not running|no such process/i.test(r.stderr)) return;
    throw new RuncFailedError('kill', id, r.code, r.stderr);
  }

  /** Deletes the container's runc state and cgroup; tolerates an unknown container. */
  async delete(id: string, force = false): Promise<void> {
    const r = await this.call(['delete', ...(force ? ['--force'] : []), id]);
    if (r.code === 0) return;
    if (/does not exist|not found/i.test(r.stderr)) return;
    throw new RuncFailedError('delete', id, r.code, r.stderr);
  }

  /** Ids runc knows under this root. */
  async list(): Promise<RuncState[]> {
    const out = await this.checked('list', '-', ['list', '--format', 'json']);
    const parsed = JSON.parse(out.trim() || 'null') as RuncState[] | null;
    return parsed ?? [];
  }

  /** Runs a process inside the container (same namespaces, cgroup, confinement as its init). */
  exec(id: string, argv: string[], opts: RuncExecOptions = {}): Promise<RuncExecResult> {
    const args = ['--root', this.root, 'exec'];
    if (opts.pidFile) args.push('--pid-file', opts.pidFile);
    for (const e of opts.env ?? []) args.push('--env', e);
    if (opts.cwd) args.push('--cwd', opts.cwd);
    if (opts.user) args.push('--user', opts.user);
    args.push(id, ...argv);
    const max = opts.maxOutput ?? 65536;
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, args, {
        stdio: opts.inheritStdio ? 'inherit' : ['ignore', 'pipe', 'pipe'],
      });
      const chunks: Buffer[] = [];
      let size = 0;
      const take = (b: Buffer): void => {
        if (size >= max) return;
        chunks.push(b.subarray(0, max - size));
        size += Math.min(b.length, max - size);
      };
      child.stdout?.on('data', take);
      child.stderr?.on('data', take);
      let timedOut = false;
      const killIt = (): void => {
        timedOut = true;
        child.kill('SIGKILL');
        if (opts.pidFile) killByPidFile(opts.pidFile).catch((err: unknown) => child.emit('error', err));
      };
      const timer = opts.timeoutMs ? setTimeout(killIt, opts.timeoutMs) : undefined;
      const onAbort = (): void => killIt();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new RuncFailedError('exec', id, null, String(e), { cause: e }));
      });
      child.on('close', (code, sig) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        const output = Buffer.concat(chunks).toString();
        resolve({ exitCode: code ?? 128 + (sig ? 9 : 0), output, timedOut });
      });
    });
  }
}

async function killByPidFile(path: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return; // runc has not written it: nothing started yet
    throw err;
  }
  const pid = Number(text.trim());
  if (!(pid > 1)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err; // already gone
  }
}
