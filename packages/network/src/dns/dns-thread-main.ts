/**
 * The DNS thread's entry point (a `worker_threads` Worker started by dns-thread.ts): an
 * EmbeddedDnsServer with its own DnsTable and client scopes, fed by the main thread's commands.
 * Queries are answered on this thread's event loop, so a busy main loop (the agent's syncs, the
 * manager's commits) does not delay them. A client whose address has no scope sees no names.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, errnoCode, errorMessage } from '@shoal/common';
import { InvalidDnsNameError } from '../errors.js';
import { EmbeddedDnsServer } from './dns-server.js';
import { DnsTable } from './dns-table.js';
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
  post({ type: 'listening', address: bound.address, port: bound.port });
} catch (err) {
  post({ type: 'listen-failed', code: errnoCode(err), message: errorMessage(err) });
  port.close();
}
