/** Test helpers: a real shoald process on a temp data root, a unique socket and a loopback port. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { ControlClient, SwarmClient } from '@shoal/api';

export const SHOALD = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * The overlay pool tests give `swarm init` (its ingress network comes from it): inside
 * 198.18.0.0/15, never Docker's 10.0.0.0/8 default. The same part lab clusters use
 * (`LAB_OVERLAY_POOL`, 198.19.128.0/18): it stays clear of the gateway bridge subnet labs give
 * shoald (198.19.255.0/24), which a node refuses overlays to overlap.
 */
export const TEST_ADDR_POOL = { DefaultAddrPool: ['198.19.128.0/18'], SubnetSize: 24 };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface LogLine {
  msg?: string;
  level?: number;
  [k: string]: unknown;
}

export class ShoaldProcess {
  readonly proc: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: (() => void)[] = [];

  constructor(args: readonly string[], opts: { cmdPrefix?: readonly string[] } = {}) {
    const prefix = opts.cmdPrefix ?? [];
    const argv = [...prefix, process.execPath, SHOALD, ...args];
    this.proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch (err) {
          if (!(err instanceof SyntaxError)) throw err;
          this.lines.push({ raw: line });
        }
        for (const w of this.waiters.splice(0)) w();
      }
    });
    this.proc.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits for a log line matching `pred` (fails after `ms` or when the process exits). */
  async waitLog(pred: (l: LogLine) => boolean, ms = 30_000): Promise<LogLine> {
    const until = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(
          `shoald exited (${this.proc.exitCode ?? this.proc.signalCode}) before the log line; stderr:\n${this.stderr}`,
        );
      }
      if (Date.now() > until) throw new Error(`no such log line within ${ms} ms; stderr:\n${this.stderr}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  ready(): Promise<LogLine> {
    return this.waitLog((l) => l.msg === 'shoald ready', 60_000);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

export function swarmClient(socket: string): SwarmClient {
  return new SwarmClient(`unix:${socket}`, credentials.createInsecure());
}

export function controlClient(socket: string): ControlClient {
  return new ControlClient(`unix:${socket}`, credentials.createInsecure());
}
