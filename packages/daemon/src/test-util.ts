/** Test helpers: a real shoald process on a temp data root, a unique socket and a loopback port. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { ControlClient, SwarmClient } from '@shoal/api';
import { nodeHostTag } from './node-agent.js';

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

  /**
   * Stops the daemon. A daemon killed with SIGKILL cannot take down what it made node-wide (the
   * node's ingress sandbox: its overlay namespace and the `shoal_ing` leg, from swarm init or join
   * on), so that goes here: the namespaces named after the node IDs it logged.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const exit = await this.exited;
    if (exit.signal === 'SIGKILL') await removeNodeNamespaces(this.nodeIds());
    return exit;
  }

  /** The node IDs this daemon logged (its own; a rejoin may give it another). */
  nodeIds(): string[] {
    const ids = new Set<string>();
    for (const l of this.lines) {
      if (typeof l['nodeId'] === 'string' && l['nodeId'] !== '') ids.add(l['nodeId']);
      // a restarted daemon does not log its ID again; its ingress endpoint is `lb-<node id>`
      const ep = l['endpoint'];
      if (typeof ep === 'string' && ep.startsWith('lb-')) ids.add(ep.slice(3));
    }
    return [...ids];
  }
}

/** Deletes the overlay and task namespaces of these nodes (`shoal-ov-<tag>-*`, `shoal-t-<tag>-*`). */
export async function removeNodeNamespaces(nodeIds: readonly string[]): Promise<void> {
  if (nodeIds.length === 0 || !existsSync('/run/netns')) return;
  const prefixes = nodeIds.flatMap((id) => [`shoal-ov-${nodeHostTag(id)}-`, `shoal-t-${nodeHostTag(id)}-`]);
  for (const ns of readdirSync('/run/netns')) {
    if (!prefixes.some((p) => ns.startsWith(p))) continue;
    try {
      // its links first: a copy of the namespace's mount in another mount namespace would keep it
      // (and the `shoal_ing` leg in this namespace, a veth's other end) alive after `netns del`
      const { stdout } = await promisify(execFile)('ip', ['-n', ns, '-o', 'link', 'show']);
      for (const m of stdout.matchAll(/^\d+: ([^:@\s]+)/gm)) {
        const link = m[1] ?? 'lo';
        if (link !== 'lo') await promisify(execFile)('ip', ['-n', ns, 'link', 'del', link]).catch(ignoreGoneLink);
      }
      await promisify(execFile)('ip', ['netns', 'del', ns]);
    } catch (err) {
      if (existsSync(`/run/netns/${ns}`)) throw err; // else: gone meanwhile, as wanted
    }
  }
}

export function swarmClient(socket: string): SwarmClient {
  return new SwarmClient(`unix:${socket}`, credentials.createInsecure());
}

export function controlClient(socket: string): ControlClient {
  return new ControlClient(`unix:${socket}`, credentials.createInsecure());
}

/** A link deleted with its veth partner a moment before: `Cannot find device`. */
function ignoreGoneLink(err: unknown): void {
  if (
    err instanceof Error &&
    /Cannot find device/.test(`${err.message} ${String((err as { stderr?: unknown }).stderr)}`)
  )
    return;
  throw err;
}
