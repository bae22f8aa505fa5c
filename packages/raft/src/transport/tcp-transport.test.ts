import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TcpTransport } from './tcp-transport.js';
import type { Message } from '../core/types.js';
import { newMessage, type MessageFields } from '../core/messages.js';
import { waitFor } from '@shoal/common';

const until = (f: () => boolean, timeoutMs = 5000, intervalMs = 20): Promise<true> =>
  waitFor(() => (f() ? true : undefined), { timeoutMs, intervalMs });

function msg(from: string, to: string, extra: MessageFields & { type?: Message['type'] } = {}): Message {
  const { type = 'app', ...fields } = extra;
  return newMessage(type, to, { from, term: 1, ...fields });
}

function collector(): {
  got: Message[];
  unreachable: string[];
  snaps: [string, boolean][];
  h: Parameters<TcpTransport['start']>[0];
} {
  const got: Message[] = [];
  const unreachable: string[] = [];
  const snaps: [string, boolean][] = [];
  return {
    got,
    unreachable,
    snaps,
    h: {
      onMessage: (m) => got.push(m),
      onUnreachable: (id) => unreachable.push(id),
      onSnapshotStatus: (id, ok) => snaps.push([id, ok]),
    },
  };
}

test('messages flow both ways in order; big snapshots are chunked and reassembled', async (t) => {
  const a = new TcpTransport({ listen: '127.0.0.1:0', chunkSize: 64 * 1024 });
  const b = new TcpTransport({ listen: '127.0.0.1:0' });
  t.after(() => Promise.all([a.close(), b.close()]));
  const ca = collector();
  const cb = collector();
  await a.start(ca.h);
  await b.start(cb.h);
  a.setPeer('b', b.address());
  b.setPeer('a', a.address());
  // The first sends may be dropped while connecting: raft retries; so retry until delivered.
  await until(
    () => {
      a.send([msg('a', 'b', { index: 1 })]);
      return cb.got.length > 0;
    },
    5000,
    20,
  );
  cb.got.length = 0;
  const batch = Array.from({ length: 500 }, (_, i) =>
    msg('a', 'b', { index: i, entries: [{ term: 1, index: i + 1, type: 'normal', data: Buffer.from(`d${i}`) }] }),
  );
  a.send(batch);
  const withEntries = (): Message[] => cb.got.filter((m) => m.entries.length === 1);
  await until(() => withEntries().length === 500, 5000);
  assert.deepEqual(
    withEntries().map((m) => m.index),
    batch.map((m) => m.index),
  );
  assert.equal(Buffer.from(withEntries()[499]!.entries[0]!.data).toString(), 'd499');
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const cs = { voters: ['a', 'b'], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  a.send([msg('a', 'b', { type: 'snap', snapshot: { metadata: { index: 9, term: 2, confState: cs }, data } })]);
  await until(() => cb.got.some((m) => m.type === 'snap'), 5000);
  const s = cb.got.find((m) => m.type === 'snap')!;
  assert.ok(Buffer.from(s.snapshot!.data).equals(data));
  await until(() => ca.snaps.length === 1, 5000);
  assert.deepEqual(ca.snaps, [['b', true]]);
  await until(
    () => {
      b.send([msg('b', 'a', { type: 'appResp', index: 77 })]);
      return ca.got.some((m) => m.index === 77);
    },
    5000,
    20,
  );
});

test('an unreachable peer is reported, and the link recovers when it comes back', async (t) => {
  const a = new TcpTransport({ listen: '127.0.0.1:0' });
  const ca = collector();
  await a.start(ca.h);
  t.after(() => a.close());
  let b = new TcpTransport({ listen: '127.0.0.1:0' });
  const cb = collector();
  await b.start(cb.h);
  const addr = b.address();
  a.setPeer('b', addr);
  await b.close();
  await until(
    () => {
      a.send([msg('a', 'b')]);
      return ca.unreachable.includes('b');
    },
    5000,
    20,
  );
  b = new TcpTransport({ listen: addr });
  await b.start(cb.h);
  t.after(() => b.close());
  await until(
    () => {
      a.send([msg('a', 'b', { index: 5 })]);
      return cb.got.some((m) => m.index === 5);
    },
    10000,
    50,
  );
});
