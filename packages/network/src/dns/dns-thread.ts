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
import { silentLogger, type Logger } from '@shoal/common';
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
}

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
    };
    const w = new Worker(ENTRY, { workerData: data, name: 'shoal-dns' });
    this.worker = w;
    return new Promise((resolve, reject) => {
      let started = false;
      w.on('message', (e: DnsThreadEvent) => {
        if (e.type === 'listening') {
          started = true;
          this.bound = { address: e.address, port: e.port };
          resolve(this.bound);
        } else if (e.type === 'listen-failed') {
          reject(new DataPlaneError(`the DNS server cannot listen on ${address}:${port}: ${e.message}`));
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
        if (!this.closing && !this.exited) this.exited = new DataPlaneError(`the DNS thread exited (${code})`);
        if (!started) reject(this.exited ?? new DataPlaneError(`the DNS thread exited (${code})`));
        else if (!this.closing && this.exited) this.options.onExit?.(this.exited);
        for (const done of this.waiting.values()) done();
        this.waiting.clear();
      });
    });
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
