// The DNS codec and name table, pure: queries parse (compression, EDNS size, bad input), responses
// carry the answers that fit with TC set otherwise, and the table scopes names by network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsFormatError, InvalidDnsNameError } from '../errors.js';
import { RCODE, RR_TYPE, encodeQuery, encodeResponse, parseQuery, parseResponse } from './dns-message.js';
import { DnsTable } from './dns-table.js';
import { containerResolvConf, dnsRedirectRules, resolvConfNameservers } from './dns-redirect.js';
import { TcpFramer, frame } from './dns-tcp.js';

test('a query round-trips; names are matched lower case; EDNS raises the UDP size', () => {
  const q = parseQuery(encodeQuery(0x1234, 'Tasks.Web', RR_TYPE.A));
  assert.deepEqual(q, {
    id: 0x1234,
    opcode: 0,
    rd: true,
    question: { name: 'tasks.web', type: 1, class: 1 },
    udpSize: 512,
  });
  // an OPT record (name root, type 41, class = UDP size 1232) in the additional section
  const base = encodeQuery(7, 'web', RR_TYPE.A);
  base.writeUInt16BE(1, 10); // ARCOUNT
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
  assert.equal(parseQuery(Buffer.concat([base, opt])).udpSize, 1232);
});

test('malformed queries are refused with a typed error', () => {
  assert.throws(() => parseQuery(Buffer.from([1, 2, 3])), DnsFormatError);
  const two = encodeQuery(1, 'a', RR_TYPE.A);
  two.writeUInt16BE(2, 4);
  assert.throws(() => parseQuery(two), /2 questions/);
  const loop = Buffer.concat([encodeQuery(1, 'a', RR_TYPE.A).subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  assert.throws(() => parseQuery(loop), /compression loop/);
  const cut = encodeQuery(1, 'abcdef', RR_TYPE.A).subarray(0, 16);
  assert.throws(() => parseQuery(cut), /past the end/);
  const resp = encodeResponse(parseQuery(encodeQuery(1, 'a', RR_TYPE.A)), 0, [], false);
  assert.throws(() => parseQuery(resp), /a response/);
});

test('a response carries what fits in 512 bytes and sets TC for the rest', () => {
  const q = parseQuery(encodeQuery(9, 'tasks.big', RR_TYPE.A));
  const answers = Array.from({ length: 60 }, (_, i) => ({
    name: 'tasks.big',
    type: RR_TYPE.A,
    ttl: 600,
    data: `198.19.128.${i + 2}`,
  }));
  const buf = encodeResponse(q, RCODE.NOERROR, answers, true);
  assert.ok(buf.length <= 512, `${buf.length} bytes`);
  const r = parseResponse(buf);
  assert.equal(r.truncated, true);
  assert.equal(r.authoritative, true);
  assert.equal(r.id, 9);
  // 12 header + 15 question, 16 per compressed A answer
  assert.equal(r.answers.length, Math.floor((512 - 12 - 15) / 16));
  assert.deepEqual(r.answers[0], { name: 'tasks.big', type: 1, ttl: 600, data: '198.19.128.2' });
  const few = parseResponse(encodeResponse(q, RCODE.NOERROR, answers.slice(0, 3), true));
  assert.equal(few.truncated, false);
  assert.equal(few.answers.length, 3);
});

test('the table answers per network, without duplicates, and forgets removed records', () => {
  const t = new DnsTable();
  t.add('web', '198.19.128.10', 'n1');
  t.add('tasks.web', '198.19.128.11', 'n1');
  t.add('tasks.web', '198.19.128.12', 'n1');
  t.add('tasks.web', '198.19.128.12', 'n1'); // again: no change
  t.add('WEB.', '198.19.129.10', 'n2');
  assert.equal(t.size, 4);
  assert.deepEqual(t.lookup('web', new Set(['n1'])), ['198.19.128.10']);
  assert.deepEqual(t.lookup('Web.', new Set(['n2'])), ['198.19.129.10']);
  assert.deepEqual(t.lookup('web'), ['198.19.128.10', '198.19.129.10']);
  assert.deepEqual(t.lookup('web', new Set(['n3'])), []);
  assert.deepEqual(t.lookup('tasks.web', new Set(['n1'])), ['198.19.128.11', '198.19.128.12']);
  assert.deepEqual(t.reverse('198.19.128.12', new Set(['n1'])), ['tasks.web']);
  t.remove('tasks.web', '198.19.128.12', 'n1');
  t.remove('tasks.web', '198.19.128.99', 'n1'); // absent: fine
  assert.deepEqual(t.lookup('tasks.web'), ['198.19.128.11']);
  t.removeNetwork('n1');
  assert.deepEqual(t.lookup('tasks.web'), []);
  assert.equal(t.size, 1);
  assert.throws(() => t.add('bad name', '198.19.128.1', 'n1'), InvalidDnsNameError);
  assert.throws(() => t.add('-x', '198.19.128.1', 'n1'), /label "-x"/);
  assert.throws(() => t.add('ok', '198.19.128', 'n1'), /not an IPv4 address/);
  assert.equal(t.size, 1);
});

test("<name>.<network name> resolves on that network only, in Docker's order", () => {
  const t = new DnsTable();
  t.add('web', '198.19.128.10', 'id1');
  t.add('tasks.web', '198.19.128.11', 'id1');
  t.add('web', '198.19.129.10', 'id2');
  t.add('db', '198.19.130.5', 'id3');
  t.setNetworkName('id1', 'Tools');
  t.setNetworkName('id2', 'back.end');
  t.setNetworkName('id3', 'other');
  const both = new Set(['id1', 'id2']);
  assert.deepEqual(t.resolve('web.tools', both), ['198.19.128.10']);
  assert.deepEqual(t.resolve('WEB.Tools.', both), ['198.19.128.10']);
  assert.deepEqual(t.resolve('tasks.web.tools', both), ['198.19.128.11']);
  // a network name with a dot: `a` on network `b.c`
  assert.deepEqual(t.resolve('web.back.end', both), ['198.19.129.10']);
  // the plain name first, on every network of the client
  assert.deepEqual(t.resolve('web', both).sort(), ['198.19.128.10', '198.19.129.10']);
  // a network the client is not on, or a name that network does not have: nothing
  assert.deepEqual(t.resolve('db.other', both), []);
  assert.deepEqual(t.resolve('db.other', new Set(['id3'])), ['198.19.130.5']);
  assert.deepEqual(t.resolve('web.other', new Set(['id1', 'id3'])), []);
  assert.deepEqual(t.resolve('tools', both), []);
  assert.deepEqual(t.resolve('nosuch.tools', both), []);
  // a full name the table has wins over the split (Docker tries it first)
  t.add('web.tools', '198.19.128.99', 'id2');
  assert.deepEqual(t.resolve('web.tools', both), ['198.19.128.99']);
  // a network that is gone (or renamed) no longer answers to its name
  t.removeNetwork('id2');
  assert.deepEqual(t.resolve('web.tools', both), ['198.19.128.10']);
  assert.deepEqual(t.resolve('web.back.end', both), []);
  t.setNetworkName('id1', 'renamed');
  assert.deepEqual(t.resolve('web.tools', both), []);
  assert.deepEqual(t.resolve('web.renamed', both), ['198.19.128.10']);
  t.setNetworkName('id1', undefined);
  assert.deepEqual(t.resolve('web.renamed', both), []);
});

test("the container's resolv.conf points at 127.0.0.11; the host's resolvers are forwarded to", () => {
  const host =
    '# generated\nsearch corp.example lab.example\nnameserver 198.18.0.53\nnameserver ::1\noptions ndots:2\n';
  assert.equal(containerResolvConf(host), 'nameserver 127.0.0.11\nsearch corp.example lab.example\noptions ndots:0\n');
  assert.equal(containerResolvConf(''), 'nameserver 127.0.0.11\noptions ndots:0\n');
  assert.deepEqual(resolvConfNameservers(host), ['198.18.0.53']);
});

test('the DNS redirect rules: DNAT 127.0.0.11:53 to the server, SNAT to the uplink address; bad input refused', () => {
  const rules = dnsRedirectRules({
    uplink: 'eth1',
    uplinkAddress: '198.19.250.2/24',
    server: { address: '198.19.250.1', port: 40053 },
  });
  assert.match(rules, /ip daddr 127\.0\.0\.11 udp dport 53 dnat to 198\.19\.250\.1:40053/);
  assert.match(rules, /ip daddr 198\.19\.250\.1 udp dport 40053 oifname "eth1" snat to 198\.19\.250\.2:61000-65535\n/);
  // TCP too (clients retry a truncated answer over TCP)
  assert.match(rules, /ip daddr 127\.0\.0\.11 tcp dport 53 dnat to 198\.19\.250\.1:40053/);
  assert.match(rules, /ip daddr 198\.19\.250\.1 tcp dport 40053 oifname "eth1" snat to 198\.19\.250\.2:61000-65535\n/);
  const only = dnsRedirectRules({
    uplink: 'eth1',
    uplinkAddress: '198.19.250.2/24',
    server: { address: '198.19.250.1', port: 40053 },
    exclusive: true,
  });
  assert.match(only, /oifname "eth1" ip daddr 198\.19\.250\.1 tcp dport 40053 accept/);
  assert.throws(
    () => dnsRedirectRules({ uplink: 'eth1', uplinkAddress: 'x', server: { address: '198.19.250.1', port: 53 } }),
    /uplink address/,
  );
  assert.throws(
    () =>
      dnsRedirectRules({
        uplink: 'eth 1',
        uplinkAddress: '198.19.250.2',
        server: { address: '198.19.250.1', port: 53 },
      }),
    /interface name/,
  );
  assert.throws(
    () =>
      dnsRedirectRules({ uplink: 'eth1', uplinkAddress: '198.19.250.2', server: { address: '198.19.250.1', port: 0 } }),
    /port 0/,
  );
});

test('DNS over TCP: messages framed with a two-byte length come out whole, however the stream is cut', () => {
  const a = encodeQuery(1, 'web', RR_TYPE.A);
  const b = encodeQuery(2, 'tasks.web', RR_TYPE.A);
  const stream = Buffer.concat([frame(a), frame(b)]);
  assert.equal(stream.readUInt16BE(0), a.length);
  for (const cut of [1, 2, 3, a.length + 1, a.length + 2, a.length + 3, stream.length - 1]) {
    const f = new TcpFramer();
    const got = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
    assert.deepEqual(got, [a, b], `cut at ${cut}`);
    assert.equal(f.buffered, 0);
  }
  const f = new TcpFramer();
  const bytes: Buffer[] = [];
  for (const byte of stream) bytes.push(...f.push(Buffer.from([byte])));
  assert.deepEqual(bytes, [a, b]);
  assert.throws(() => frame(Buffer.alloc(65536)), RangeError);
});
