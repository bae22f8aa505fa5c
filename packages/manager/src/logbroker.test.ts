/**
 * The LogBroker's fan-out with in-memory nodes: a subscription reaches exactly the nodes that
 * ran the selected tasks, their lines come back with the node's own ID, it ends once every node
 * closed; nodes that are not connected, disconnect or never answer are named and skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SubscribeLogsMessage, SubscriptionMessage } from '@shoal/api';
import { hasCode } from '@shoal/common';
import { LogBroker } from './logbroker.js';
import { rig, type Rig } from './test-support.js';

const who = (nodeId: string): { nodeId: string; addr: string } => ({ nodeId, addr: '' });

async function seed(r: Rig): Promise<void> {
  await r.store.update((tx) => {
    for (const [id, host, state] of [
      ['n2', 'h2', 'ready'],
      ['n3', 'h3', 'ready'],
      ['n4', 'h4', 'down'],
    ] as const)
      tx.create('node', { ID: id, Description: { Hostname: host }, Status: { State: state }, Spec: {} });
    const task = (id: string, service: string, node: string): { ID: string } & Record<string, unknown> => ({
      ID: id,
      ServiceID: service,
      NodeID: node,
      Slot: 1,
      DesiredState: 'running',
      Status: { State: 'running' },
      Spec: {},
    });
    tx.create('task', task('t1', 'web', 'mgr1'));
    tx.create('task', task('t2', 'web', 'n2'));
    tx.create('task', task('t3', 'other', 'n3'));
    tx.create('task', task('t4', 'db', 'n2'));
    tx.create('task', task('t5', 'db', 'n4'));
  });
}

/** A node's listener: the subscriptions it received, and a way to disconnect it. */
function connect(b: LogBroker, nodeId: string): { got: SubscriptionMessage[]; close: () => void; done: Promise<void> } {
  const ac = new AbortController();
  const got: SubscriptionMessage[] = [];
  const done = b.listen({}, who(nodeId), (m) => got.push(m), ac.signal);
  return { got, close: () => ac.abort(), done };
}

function subscriber(): { out: SubscribeLogsMessage[]; write: (m: SubscribeLogsMessage) => Promise<void> } {
  const out: SubscribeLogsMessage[] = [];
  return { out, write: (m) => Promise.resolve(void out.push(m)) };
}

const line = (task: string, text: string, node = 'forged'): Record<string, unknown> => ({
  Context: { ServiceID: 'web', NodeID: node, TaskID: task },
  Timestamp: '2026-11-29T04:00:00.000000000Z',
  Stream: 'stdout',
  Data: Buffer.from(text),
  Complete: true,
});

test('logbroker: a subscription reaches the nodes of the service, merges their lines, ends when all closed', async () => {
  const r = await rig();
  try {
    await seed(r);
    const b = new LogBroker(r.manager.ctx);
    const [m1, n2, n3] = [connect(b, 'mgr1'), connect(b, 'n2'), connect(b, 'n3')];
    const s = subscriber();
    const sub = b.subscribe(
      { Selector: { ServiceIDs: ['web'] }, Options: { Tail: 5 } },
      s.write,
      new AbortController().signal,
    );
    assert.equal(m1.got.length, 1);
    assert.equal(n2.got.length, 1);
    assert.equal(n3.got.length, 0, 'a node without tasks of the service is not asked');
    const id = m1.got[0]!.ID!;
    assert.equal(n2.got[0]!.ID, id);
    assert.deepEqual(m1.got[0]!.Options, { Follow: false, Tail: 5, Since: '' });

    await b.publish({ SubscriptionID: id, Messages: [] }, who('mgr1'));
    await b.publish({ SubscriptionID: id, Messages: [line('t1', 'a')] as never }, who('mgr1'));
    await b.publish({ SubscriptionID: id, Messages: [line('t2', 'b')] as never, Close: true }, who('n2'));
    // Still open: mgr1 has not closed.
    let ended = false;
    void sub.then(() => (ended = true));
    await new Promise((res) => setImmediate(res));
    assert.equal(ended, false);
    await b.publish({ SubscriptionID: id, Close: true }, who('mgr1'));
    await sub;
    const lines = s.out.flatMap((m) => m.Messages ?? []);
    assert.deepEqual(
      lines.map((m) => [m.Context?.NodeID, Buffer.from(m.Data!).toString()]),
      [
        ['mgr1', 'a'],
        ['n2', 'b'],
      ],
      'the node ID is the caller, not what it claims',
    );
    assert.deepEqual(
      s.out.flatMap((m) => m.NodeErrors ?? []),
      [],
    );
    // A late publish for the ended subscription is refused.
    await assert.rejects(b.publish({ SubscriptionID: id, Messages: [] }, who('n2')), (e) =>
      hasCode(e, 'MANAGER_LOG_SUBSCRIPTION_GONE'),
    );
    for (const n of [m1, n2, n3]) n.close();
  } finally {
    r.manager.stop();
  }
});

test('logbroker: a down, unconnected, disconnecting or silent node is named and skipped', async () => {
  const r = await rig();
  try {
    await seed(r);
    // db runs on n2 (connected) and n4 (down): n4 is named at once, n2's logs still end the stream.
    const b = new LogBroker(r.manager.ctx, 200);
    const n2 = connect(b, 'n2');
    const s = subscriber();
    const sub = b.subscribe({ Selector: { ServiceIDs: ['db'] } }, s.write, new AbortController().signal);
    const id = n2.got[0]!.ID!;
    await b.publish({ SubscriptionID: id, Messages: [line('t4', 'db-line')] as never, Close: true }, who('n2'));
    await sub;
    assert.deepEqual(
      s.out.flatMap((m) => m.NodeErrors ?? []),
      [{ NodeID: 'n4', Message: 'node h4 (n4): is down' }],
    );
    assert.equal(s.out.flatMap((m) => m.Messages ?? []).length, 1);

    // web on mgr1 (not connected) and n2 (disconnects before closing).
    const s2 = subscriber();
    const sub2 = b.subscribe({ Selector: { ServiceIDs: ['web'] } }, s2.write, new AbortController().signal);
    n2.close();
    await n2.done;
    await sub2;
    assert.deepEqual(s2.out.flatMap((m) => (m.NodeErrors ?? []).map((e) => e.Message)).sort(), [
      'node h1 (mgr1): is not connected to the leader',
      'node h2 (n2): disconnected before sending all its logs',
    ]);

    // A connected node that never answers: named after the acknowledgement timeout.
    const n2b = connect(b, 'n2');
    const s3 = subscriber();
    await b.subscribe({ Selector: { TaskIDs: ['t4'] } }, s3.write, new AbortController().signal);
    assert.deepEqual(
      s3.out.flatMap((m) => (m.NodeErrors ?? []).map((e) => e.Message)),
      ['node h2 (n2): did not answer within 0.2 s'],
    );
    assert.equal(n2b.got.at(-1)?.Close, true, 'the node is told to stop');
    n2b.close();
  } finally {
    r.manager.stop();
  }
});

test('logbroker: follow stays open until the subscriber leaves, then the nodes are told to close', async () => {
  const r = await rig();
  try {
    await seed(r);
    const b = new LogBroker(r.manager.ctx);
    const n2 = connect(b, 'n2');
    const m1 = connect(b, 'mgr1');
    const s = subscriber();
    const ac = new AbortController();
    const sub = b.subscribe({ Selector: { ServiceIDs: ['web'] }, Options: { Follow: true } }, s.write, ac.signal);
    const id = n2.got[0]!.ID!;
    await b.publish({ SubscriptionID: id, Messages: [line('t2', 'x')] as never }, who('n2'));
    await b.publish({ SubscriptionID: id, Messages: [] }, who('mgr1'));
    // A task of the service placed later on another node brings that node in.
    const n3 = connect(b, 'n3');
    assert.equal(n3.got.length, 0);
    await r.store.update((tx) => {
      tx.create('task', { ID: 't9', ServiceID: 'web', NodeID: 'n3', Slot: 2, DesiredState: 'running', Spec: {} });
    });
    while (n3.got.length === 0) await new Promise((res) => setTimeout(res, 5));
    assert.equal(n3.got[0]!.ID, id);
    await b.publish({ SubscriptionID: id, Messages: [line('t9', 'late')] as never }, who('n3'));
    ac.abort();
    await sub;
    assert.equal(s.out.flatMap((m) => m.Messages ?? []).length, 2);
    assert.deepEqual(n3.got.at(-1), { ID: id, Close: true });
    n3.close();
    assert.deepEqual(n2.got.at(-1), { ID: id, Close: true });
    assert.deepEqual(m1.got.at(-1), { ID: id, Close: true });
    n2.close();
    m1.close();
  } finally {
    r.manager.stop();
  }
});

test('logbroker: bad requests and callers are refused', async () => {
  const r = await rig();
  try {
    await seed(r);
    const b = new LogBroker(r.manager.ctx);
    const never = new AbortController().signal;
    await assert.rejects(
      b.subscribe({ Selector: {} }, () => Promise.resolve(), never),
      (e) => hasCode(e, 'MANAGER_INVALID_REQUEST'),
    );
    await assert.rejects(
      b.subscribe(
        { Selector: { ServiceIDs: ['web'] }, Options: { Since: 'yesterday' } },
        () => Promise.resolve(),
        never,
      ),
      /Options.Since "yesterday" is not a time/,
    );
    await assert.rejects(
      b.listen({}, { addr: '' }, () => undefined, never),
      (e) => hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'),
    );
    const n2 = connect(b, 'n2');
    const ac = new AbortController();
    const sub = b.subscribe(
      { Selector: { ServiceIDs: ['db'] }, Options: { Follow: true } },
      () => Promise.resolve(),
      ac.signal,
    );
    const id = n2.got[0]!.ID!;
    await assert.rejects(b.publish({ SubscriptionID: id, Messages: [] }, who('n3')), (e) =>
      hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'),
    );
    ac.abort();
    await sub;
    n2.close();
    r.raft.leader = 'other';
    await assert.rejects(
      b.subscribe({ Selector: { ServiceIDs: ['web'] } }, () => Promise.resolve(), never),
      (e) => hasCode(e, 'MANAGER_NOT_LEADER'),
    );
  } finally {
    r.manager.stop();
  }
});
