/**
 * Unit test of the driver alone: the core is replaced by a small scripted single-node fake (the
 * real core is exercised by the KV process tests and the simulator).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ConfChange,
  Entry,
  HardState,
  Message,
  RawNodeApi,
  RaftConfig,
  Ready,
  Snapshot,
  Status,
} from '../core/types.js';
import type { BootState, LogStore } from './log-store.js';
import { newMessage } from '../core/messages.js';
import type { Transport, TransportHandlers } from '../transport/transport.js';
import { RaftNode, type AppliedEntry, type StateMachine } from './raft-node.js';
import {
  NodeClosedError,
  ProposalDroppedError,
  ProposalOutcomeUnknownError,
  RaftInvariantError,
  StorageFatalError,
} from '../errors.js';

/** Single-node fake: every proposal is appended, then committed in the next Ready. */
class FakeCore implements RawNodeApi {
  term = 1;
  leader = 'n1';
  unstable: Entry[] = [];
  toCommit: Entry[] = [];
  last = 0;
  msgs: Message[] = [];
  softChanged = true;
  hs: HardState | undefined;
  constructor(readonly cfg: RaftConfig) {}
  tick(): void {}
  step(): void {}
  propose(data: Uint8Array): void {
    this.unstable.push({ term: this.term, index: ++this.last, type: 'normal', data });
  }
  proposeConfChange(): void {}
  applyConfChange(_cc: ConfChange) {
    return this.cfg.storage.initialState().confState;
  }
  campaign(): void {}
  readIndex(): void {}
  transferLeader(): void {}
  reportUnreachable(): void {}
  reportSnapshot(): void {}
  hasReady(): boolean {
    return this.unstable.length > 0 || this.toCommit.length > 0 || this.msgs.length > 0 || this.softChanged;
  }
  ready(): Ready {
    const rd: Ready = {
      ...(this.softChanged
        ? { softState: { leader: this.leader, role: this.leader === 'n1' ? 'leader' : 'follower' } }
        : {}),
      ...(this.hs ? { hardState: this.hs } : {}),
      entries: this.unstable,
      committedEntries: this.toCommit,
      messages: this.msgs,
      readStates: [],
      mustSync: this.unstable.length > 0 || this.hs !== undefined,
    };
    this.toCommit = this.unstable;
    this.unstable = [];
    this.msgs = [];
    this.softChanged = false;
    this.hs = undefined;
    return rd;
  }
  advance(): void {}
  status(): Status {
    throw new Error('unused');
  }
}

class SlowStore implements LogStore {
  readonly boot: BootState = { hardState: { term: 0, vote: '', commit: 0 }, snapshot: undefined, entries: [] };
  batches: number[] = [];
  events: string[] = [];
  async save(_hs: HardState | undefined, entries: readonly Entry[]): Promise<void> {
    this.events.push(`save:${entries.length}`);
    await sleep(20);
    this.batches.push(entries.length);
    this.events.push('saved');
  }
  async saveSnapshot(_s: Snapshot): Promise<void> {}
  async releaseTo(): Promise<void> {}
  async close(): Promise<void> {}
}

class RecordingTransport implements Transport {
  handlers: TransportHandlers | undefined;
  constructor(private readonly store: SlowStore) {}
  start(h: TransportHandlers): Promise<void> {
    this.handlers = h;
    return Promise.resolve();
  }
  send(msgs: readonly Message[]): void {
    for (const m of msgs) this.store.events.push(`send:${m.type}`);
  }
  setPeer(): void {}
  removePeer(): void {}
  async close(): Promise<void> {}
}

class Echo implements StateMachine {
  applied: number[] = [];
  apply(entries: readonly AppliedEntry[]): unknown[] {
    return entries.map((e) => {
      this.applied.push(e.index);
      return `applied:${Buffer.from(e.data).toString()}`;
    });
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  restore(): void {}
}

function setup(): { node: RaftNode; core: () => FakeCore; store: SlowStore; sm: Echo } {
  const store = new SlowStore();
  const sm = new Echo();
  let core: FakeCore | undefined;
  const node = new RaftNode({
    id: 'n1',
    store,
    transport: new RecordingTransport(store),
    stateMachine: sm,
    createRawNode: (cfg) => (core = new FakeCore(cfg)),
    decodeConfChange: () => {
      throw new Error('unused');
    },
    tickMs: 1000,
  });
  return { node, core: () => core!, store, sm };
}

const msg = (type: Message['type']): Message => newMessage(type, 'n2', { from: 'n1', term: 1 });

test('proposals made during an fsync are group-committed in the next batch and resolve on apply', async (t) => {
  const { node, store, sm } = setup();
  await node.start();
  t.after(() => node.close());
  const first = node.propose(Buffer.from('a'));
  await sleep(5); // the first batch is now being persisted
  const rest = Array.from({ length: 50 }, (_, i) => node.propose(Buffer.from(`b${i}`)));
  assert.equal(await first, 'applied:a');
  const results = await Promise.all(rest);
  assert.equal(results[49], 'applied:b49');
  assert.deepEqual(store.batches.slice(0, 2), [1, 50]);
  assert.deepEqual(
    sm.applied,
    Array.from({ length: 51 }, (_, i) => i + 1),
  );
});

test('a leader sends appends before its fsync; acks and votes wait for it', async (t) => {
  const { node, core, store } = setup();
  await node.start();
  t.after(() => node.close());
  await sleep(10);
  store.events.length = 0;
  const c = core();
  c.propose(Buffer.from('x'));
  c.msgs = [msg('app'), msg('voteResp')];
  await node.propose(Buffer.from('y'));
  const i = store.events.indexOf('send:app');
  assert.ok(i >= 0 && i < store.events.indexOf('saved'), store.events.join(' '));
  assert.ok(store.events.indexOf('send:voteResp') > store.events.indexOf('saved'), store.events.join(' '));
  // A follower sends nothing before its entries are durable.
  c.leader = 'n2';
  c.softChanged = true;
  store.events.length = 0;
  c.msgs = [msg('appResp')];
  // Any call wakes the driver; this proposal is cut off by the leader change (outcome unknown).
  await assert.rejects(node.propose(Buffer.from('z')), ProposalOutcomeUnknownError);
  await sleep(60);
  assert.ok(store.events.indexOf('send:appResp') > store.events.indexOf('saved'), store.events.join(' '));
});

test('pending proposals are rejected as outcome-unknown when the leader changes', async (t) => {
  const { node, core } = setup();
  await node.start();
  t.after(() => node.close());
  await sleep(10);
  const c = core();
  // Swallow the proposal so that it never commits, then change leader.
  c.propose = () => undefined;
  const p = node.propose(Buffer.from('lost?'));
  c.leader = 'n3';
  c.softChanged = true;
  c.msgs = [msg('heartbeatResp')];
  await assert.rejects(p, ProposalOutcomeUnknownError);
  const ac = new AbortController();
  const q = node.propose(Buffer.from('abort me'), { signal: ac.signal });
  ac.abort();
  await assert.rejects(q, /aborted/);
});

test('a fatal storage error stops the node, rejects pending work and reports once', async (t) => {
  const store = new SlowStore();
  const fatal: Error[] = [];
  store.save = () => Promise.reject(new StorageFatalError('/x', 'fdatasync', { cause: new Error('EIO') }));
  const node = new RaftNode({
    id: 'n1',
    store,
    transport: new RecordingTransport(store),
    stateMachine: new Echo(),
    createRawNode: (cfg) => new FakeCore(cfg),
    decodeConfChange: () => {
      throw new Error('unused');
    },
    tickMs: 1000,
    onFatal: (err) => fatal.push(err),
  });
  await node.start();
  t.after(() => node.close());
  await assert.rejects(node.propose(Buffer.from('doomed')), NodeClosedError);
  await assert.rejects(node.propose(Buffer.from('after')), StorageFatalError);
  assert.equal(fatal.length, 1);
  assert.ok(fatal[0] instanceof StorageFatalError);
});

test('a broken core invariant stops the node instead of being logged; a refused input does not', async (t) => {
  const store = new SlowStore();
  const transport = new RecordingTransport(store);
  const fatal: Error[] = [];
  let core: FakeCore | undefined;
  const node = new RaftNode({
    id: 'n1',
    store,
    transport,
    stateMachine: new Echo(),
    createRawNode: (cfg) => (core = new FakeCore(cfg)),
    tickMs: 1000,
    onFatal: (err) => fatal.push(err),
  });
  await node.start();
  t.after(() => node.close());
  assert.equal(await node.propose(Buffer.from('before')), 'applied:before');
  // An expected refusal (a RaftError that is not an invariant) is only logged.
  core!.step = () => {
    throw new ProposalDroppedError('no leader');
  };
  transport.handlers!.onMessage(newMessage('app', 'n1', { from: 'n2', term: 1 }));
  assert.equal(await node.propose(Buffer.from('still')), 'applied:still');
  assert.equal(fatal.length, 0);
  // A broken invariant stops the node: pending and later work is refused, onFatal hears once.
  core!.propose = () => undefined;
  const pending = node.propose(Buffer.from('pending'));
  core!.step = () => {
    throw new RaftInvariantError('commit 9 is beyond the last index 3');
  };
  transport.handlers!.onMessage(newMessage('app', 'n1', { from: 'n2', term: 1 }));
  transport.handlers!.onMessage(newMessage('app', 'n1', { from: 'n2', term: 1 }));
  await assert.rejects(pending, NodeClosedError);
  await assert.rejects(node.propose(Buffer.from('after')), RaftInvariantError);
  assert.equal(fatal.length, 1);
  assert.ok(fatal[0] instanceof RaftInvariantError);
});
