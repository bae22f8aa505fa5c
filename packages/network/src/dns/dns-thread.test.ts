// The embedded DNS server on its own thread: it answers while the caller's event loop is blocked
// (a client run synchronously from the test's main thread gets its answer; a server on the main
// loop could not even read the query), keeps the scopes and names the caller sends, in order,
// and ends its thread on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { waitFor } from '@shoal/common';
import { InvalidAddressError } from '../errors.js';
import { RR_TYPE, encodeQuery } from './dns-message.js';
import { DnsTable } from './dns-table.js';
import { EmbeddedDnsServer } from './dns-server.js';
import { ThreadedDnsServer } from './dns-thread.js';

/** A client in another process; run with execFileSync, it blocks this thread until it is answered. */
const CLIENT = `
const { Resolver } = require('node:dns').promises;
const r = new Resolver({ timeout: 2000, tries: 2 });
r.setServers([process.env.SERVER]);
r.resolve4(process.env.NAME).then(
  (a) => console.log(JSON.stringify(a.sort())),
  (e) => console.log(JSON.stringify(e.code)),
);
`;

function askBlocking(server: string, name: string): unknown {
  const out = execFileSync(process.execPath, ['-e', CLIENT], {
    env: { ...process.env, SERVER: server, NAME: name },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out);
}

test('the DNS thread answers while the main loop is blocked, with the names and scopes it was sent', async (t) => {
  const dns = new ThreadedDnsServer();
  const { address, port } = await dns.listen('127.0.0.1', 0);
  t.after(() => dns.close());
  const server = `${address}:${port}`;
  // a client whose address has no scope sees no names (and there is no upstream: NXDOMAIN)
  dns.setNetwork('n1', [
    { name: 'web', address: '198.19.128.10' },
    { name: 'tasks.web', address: '198.19.128.11' },
    { name: 'tasks.web', address: '198.19.128.12' },
  ]);
  dns.setNetwork('n2', [{ name: 'db', address: '198.19.129.5' }], 'backend');
  await dns.settled();
  assert.equal(askBlocking(server, 'web'), 'ENOTFOUND');
  dns.setScope('127.0.0.1', ['n1']);
  await dns.settled();
  // the whole time the client runs, this thread is blocked in execFileSync
  assert.deepEqual(askBlocking(server, 'web'), ['198.19.128.10']);
  assert.deepEqual(askBlocking(server, 'tasks.web'), ['198.19.128.11', '198.19.128.12']);
  assert.equal(askBlocking(server, 'db'), 'ENOTFOUND');
  // changes apply in order; settled() waits for them
  dns.setNetwork('n1', [{ name: 'web', address: '198.19.128.20' }]);
  dns.setScope('127.0.0.1', ['n1', 'n2']);
  await dns.settled();
  const r = new Resolver({ timeout: 2000, tries: 2 });
  r.setServers([server]);
  assert.deepEqual(await r.resolve4('web'), ['198.19.128.20']);
  assert.deepEqual(await r.resolve4('db'), ['198.19.129.5']);
  // the network's name came with its records: `<name>.<network name>`
  assert.deepEqual(await r.resolve4('db.backend'), ['198.19.129.5']);
  dns.removeNetwork('n2');
  dns.dropScope('127.0.0.1');
  await dns.settled();
  await assert.rejects(r.resolve4('web'), { code: 'ENOTFOUND' });
  assert.equal(dns.exited, undefined);
  await dns.close();
  assert.equal(dns.listening, undefined);
  await dns.close(); // idempotent
});

test('the DNS thread forwards to upstreams, refuses a bad upstream at once, and reports a port it cannot bind', async (t) => {
  const upTable = new DnsTable();
  upTable.add('outside.example', '198.18.0.77', 'any');
  const upstream = new EmbeddedDnsServer({ table: upTable });
  const up = await upstream.listen();
  t.after(() => upstream.close());
  const dns = new ThreadedDnsServer({ upstreams: [`127.0.0.1:${up.port}`] });
  const { port } = await dns.listen();
  t.after(() => dns.close());
  // (asked without blocking: the upstream here answers on this thread's loop)
  const r = new Resolver({ timeout: 2000, tries: 2 });
  r.setServers([`127.0.0.1:${port}`]);
  assert.deepEqual(await r.resolve4('outside.example'), ['198.18.0.77']);
  assert.throws(() => new ThreadedDnsServer({ upstreams: ['198.18.0.1:99999'] }), InvalidAddressError);
  // the port is taken (by the upstream): the thread says so and ends
  const clash = new ThreadedDnsServer();
  await assert.rejects(clash.listen('127.0.0.1', up.port), /cannot listen/);
  assert.equal(clash.listening, undefined);
});

/** The scheduling policy of one of this process's threads (/proc: 0 normal, 2 SCHED_RR). */
function policyOf(tid: number): number {
  const m = /^policy\s*:\s*(\d+)$/m.exec(readFileSync(`/proc/self/task/${tid}/sched`, 'utf8'));
  return Number(m?.[1]);
}

test('realtime: the DNS thread alone runs at SCHED_RR; by default it keeps the process priority', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (CAP_SYS_NICE)');
  const rt = new ThreadedDnsServer({ realtime: true });
  const { port } = await rt.listen();
  t.after(() => rt.close());
  const plain = new ThreadedDnsServer();
  await plain.listen();
  t.after(() => plain.close());
  assert.ok(rt.tid && plain.tid && rt.tid !== plain.tid && rt.tid !== process.pid, `thread ids ${rt.tid} ${plain.tid}`);
  // the thread id is the answering thread's: it is one of this process's threads
  assert.ok(existsSync(`/proc/self/task/${rt.tid}`));
  assert.equal(rt.realtimeSet, true);
  assert.equal(policyOf(rt.tid), 2);
  assert.equal(plain.realtimeSet, false);
  assert.equal(policyOf(plain.tid), 0);
  assert.equal(policyOf(process.pid), 0, 'the main thread keeps its priority');
  rt.setNetwork('n1', [{ name: 'web', address: '198.19.128.10' }]);
  rt.setScope('127.0.0.1', ['n1']);
  await rt.settled();
  const r = new Resolver({ timeout: 2000, tries: 2 });
  r.setServers([`127.0.0.1:${port}`]);
  assert.deepEqual(await r.resolve4('web'), ['198.19.128.10']);
  await rt.close();
  assert.equal(rt.tid, undefined);
  assert.equal(rt.realtimeSet, false);
});

/** A flood: a process keeping 256 queries in flight, each answer sending the next, until killed. */
const FLOOD = `
const { createSocket } = require('node:dgram');
const s = createSocket('udp4');
const q = Buffer.from(process.env.Q, 'hex');
s.on('message', () => s.send(q, Number(process.env.PORT), '127.0.0.1'));
for (let i = 0; i < 256; i++) s.send(q, Number(process.env.PORT), '127.0.0.1');
`;

test('realtime: a flood of queries puts the DNS thread back to normal priority, and it is real-time again once calm', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (CAP_SYS_NICE)');
  // busy from a tenth of a second answering: a flood on a loaded machine (its clients slowed
  // too) still counts; idle, the thread's loop is busy far less than 4 % of the time
  const rt = new ThreadedDnsServer({ realtime: true, busyShare: 0.1 });
  const { port } = await rt.listen();
  t.after(() => rt.close());
  rt.setNetwork('n1', [{ name: 'web', address: '198.19.128.10' }]);
  rt.setScope('127.0.0.1', ['n1']);
  await rt.settled();
  const tid = rt.tid ?? 0;
  assert.equal(policyOf(tid), 2);
  const floods = [1, 2, 3].map(() =>
    spawn(process.execPath, ['-e', FLOOD], {
      env: { ...process.env, PORT: String(port), Q: encodeQuery(1, 'web', RR_TYPE.A).toString('hex') },
      stdio: 'ignore',
    }),
  );
  const ended = Promise.all(floods.map((f) => new Promise((resolve) => f.once('exit', resolve))));
  const stop = async (): Promise<void> => {
    for (const f of floods) f.kill();
    await ended;
  };
  t.after(stop);
  await waitFor(() => (policyOf(tid) === 0 ? true : undefined), { timeoutMs: 30_000, what: 'normal priority' });
  assert.equal(rt.realtimeSet, false);
  await stop();
  // (realtimeSet follows once chrt has returned)
  await waitFor(() => (policyOf(tid) === 2 && rt.realtimeSet ? true : undefined), {
    timeoutMs: 30_000,
    what: 'real-time again',
  });
});
