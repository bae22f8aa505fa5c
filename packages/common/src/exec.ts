import { spawn, type SpawnOptions } from 'node:child_process';
import { errnoCode, ShoalError } from './errors.js';

/** Thrown when a child process fails to start or exits non-zero. */
export class CommandFailedError extends ShoalError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    const detail = stderr.trim().split('\n').slice(-3).join('; ');
    super('COMMAND_FAILED', `${command} failed (exit ${exitCode ?? 'signal'})${detail ? `: ${detail}` : ''}`, options);
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOptions extends SpawnOptions {
  /** Bytes written to the child's stdin. */
  input?: string | Uint8Array;
  /** When false, a non-zero exit resolves instead of throwing. Default true. */
  check?: boolean;
}

/** Runs a program (no shell) and collects its output. */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { input, check = true, ...spawnOpts } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...spawnOpts, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const command = [file, ...args].join(' ');
    child.on('error', (e) => reject(new CommandFailedError(command, null, String(e), { cause: e })));
    child.on('close', (code) => {
      const result = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? -1 };
      if (check && code !== 0) reject(new CommandFailedError(command, code, result.stderr));
      else resolve(result);
    });
    child.stdin?.on('error', (e) => {
      // The child exited or closed its stdin before reading all input: its exit status (the
      // 'close' above) tells what happened. Any other write failure fails the run.
      const code = errnoCode(e);
      if (code === 'EPIPE' || code === 'ECONNRESET') return;
      reject(new CommandFailedError(command, null, `writing stdin: ${String(e)}`, { cause: e }));
    });
    child.stdin?.end(input);
  });
}
