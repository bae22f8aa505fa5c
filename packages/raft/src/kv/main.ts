#!/usr/bin/env node
/**
 * A replicated KV process:
 *   npm run raft:kv -- --id N --peers id=host:port,... --data DIR --listen ADDR
 *                      [--client-listen ADDR] [--client-peers id=host:port,...]
 *                      [--tick-ms 100] [--election-ticks 6] [--snapshot-entries 10000] [--snapshot-mib 64]
 *                      [--segment-mib 64] [--session-ttl-ms 600000]
 * `--peers` lists every founding member's raft address (this one included); `--client-peers`
 * their client addresses, used to redirect clients to the leader. Prints one line
 * `READY id=.. raft=.. client=.. boot_ms=A+B+C+D` on stdout once serving (boot phases: process
 * start, store open, WAL preallocation, node start with the state machine's restore). Exits 1 on a storage fatal error.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

/** Boot phases (ms since process start), reported on the READY line: process+imports, store open (WAL + snapshot header), WAL preallocation, node start (state machine restore). */
const t = { open: 0, opened: 0, prepared: 0, started: 0 };
import { createLogger } from '@shoal/common';
import { DiskLogStore } from '../snap/disk-store.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import { RaftNode } from '../driver/raft-node.js';
import { KvStateMachine } from './state-machine.js';
import { KvServer } from './server.js';

function parseMap(s: string | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (s === undefined || s === '') return out;
  for (const part of s.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new Error(`${flag}: expected id=host:port, got ${JSON.stringify(part)}`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

function portPlus(addr: string, delta: number): string {
  const i = addr.lastIndexOf(':');
  return `${addr.slice(0, i)}:${Number(addr.slice(i + 1)) + delta}`;
}

function usage(message: string): never {
  process.stderr.write(
    `raft:kv: ${message}\nusage: raft:kv --id N --peers id=host:port,... --data DIR --listen ADDR [--client-listen ADDR]\n`,
  );
  process.exit(2);
}

let parsed: ReturnType<typeof parseCli>;
function parseCli() {
  return parseArgs({
    options: {
      id: { type: 'string' },
      peers: { type: 'string' },
      data: { type: 'string' },
      listen: { type: 'string' },
      'client-listen': { type: 'string' },
      'client-peers': { type: 'string' },
      'tick-ms': { type: 'string' },
      'election-ticks': { type: 'string' },
      'snapshot-entries': { type: 'string' },
      'snapshot-mib': { type: 'string' },
      'session-ttl-ms': { type: 'string' },
      'segment-mib': { type: 'string' },
      join: { type: 'boolean' },
    },
  });
}
try {
  parsed = parseCli();
} catch (err) {
  usage((err as Error).message);
}
const { values } = parsed;
const id = values.id;
const data = values.data;
const listen = values.listen;
if (id === undefined || data === undefined || listen === undefined || values.peers === undefined) {
  usage('--id, --peers, --data and --listen are required');
}
let peers: Record<string, string> = {};
let clientPeers: Record<string, string> = {};
try {
  peers = parseMap(values.peers, '--peers');
  clientPeers = parseMap(values['client-peers'], '--client-peers');
  for (const [flag, v] of [
    ['--tick-ms', values['tick-ms']],
    ['--election-ticks', values['election-ticks']],
    ['--snapshot-entries', values['snapshot-entries']],
    ['--segment-mib', values['segment-mib']],
    ['--snapshot-mib', values['snapshot-mib']],
    ['--session-ttl-ms', values['session-ttl-ms']],
  ] as const) {
    if (v !== undefined && !(Number.isInteger(Number(v)) && Number(v) > 0)) {
      throw new Error(`${flag}: expected a positive integer, got ${JSON.stringify(v)}`);
    }
  }
} catch (err) {
  usage((err as Error).message);
}
if (peers[id] === undefined) peers[id] = listen;
const clientListen = values['client-listen'] ?? clientPeers[id] ?? portPlus(listen, 1000);
const log = createLogger(`raft-kv-${id}`);

const segmentMiB = Number(values['segment-mib'] ?? 64);
let store: DiskLogStore;
try {
  t.open = performance.now();
  store = await DiskLogStore.open(data, { logger: log, nodeId: id, segmentSize: segmentMiB * 1024 * 1024 });
} catch (err) {
  process.stderr.write(`raft:kv: cannot open ${data}: ${(err as Error).message}\n`);
  process.exit(1);
}
t.opened = performance.now();
await store.whenPrepared(); // preallocation of the next WAL segment done before serving
t.prepared = performance.now();
const transport = new TcpTransport({
  listen,
  peers: Object.fromEntries(Object.entries(peers).filter(([p]) => p !== id)),
  logger: log,
});
const sm = new KvStateMachine({ sessionTtlMs: Number(values['session-ttl-ms'] ?? 600_000) });
const node = new RaftNode({
  id,
  store,
  transport,
  stateMachine: sm,
  ...(values.join ? {} : { bootstrapVoters: Object.keys(peers).sort() }),
  tickMs: Number(values['tick-ms'] ?? 100),
  electionTicks: Number(values['election-ticks'] ?? 6),
  snapshotEntries: Number(values['snapshot-entries'] ?? 10_000),
  snapshotBytes: Number(values['snapshot-mib'] ?? 64) * 1024 * 1024,
  logger: log,
  onFatal: (err) => {
    log.fatal({ err: err.message }, 'raft storage failed; exiting');
    process.exit(1);
  },
});
await node.start();
t.started = performance.now();
const server = new KvServer({
  node,
  stateMachine: sm,
  listen: clientListen,
  clientAddresses: clientPeers,
  logger: log,
});
await server.start();
const ms = (a: number, b: number): number => Math.round(b - a);
process.stdout.write(
  `READY id=${id} raft=${transport.address()} client=${server.address()} ` +
    `boot_ms=${ms(0, t.open)}+${ms(t.open, t.opened)}+${ms(t.opened, t.prepared)}+${ms(t.prepared, t.started)}\n`,
);

// Memory diagnostics on demand (the soak benchmark uses them): one JSON line on stderr.
process.on('SIGUSR2', () => {
  const before = process.memoryUsage().arrayBuffers;
  (globalThis as { gc?: () => void }).gc?.(); // with --expose-gc: what is live, not yet collected
  const m = process.memoryUsage();
  const mib = (n: number): number => Math.round(n / 1048576);
  process.stderr.write(
    `MEM id=${id} ${JSON.stringify({ rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers), arrayBuffersBeforeGc: mib(before), live: mib(sm.liveBytes()), keys: sm.size(), applied: node.status().applied, last: node.status().lastIndex })}\n`,
  );
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await server.close();
    await node.close();
    process.exit(0);
  })();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
