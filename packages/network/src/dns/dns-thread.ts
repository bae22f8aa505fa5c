/**
 * The embedded DNS server on a thread of its own (a `worker_threads` Worker running
 * dns-thread-main.ts): the same server (UDP and TCP, scopes, forwarding), answering on its own
 * event loop, so queries are not held up while the caller's loop is busy. The caller owns the
 * names and the client scopes and sends them as changes (`setNetwork`, `setScope`, ...), which
 * the thread applies in order; `settled()` resolves once it has applied every change sent so far.
 *
 * A client (by source address) the thread has no scope for sees no names: its queries are all
 * forwarded. When the thread dies (it should not), `exited` says why and the caller starts another.
 */
import { Worker } from 'node:worker_threads';
import { CommandFailedError, errorMessage, run, silentLogger, type Logger } from '@shoal/common';
import { DataPlaneError } from '../errors.js';
import { parseUpstream, type DnsClient } from './dns-server.js';
import type { DnsThreadCommand, DnsThreadData, DnsThreadEvent, DnsThreadRecord } from './dns-thread-messages.js';

export interface ThreadedDnsOptions {
  /** Resolvers for other names (`a.b.c.d` or `a.b.c.d:port`); at most 3 used. */
  upstreams?: readonly string[];
  ttl?: number;
  forwardTimeoutMs?: number;
  logger?: Logger;
  /** Called when the thread ends without `close()` (with why). */
  onExit?: (err: Error) => void;
  /**
   * Run the thread at real-time priority (SCHED_RR, priority 1, by `chrt` on its thread id), so a
   * query is read the moment it arrives however busy the machine's CPUs are, rather than after
   * the slices of the processes running there. It only takes CPU when there are queries; the
   * kernel's real-time throttling (kernel.sched_rt_runtime_us, 95 % by default) still bounds it.
   * A thread busy more than half of a second (a flood of queries) goes back to the process's
   * priority until it is calm again, so a flood cannot hold a CPU above everything else. When
   * it cannot be set (no chrt, no CAP_SYS_NICE) the thread runs at the process's priority, with a
   * warning.
   */
  realtime?: boolean;
  /** The share of a second answering above which a real-time thread is busy (default BUSY_SHARE, 0.5). */
  busyShare?: number;
}

/** The real-time policy and priority of the DNS thread (the lowest real-time priority). */
const REALTIME_ARGS = ['--rr', '-p', '1'];
const NORMAL_ARGS = ['--other', '-p', '0'];

/** How long a closing thread may take to end on its own. */
const CLOSE_GRACE_MS = 5000;
const ENTRY = new URL('./dns-thread-main.js', import.meta.url);

export class ThreadedDnsServer {
  private worker: Worker | undefined;
  private bound: DnsClient | undefined;
  private seq = 0;
  private readonly waiting = new Map<number, () => void>();
  private closing: Promise<void> | undefined;
  private readonly log: Logger;
  /** The thread's Linux thread id while it runs (undefined where /proc does not tell it). */
  tid: number | undefined;
  /** Why the thread ended without being closed (an error), once it has. */
  exited: Error | undefined;

  constructor(readonly options: ThreadedDnsOptions = {}) {
    for (const u of options.upstreams ?? []) parseUpstream(u); // refused here, not in the thread
    this.log = options.logger ?? silentLogger();
  }

  /** Starts the thread and binds its UDP socket and TCP listener; where it listens. */
  listen(address = '127.0.0.1', port = 0): Promise<DnsClient> {
    if (this.worker) throw new DataPlaneError('the DNS thread is already started');
    const bindings: Record<string, unknown> = { ...this.log.bindings() };
    for (const k of ['pid', 'hostname', 'name']) delete bindings[k];
    const data: DnsThreadData = {
      address,
      port,
      upstreams: [...(this.options.upstreams ?? [])],
      ...(this.options.ttl !== undefined ? { ttl: this.options.ttl } : {}),
      ...(this.options.forwardTimeoutMs !== undefined ? { forwardTimeoutMs: this.options.forwardTimeoutMs } : {}),
      logLevel: this.log.level,
      logBindings: bindings,
      ...(this.options.busyShare !== undefined ? { busyShare: this.options.busyShare } : {}),
    };
    const w = new Worker(ENTRY, { workerData: data, name: 'shoal-dns' });
    this.worker = w;
    return new Promise((resolve, reject) => {
      let started = false;
      w.on('message', (e: DnsThreadEvent) => {
        if (e.type === 'listening') {
          started = true;
          const bound = { address: e.address, port: e.port };
          this.bound = bound;
          this.tid = e.tid;
          void this.prioritise(e.tid).then(() => resolve(bound));
        } else if (e.type === 'listen-failed') {
          reject(new DataPlaneError(`the DNS server cannot listen on ${address}:${port}: ${e.message}`));
        } else if (e.type === 'load') {
          void this.onLoad(e.busy, e.share);
        } else if (e.type === 'settled') {
          const done = this.waiting.get(e.seq);
          this.waiting.delete(e.seq);
          done?.();
        }
      });
      w.on('error', (err: unknown) => {
        this.log.error({ err }, 'the DNS thread failed');
        const e = err instanceof Error ? err : new DataPlaneError(`the DNS thread failed: ${String(err)}`);
        this.exited = e;
        if (!started) reject(e);
      });
      w.once('exit', (code) => {
        this.worker = undefined;
        this.bound = undefined;
        this.tid = undefined;
        this.realtimeSet = false;
        this.demoted = false;
        if (!this.closing && !this.exited) this.exited = new DataPlaneError(`the DNS thread exited (${code})`);
        if (!started) reject(this.exited ?? new DataPlaneError(`the DNS thread exited (${code})`));
        else if (!this.closing && this.exited) this.options.onExit?.(this.exited);
        for (const done of this.waiting.values()) done();
        this.waiting.clear();
      });
    });
  }

  /** Whether the thread runs at real-time priority (`realtime` asked for, and set). */
  realtimeSet = false;

  /** Whether the thread was put back to the process's priority while busy (a flood). */
  private demoted = false;

  private async prioritise(tid: number | undefined): Promise<void> {
    if (!this.options.realtime) return;
    if (tid === undefined) return void this.log.warn('the DNS thread has no thread id here: not real-time');
    if (await this.chrt(tid, REALTIME_ARGS)) {
      this.realtimeSet = true;
      this.log.debug({ tid }, 'the DNS thread runs at real-time priority (SCHED_RR 1)');
    }
  }

  /**
   * A busy real-time thread (a flood of queries) goes back to the process's priority, so it
   * shares the CPU as any other; once calm it is real-time again.
   */
  private async onLoad(busy: boolean, share: number): Promise<void> {
    const tid = this.tid;
    if (tid === undefined) return;
    if (busy && this.realtimeSet) {
      this.realtimeSet = false;
      this.demoted = true;
      this.log.warn({ tid, share }, 'the DNS thread is busy (a flood of queries?): no longer real-time');
      await this.chrt(tid, NORMAL_ARGS);
    } else if (!busy && this.demoted) {
      this.demoted = false;
      if (await this.chrt(tid, REALTIME_ARGS)) {
        this.realtimeSet = true;
        this.log.info({ tid, share }, 'the DNS thread is calm again: real-time');
      }
    }
  }

  private async chrt(tid: number, args: readonly string[]): Promise<boolean> {
    try {
      await run('chrt', [...args, String(tid)]);
      return this.tid === tid;
    } catch (err) {
      if (!(err instanceof CommandFailedError)) throw err;
      if (this.tid === tid) this.log.warn({ tid, err: errorMessage(err) }, 'the DNS thread priority could not be set');
      return false;
    }
  }

  /** Where it listens, while the thread runs. */
  get listening(): DnsClient | undefined {
    return this.bound;
  }

  /** Replaces a network's names, and its own name (`<name>.<network name>` resolves). */
  setNetwork(id: string, records: readonly DnsThreadRecord[], name?: string): void {
    this.send({
      op: 'network',
      id,
      ...(name ? { name } : {}),
      records: records.map((r) => ({ name: r.name, address: r.address })),
    });
  }

  removeNetwork(id: string): void {
    this.send({ op: 'remove-network', id });
  }

  /** The networks whose names a client (by source address) sees. */
  setScope(client: string, networks: Iterable<string>): void {
    this.send({ op: 'scope', client, networks: [...networks] });
  }

  dropScope(client: string): void {
    this.send({ op: 'drop-scope', client });
  }

  /** Resolves once the thread has applied every change sent before (at once without a thread). */
  settled(): Promise<void> {
    const w = this.worker;
    if (!w) return Promise.resolve();
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(seq, resolve);
      w.postMessage({ op: 'settle', seq } satisfies DnsThreadCommand);
    });
  }

  /** Closes the server and ends the thread. */
  close(): Promise<void> {
    const w = this.worker;
    if (!w) return Promise.resolve();
    this.closing ??= new Promise<void>((resolve) => {
      // the thread ends once its sockets are closed; a thread that does not is ended
      const force = setTimeout(() => void w.terminate(), CLOSE_GRACE_MS);
      w.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      w.postMessage({ op: 'close' } satisfies DnsThreadCommand);
    });
    return this.closing;
  }

  private send(c: DnsThreadCommand): void {
    this.worker?.postMessage(c);
  }
}
