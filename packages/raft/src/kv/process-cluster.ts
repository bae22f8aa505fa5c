/**
 * Runs KV member processes (dist/kv/main.js) on loopback for the fault test and the benchmark:
 * start, kill -9, restart, find the leader, stop and remove everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameDecoder } from '../codec/frames.js';
import { decodeResponse, encodeRequest } from './protocol.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** `n` distinct free loopback ports (all held open at once while probing). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

export interface ProcessClusterOptions {
  readonly size?: number;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly snapshotEntries?: number;
  /** Snapshot after this many MiB of log (default 64). */
  readonly snapshotMiB?: number;
  /** KV client sessions idle this long (log clock) expire (default: raft:kv's 10 min). */
  readonly sessionTtlMs?: number;
  /** Extra environment for the members (e.g. NODE_OPTIONS). */
  readonly env?: Readonly<Record<string, string>>;
  /** WAL segment size in MiB (default 64). */
  readonly segmentMiB?: number;
  /** Forwarded to the members' SHOAL_LOG_LEVEL (default warn). */
  readonly logLevel?: string;
}

export class KvProcessCluster {
  readonly ids: string[];
  readonly raftAddrs: string[] = [];
  readonly clientAddrs: string[] = [];
  private readonly procs: (ChildProcess | undefined)[] = [];
  /** The READY line each member printed last. */
  readonly readyLines: string[] = [];
  private readonly dirs: string[] = [];
  private root = '';

  constructor(private readonly opts: ProcessClusterOptions = {}) {
    this.ids = Array.from({ length: opts.size ?? 3 }, (_, i) => String(i + 1));
  }

  async start(): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), 'shoal-raft-kv-'));
    const ports = await freePorts(this.ids.length * 2);
    for (let i = 0; i < this.ids.length; i++) {
      this.raftAddrs.push(`127.0.0.1:${ports[2 * i]}`);
      this.clientAddrs.push(`127.0.0.1:${ports[2 * i + 1]}`);
      this.dirs.push(join(this.root, `m${this.ids[i]}`));
    }
    await Promise.all(this.ids.map((_, i) => this.launch(i)));
  }

  /** Starts (or restarts) member i and waits for its READY line. */
  async launch(i: number): Promise<void> {
    const peers = this.ids.map((id, k) => `${id}=${this.raftAddrs[k]}`).join(',');
    const clientPeers = this.ids.map((id, k) => `${id}=${this.clientAddrs[k]}`).join(',');
    const args = [
      MAIN,
      '--id',
      this.ids[i]!,
      '--peers',
      peers,
      '--client-peers',
      clientPeers,
      '--data',
      this.dirs[i]!,
      '--listen',
      this.raftAddrs[i]!,
      '--client-listen',
      this.clientAddrs[i]!,
      '--tick-ms',
      String(this.opts.tickMs ?? 100),
      '--election-ticks',
      String(this.opts.electionTicks ?? 6),
      '--snapshot-entries',
      String(this.opts.snapshotEntries ?? 10_000),
      '--segment-mib',
      String(this.opts.segmentMiB ?? 64),
      '--snapshot-mib',
      String(this.opts.snapshotMiB ?? 64),
      ...(this.opts.sessionTtlMs !== undefined ? ['--session-ttl-ms', String(this.opts.sessionTtlMs)] : []),
    ];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SHOAL_LOG_LEVEL: this.opts.logLevel ?? 'warn', ...this.opts.env },
    });
    this.procs[i] = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer): void => {
        out += d.toString();
        const at = out.indexOf('READY');
        if (at >= 0 && out.indexOf('\n', at) > 0) {
          this.readyLines[i] = out.slice(at, out.indexOf('\n', at));
          child.stdout.off('data', onData);
          child.stdout.resume();
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code, sig) =>
        reject(new Error(`kv member ${this.ids[i]} exited (${code ?? sig}) before READY`)),
      );
    });
  }

  /** Process id of member i (undefined when not running). */
  pid(i: number): number | undefined {
    return this.isRunning(i) ? this.procs[i]!.pid : undefined;
  }

  /** Data directory of member i. */
  dataDir(i: number): string {
    return this.dirs[i]!;
  }

  isRunning(i: number): boolean {
    const p = this.procs[i];
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** kill -9 of member i; resolves once it is gone. */
  async kill(i: number): Promise<void> {
    const p = this.procs[i];
    if (p === undefined || !this.isRunning(i)) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
    this.procs[i] = undefined;
  }

  /** Index of the member that answers reads as leader, or -1. */
  async leader(timeoutMs = 500): Promise<number> {
    const answers = await Promise.all(
      this.clientAddrs.map((a, i) => (this.isRunning(i) ? probe(a, timeoutMs) : Promise.resolve(false))),
    );
    return answers.indexOf(true);
  }

  async stop(): Promise<void> {
    await Promise.all(this.ids.map((_, i) => this.kill(i)));
    if (this.root !== '') await rm(this.root, { recursive: true, force: true });
  }
}

/** True if the member at `addr` answers a get as leader. */
function probe(addr: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const i = addr.lastIndexOf(':');
    const s = connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
    const timer = setTimeout(() => finish(false), timeoutMs);
    const finish = (v: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const dec = new FrameDecoder((b) => finish(decodeResponse(b).status === 'ok'));
    s.on('data', (d: Buffer) => dec.push(d));
    s.on('error', () => finish(false));
    s.on('connect', () =>
      s.write(
        encodeRequest({
          reqId: 1,
          op: 'get',
          clientId: 1,
          seq: 0,
          firstUnacked: 0,
          key: '',
          value: null,
          expected: undefined,
        }),
      ),
    );
  });
}
