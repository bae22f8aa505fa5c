/**
 * The DNS thread's entry point (a `worker_threads` Worker started by dns-thread.ts): an
 * EmbeddedDnsServer with its own DnsTable and client scopes, fed by the main thread's commands.
 * Queries are answered on this thread's event loop, so a busy main loop (the agent's syncs, the
 * manager's commits) does not delay them. A client whose address has no scope sees no names.
 */
import { readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, errnoCode, errorMessage } from '@shoal/common';
import { InvalidDnsNameError } from '../errors.js';
import { EmbeddedDnsServer } from './dns-server.js';
import { DnsTable } from './dns-table.js';
import { BUSY_SHARE, CALM_RATIO, LOAD_PERIOD_MS } from './dns-thread-messages.js';
import type { DnsThreadCommand, DnsThreadData, DnsThreadEvent } from './dns-thread-messages.js';

if (!parentPort) throw new Error('dns-thread-main runs as a worker thread');
const port = parentPort;
const data = workerData as DnsThreadData;
const log = createLogger('shoald', { level: data.logLevel }).child({ ...data.logBindings, thread: 'dns' });
const post = (e: DnsThreadEvent): void => port.postMessage(e);

const table = new DnsTable();
const scopes = new Map<string, ReadonlySet<string>>();
const none: ReadonlySet<string> = new Set();
const server = new EmbeddedDnsServer({
  table,
  upstreams: data.upstreams,
  scope: (client) => scopes.get(client.address) ?? none,
  ...(data.ttl !== undefined ? { ttl: data.ttl } : {}),
  ...(data.forwardTimeoutMs !== undefined ? { forwardTimeoutMs: data.forwardTimeoutMs } : {}),
  logger: log,
});

/** This thread's Linux thread id (`/proc/thread-self` is `<pid>/task/<tid>`), undefined elsewhere. */
function threadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Says when this loop becomes busy (a flood of queries) or calm again (BUSY_SHARE, CALM_RATIO). */
function watchLoad(): void {
  const busyShare = data.busyShare ?? BUSY_SHARE;
  const calmShare = busyShare * CALM_RATIO;
  let last = performance.eventLoopUtilization();
  let busy = false;
  setInterval(() => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy ? share < calmShare : share > busyShare) {
      busy = !busy;
      post({ type: 'load', busy, share });
    }
  }, LOAD_PERIOD_MS).unref();
}

function apply(c: DnsThreadCommand): void {
  switch (c.op) {
    case 'network':
      table.removeNetwork(c.id);
      table.setNetworkName(c.id, c.name);
      for (const r of c.records) {
        try {
          table.add(r.name, r.address, c.id);
        } catch (err) {
          if (!(err instanceof InvalidDnsNameError)) throw err;
          log.warn({ network: c.id, name: r.name, err: errorMessage(err) }, 'DNS name skipped');
        }
      }
      return;
    case 'remove-network':
      table.removeNetwork(c.id);
      return;
    case 'scope':
      scopes.set(c.client, new Set(c.networks));
      return;
    case 'drop-scope':
      scopes.delete(c.client);
      return;
    case 'settle':
      post({ type: 'settled', seq: c.seq });
      return;
    case 'close':
      void server.close().then(() => {
        post({ type: 'closed' });
        port.close();
      });
      return;
  }
}

port.on('message', (c: DnsThreadCommand) => apply(c));

try {
  const bound = await server.listen(data.address, data.port);
  const tid = threadId();
  post({ type: 'listening', address: bound.address, port: bound.port, ...(tid ? { tid } : {}) });
  watchLoad();
} catch (err) {
  post({ type: 'listen-failed', code: errnoCode(err), message: errorMessage(err) });
  port.close();
}
