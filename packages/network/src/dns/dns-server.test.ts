// The embedded DNS server on real UDP sockets on loopback, asked by Node's own resolver (c-ares,
// an independent client) and by raw packets: names of the client's networks are answered, other
// names are forwarded to an upstream (a second server), and failures get the right rcode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { errnoCode, run } from '@shoal/common';
import { RCODE, RR_TYPE, encodeError, encodeQuery, parseResponse, type DnsResponse } from './dns-message.js';
import { DnsTable } from './dns-table.js';
import { EmbeddedDnsServer } from './dns-server.js';
import { TcpFramer, frame } from './dns-tcp.js';

function resolverFor(port: number): Resolver {
  const r = new Resolver({ timeout: 3000, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  return r;
}

// The clients' sockets do not keep the process alive: a test that fails by timing out (a server
// that never answers) then ends once its servers are closed.
async function rawAsk(port: number, packet: Buffer): Promise<DnsResponse> {
  const s = createSocket('udp4');
  s.unref();
  try {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      s.once('error', reject);
      s.once('message', resolve);
      s.send(packet, port, '127.0.0.1');
    });
    return parseResponse(reply);
  } finally {
    s.close();
  }
}

/** Sends `packets` over one TCP connection in one write; the replies, by id. */
async function tcpAsk(port: number, packets: Buffer[]): Promise<Map<number, DnsResponse>> {
  const s = connect({ host: '127.0.0.1', port }).unref();
  const framer = new TcpFramer();
  const out = new Map<number, DnsResponse>();
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.once('close', () => reject(new Error(`connection closed after ${out.size} replies`)));
      s.on('data', (chunk: Buffer) => {
        for (const m of framer.push(chunk)) {
          const r = parseResponse(m);
          out.set(r.id, r);
        }
        if (out.size === packets.length) resolve();
      });
      s.write(Buffer.concat(packets.map((p) => frame(p))));
    });
    return out;
  } finally {
    s.destroy();
  }
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => errnoCode(err) === code);
}

/** A port nobody listens on, UDP or TCP (bound for both, then closed). */
async function deadPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  const tcp = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: '127.0.0.1', port, exclusive: true }, resolve);
    });
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  } finally {
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  return port;
}

test('embedded DNS: service names, tasks.<name>, scoping by network, PTR, forwarding, errors', async (t) => {
  const upstreamTable = new DnsTable();
  upstreamTable.add('outside.example', '198.18.0.77', 'any');
  const upstream = new EmbeddedDnsServer({ table: upstreamTable });
  const up = await upstream.listen();
  t.after(() => upstream.close());

  const table = new DnsTable();
  table.add('web', '198.19.128.10', 'n1');
  for (const ip of ['198.19.128.11', '198.19.128.12', '198.19.128.13']) table.add('tasks.web', ip, 'n1');
  table.add('web-1', '198.19.128.11', 'n1');
  table.add('db', '198.19.129.5', 'n2');
  let visible = new Set(['n1']);
  const server = new EmbeddedDnsServer({ table, upstreams: [`127.0.0.1:${up.port}`], scope: () => visible });
  const { port } = await server.listen();
  t.after(() => server.close());
  const r = resolverFor(port);

  assert.deepEqual(await r.resolve4('web'), ['198.19.128.10']);
  assert.deepEqual(await r.resolve4('WEB'), ['198.19.128.10']);
  assert.deepEqual((await r.resolve4('tasks.web')).sort(), ['198.19.128.11', '198.19.128.12', '198.19.128.13']);
  assert.deepEqual(await r.resolve4('web', { ttl: true }), [{ address: '198.19.128.10', ttl: 600 }]);
  assert.deepEqual(await r.reverse('198.19.128.11'), ['tasks.web', 'web-1']);
  // a name we own has no IPv6 address: no data, not forwarded
  await rejectsWith(r.resolve6('web'), 'ENODATA');
  // db is on n2, which this client is not on: forwarded, and the upstream does not know it
  await rejectsWith(r.resolve4('db'), 'ENOTFOUND');
  visible = new Set(['n1', 'n2']);
  assert.deepEqual(await r.resolve4('db'), ['198.19.129.5']);
  // <name>.<network name> (Docker's answers for `web.tools`), only for a network the client is on
  table.setNetworkName('n1', 'front');
  table.setNetworkName('n2', 'back');
  assert.deepEqual(await r.resolve4('web.front'), ['198.19.128.10']);
  assert.deepEqual((await r.resolve4('tasks.web.front')).sort(), ['198.19.128.11', '198.19.128.12', '198.19.128.13']);
  assert.deepEqual(await r.resolve4('db.back'), ['198.19.129.5']);
  await rejectsWith(r.resolve4('web.back'), 'ENOTFOUND');
  // other names go to the upstream and come back as it answered
  assert.deepEqual(await r.resolve4('outside.example'), ['198.18.0.77']);

  // raw: authoritative for our names, not for forwarded ones; FORMERR for junk
  const own = await rawAsk(port, encodeQuery(0xbeef, 'web', RR_TYPE.A));
  assert.equal(own.id, 0xbeef);
  assert.equal(own.authoritative, true);
  assert.equal(own.rcode, RCODE.NOERROR);
  const fwd = await rawAsk(port, encodeQuery(0xcafe, 'outside.example', RR_TYPE.A));
  assert.equal(fwd.id, 0xcafe);
  assert.deepEqual(
    fwd.answers.map((a) => a.data),
    ['198.18.0.77'],
  );
  const junk = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3f]);
  const bad = await rawAsk(port, junk);
  assert.equal(bad.id, 0x1234);
  assert.equal(bad.rcode, RCODE.FORMERR);
  // a dnsrr name with many tasks: what fits in 512 bytes, TC set
  for (let i = 0; i < 50; i++) table.add('tasks.many', `198.19.130.${i + 2}`, 'n1');
  const many = await rawAsk(port, encodeQuery(5, 'tasks.many', RR_TYPE.A));
  assert.equal(many.truncated, true);
  assert.ok(many.answers.length > 20 && many.answers.length < 50, `${many.answers.length} answers`);
  assert.equal(new Set(many.answers.map((a) => a.data)).size, many.answers.length);
  // records removed are gone at once
  table.remove('web', '198.19.128.10', 'n1');
  await rejectsWith(r.resolve4('web'), 'ENOTFOUND');
});

test('embedded DNS: SERVFAIL when no upstream answers, NXDOMAIN when none is configured', async (t) => {
  // an upstream that takes the query and never answers: SERVFAIL after the forward timeout
  const mute = createSocket('udp4');
  await new Promise<void>((resolve) => mute.bind(0, '127.0.0.1', resolve));
  t.after(() => mute.close());
  const silent = new EmbeddedDnsServer({
    table: new DnsTable(),
    upstreams: [`127.0.0.1:${mute.address().port}`],
    forwardTimeoutMs: 300,
  });
  const a = await silent.listen();
  t.after(() => silent.close());
  const none = new EmbeddedDnsServer({ table: new DnsTable() });
  const b = await none.listen();
  t.after(() => none.close());
  assert.equal((await rawAsk(a.port, encodeQuery(1, 'x.example', RR_TYPE.A))).rcode, RCODE.SERVFAIL);
  assert.equal((await rawAsk(b.port, encodeQuery(2, 'x.example', RR_TYPE.A))).rcode, RCODE.NXDOMAIN);
  assert.throws(() => new EmbeddedDnsServer({ table: new DnsTable(), upstreams: ['198.18.0.1:99999'] }), /bad port/);
});

// The forward timeout is a minute and the test's own limit 20 s: only an upstream failure seen
// at once (not waited out) lets these pass.
const FOREVER_MS = 60_000;

test(
  'embedded DNS: an upstream that refuses fails at once (UDP and TCP), and the next one is asked',
  { timeout: 20_000 },
  async (t) => {
    const refused = `127.0.0.1:${await deadPort()}`;
    // an upstream that answers SERVFAIL itself: Docker's resolver then asks the next, so do we
    const failing = createSocket('udp4');
    failing.on('message', (m, rinfo) => {
      const reply = encodeError(m, RCODE.SERVFAIL);
      if (reply) failing.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => failing.bind(0, '127.0.0.1', resolve));
    t.after(() => failing.close());
    const upstreamTable = new DnsTable();
    upstreamTable.add('outside.example', '198.18.0.77', 'any');
    const upstream = new EmbeddedDnsServer({ table: upstreamTable });
    const up = await upstream.listen();
    t.after(() => upstream.close());

    const alone = new EmbeddedDnsServer({ table: new DnsTable(), upstreams: [refused], forwardTimeoutMs: FOREVER_MS });
    const a = await alone.listen();
    t.after(() => alone.close());
    assert.equal((await rawAsk(a.port, encodeQuery(1, 'x.example', RR_TYPE.A))).rcode, RCODE.SERVFAIL);
    assert.equal((await tcpAsk(a.port, [encodeQuery(2, 'x.example', RR_TYPE.A)])).get(2)?.rcode, RCODE.SERVFAIL);
    // c-ares (busybox's nslookup alike) gets an answer, not a timeout
    await rejectsWith(resolverFor(a.port).resolve4('x.example'), 'ESERVFAIL');

    const chain = new EmbeddedDnsServer({
      table: new DnsTable(),
      upstreams: [refused, `127.0.0.1:${failing.address().port}`, `127.0.0.1:${up.port}`],
      forwardTimeoutMs: FOREVER_MS,
    });
    const c = await chain.listen();
    t.after(() => chain.close());
    const viaUdp = await rawAsk(c.port, encodeQuery(3, 'outside.example', RR_TYPE.A));
    assert.deepEqual(
      viaUdp.answers.map((x) => x.data),
      ['198.18.0.77'],
    );
    const viaTcp = (await tcpAsk(c.port, [encodeQuery(4, 'outside.example', RR_TYPE.A)])).get(4);
    assert.deepEqual(
      viaTcp?.answers.map((x) => x.data),
      ['198.18.0.77'],
    );
    // every upstream failing: our own SERVFAIL
    const allFail = new EmbeddedDnsServer({
      table: new DnsTable(),
      upstreams: [refused, `127.0.0.1:${failing.address().port}`],
      forwardTimeoutMs: FOREVER_MS,
    });
    const f = await allFail.listen();
    t.after(() => allFail.close());
    assert.equal((await rawAsk(f.port, encodeQuery(5, 'x.example', RR_TYPE.A))).rcode, RCODE.SERVFAIL);
  },
);

// A lab host's namespace has no default route, and its resolver (the machine's) is not on a
// connected network: sending to it fails with ENETUNREACH, which Node reports only to a send
// callback. The server runs in a namespace of this test's with loopback alone.
const UNREACHABLE_CHILD = `
const { EmbeddedDnsServer } = await import(process.env.SERVER_URL);
const { DnsTable } = await import(process.env.TABLE_URL);
const { encodeQuery, parseResponse } = await import(process.env.MESSAGE_URL);
const server = new EmbeddedDnsServer({ table: new DnsTable(), upstreams: ['198.18.0.53'], forwardTimeoutMs: 60000 });
const { port } = await server.listen();
const udp = await server.answer(encodeQuery(7, 'nosuch', 1), { address: '127.0.0.1', port: 1 }, 'udp');
const tcp = await server.answer(encodeQuery(8, 'nosuch', 1), { address: '127.0.0.1', port: 1 }, 'tcp');
await server.close();
console.log(JSON.stringify([parseResponse(udp).rcode, parseResponse(tcp).rcode, port > 0]));
`;

test(
  'embedded DNS: an upstream with no route to it gets SERVFAIL at once, not after the timeout',
  { timeout: 20_000 },
  async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root');
    const ns = `shoal-dnsu-${randomBytes(4).toString('hex')}`;
    const child = new AbortController();
    t.after(async () => {
      child.abort();
      if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]);
    });
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const url = (file: string): string => new URL(file, import.meta.url).href;
    const r = await run('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', UNREACHABLE_CHILD], {
      env: {
        ...process.env,
        SERVER_URL: url('./dns-server.js'),
        TABLE_URL: url('./dns-table.js'),
        MESSAGE_URL: url('./dns-message.js'),
      },
      signal: child.signal,
    });
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop() ?? ''), [RCODE.SERVFAIL, RCODE.SERVFAIL, true]);
  },
);

test('embedded DNS over TCP: whole answers, several queries per connection, and TC over UDP sends clients to TCP', async (t) => {
  // the upstream knows a name with more addresses than fit in 512 bytes
  const upstreamTable = new DnsTable();
  const far = Array.from({ length: 60 }, (_, i) => `198.18.1.${i + 1}`);
  for (const ip of far) upstreamTable.add('big.example', ip, 'any');
  const upstream = new EmbeddedDnsServer({ table: upstreamTable });
  const up = await upstream.listen();
  t.after(() => upstream.close());

  const table = new DnsTable();
  const many = Array.from({ length: 50 }, (_, i) => `198.19.130.${i + 2}`);
  for (const ip of many) table.add('tasks.many', ip, 'n1');
  table.add('web', '198.19.128.10', 'n1');
  const server = new EmbeddedDnsServer({ table, upstreams: [`127.0.0.1:${up.port}`], scope: () => new Set(['n1']) });
  const { port } = await server.listen();
  t.after(() => server.close());

  // over UDP the answer is cut with TC set; over TCP it is whole, with TC clear
  const udp = await rawAsk(port, encodeQuery(5, 'tasks.many', RR_TYPE.A));
  assert.equal(udp.truncated, true);
  const replies = await tcpAsk(port, [
    encodeQuery(6, 'tasks.many', RR_TYPE.A),
    encodeQuery(7, 'web', RR_TYPE.A),
    encodeQuery(8, 'big.example', RR_TYPE.A),
  ]);
  const whole = replies.get(6);
  assert.equal(whole?.truncated, false);
  assert.deepEqual(whole.answers.map((a) => a.data).sort(), [...many].sort());
  assert.deepEqual(
    replies.get(7)?.answers.map((a) => a.data),
    ['198.19.128.10'],
  );
  // forwarded over TCP: the upstream's whole answer
  assert.equal(replies.get(8)?.truncated, false);
  assert.deepEqual(
    replies
      .get(8)
      ?.answers.map((a) => a.data)
      .sort(),
    [...far].sort(),
  );
  // forwarded over UDP: the upstream's truncated answer is relayed as it is (TC set)...
  const fwd = await rawAsk(port, encodeQuery(9, 'big.example', RR_TYPE.A));
  assert.equal(fwd.truncated, true);
  assert.ok(fwd.answers.length < far.length);
  // ...so a real client (c-ares) asks again over TCP and gets every address, ours and forwarded
  const r = resolverFor(port);
  assert.deepEqual((await r.resolve4('tasks.many')).sort(), [...many].sort());
  assert.deepEqual((await r.resolve4('big.example')).sort(), [...far].sort());
});
