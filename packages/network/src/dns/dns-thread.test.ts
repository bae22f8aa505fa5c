// The embedded DNS server on its own thread: it answers while the caller's event loop is blocked
// (a client run synchronously from the test's main thread gets its answer; a server on the main
// loop could not even read the query), keeps the scopes and names the caller sends, in order,
// and ends its thread on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { InvalidAddressError } from '../errors.js';
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
