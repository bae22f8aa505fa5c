/**
 * A 3-member etcd cluster on loopback (Debian `etcd` binary), started and stopped by the raft
 * benchmark as its yardstick. Members get their own temp data dirs and are killed on stop, on
 * process exit and on signals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../kv/process-cluster.js';

const live = new Set<ChildProcess>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = (): void => {
    for (const p of live) p.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export class EtcdCluster {
  readonly clientUrls: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private readonly args: string[][] = [];
  private root = '';
  private binary = 'etcd';

  async start(size = 3, binary = 'etcd'): Promise<void> {
    hookExit();
    this.binary = binary;
    this.root = await mkdtemp(join(tmpdir(), 'shoal-bench-etcd-'));
    const ports = await freePorts(size * 2);
    const names = Array.from({ length: size }, (_, i) => `e${i + 1}`);
    const peerUrls = names.map((_, i) => `http://127.0.0.1:${ports[2 * i + 1]}`);
    const initial = names.map((n, i) => `${n}=${peerUrls[i]}`).join(',');
    for (let i = 0; i < size; i++) {
      const client = `http://127.0.0.1:${ports[2 * i]}`;
      this.clientUrls.push(client);
      this.args.push([
        '--name',
        names[i]!,
        '--data-dir',
        join(this.root, names[i]!),
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peerUrls[i]!,
        '--initial-advertise-peer-urls',
        peerUrls[i]!,
        '--initial-cluster',
        initial,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `shoal-bench-${process.pid}`,
        '--log-level',
        'error',
      ]);
      this.launch(i);
    }
  }

  /** Starts (or restarts, keeping its data dir) member i. */
  launch(i: number): void {
    const args = this.args[i]!.map((a) => (a === 'new' ? 'existing' : a));
    const p = spawn(this.binary, this.procs[i] === undefined ? this.args[i]! : args, {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    live.add(p);
    p.once('exit', () => live.delete(p));
    this.procs[i] = p;
  }

  /** kill -9 of member i. */
  async kill(i: number): Promise<void> {
    const p = this.procs[i];
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          }),
      ),
    );
    if (this.root !== '') await rm(this.root, { recursive: true, force: true });
  }
}
