/**
 * The dispatcher's Assignments stream and UpdateTaskStatus over real grpc-js on loopback. Two
 * worker nodes, each with its own session: a node gets only its own tasks and exactly the
 * secrets (with their bytes) and configs those tasks reference, never another node's secret;
 * incremental updates and removes follow store changes; status updates are batched (several
 * calls, fewer store revisions), move states forward only, and a node cannot update another
 * node's task.
 *
 * Tasks are written into the store directly, as the orchestrator and scheduler (other parts)
 * leave them: state `assigned` with `NodeID` set. The allocator and scheduler loops are stopped
 * there so that they do not touch these tasks; the last test runs them, from tasks in state
 * `new` as the orchestrator creates them to containers reported running.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, Server, ServerCredentials } from '@grpc/grpc-js';
import {
  type AssignmentsMessage,
  DispatcherClient,
  DispatcherService,
  serverStream,
  type Task,
  unary,
} from '@shoal/api';
import { hasCode } from '@shoal/common';
import type { StoredObject } from '@shoal/store';
import { Manager } from './manager.js';
import { newCsr, rig, type Rig } from './test-support.js';

type StoredTask = Task & StoredObject;

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}

interface Worker {
  id: string;
  md: Metadata;
  sessionId: string;
  messages: AssignmentsMessage[];
  streamEnded: Promise<unknown>;
}

async function setup(
  t: TestContext,
  opts: { loops?: boolean } = {},
): Promise<{ r: Rig; m: Manager; client: DispatcherClient; workers: Worker[] }> {
  const r = await rig();
  r.manager.stop();
  // The caller's node comes from a test header here (TLS identities are tested in mtls.test.ts).
  const m = new Manager({
    nodeId: 'mgr1',
    store: r.store,
    raft: r.raft,
    rootCA: r.root,
    clock: r.clock,
    identify: (call) => {
      const id = call.metadata.get('x-test-node')[0];
      return typeof id === 'string' ? { nodeId: id, role: 'worker', addr: '127.0.0.1' } : { addr: '127.0.0.1' };
    },
  });
  m.start();
  m.orchestrator.stop(); // its reaper would delete the tasks these tests write for no service
  if (opts.loops !== true) {
    m.allocator.stop();
    m.scheduler.stop();
  }
  const server = new Server();
  server.addService(DispatcherService, m.services().Dispatcher);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const client = new DispatcherClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const ac = new AbortController();
  t.after(() => {
    ac.abort();
    m.stop();
    client.close();
    server.forceShutdown();
  });
  const workers: Worker[] = [];
  for (const name of ['w1', 'w2']) {
    const joined = await r.manager.ca.issueNodeCertificate(
      { CSR: await newCsr(), Token: r.tokens().worker },
      { addr: '' },
    );
    const id = joined.NodeID ?? '';
    const md = new Metadata();
    md.set('x-test-node', id);
    const session = serverStream(
      client.session.bind(client),
      { Description: { Hostname: name } },
      { signal: ac.signal, metadata: md },
    );
    const first = await session.next();
    const sessionId = first.value?.SessionID ?? '';
    assert.notEqual(sessionId, '');
    // Keep reading the session stream in the background.
    void (async () => {
      for await (const msg of session) void msg;
    })().catch((err: unknown) => err);
    const messages: AssignmentsMessage[] = [];
    const streamEnded = (async () => {
      for await (const msg of serverStream(
        client.assignments.bind(client),
        { SessionID: sessionId },
        { signal: ac.signal, metadata: md },
      )) {
        messages.push(msg);
      }
    })().then(
      () => undefined,
      (err: unknown) => err,
    );
    workers.push({ id, md, sessionId, messages, streamEnded });
  }
  await until('both complete sets', () => workers.every((w) => w.messages.length >= 1));
  return { r, m, client, workers };
}

/** A secret or config object as svc-control stores it (Spec.Data kept in the store). */
function blob(id: string, name: string, data: string): { ID: string } & Record<string, unknown> {
  return { ID: id, Spec: { Name: name, Data: Buffer.from(data) } };
}

function taskOn(
  id: string,
  nodeId: string,
  secrets: string[] = [],
  configs: string[] = [],
  state = 'assigned',
): StoredTask {
  return {
    ID: id,
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Name: `web.1.${id}`,
    ServiceID: 'svc1',
    ServiceName: 'web',
    Slot: 1,
    NodeID: nodeId,
    DesiredState: 'running',
    Status: { State: state, Message: 'scheduler assigned task to node' },
    Spec: {
      ContainerSpec: {
        Image: 'registry.lab/busybox:latest',
        Secrets: secrets.map((s) => ({ SecretID: s, SecretName: s })),
        Configs: configs.map((c) => ({ ConfigID: c, ConfigName: c })),
      },
    },
  };
}

/** Every object a node holds after applying `messages` in order (kind:ID -> object). */
function held(messages: readonly AssignmentsMessage[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  let seq = '';
  for (const m of messages) {
    if (m.Type === 'complete') out.clear();
    else assert.equal(m.AppliesTo, seq, 'incremental messages chain');
    seq = m.ResultsIn ?? '';
    for (const c of m.Changes ?? []) {
      const a = c.Assignment;
      const [kind, o] = a?.Task ? ['task', a.Task] : a?.Secret ? ['secret', a.Secret] : ['config', a?.Config];
      const key = `${kind}:${o?.ID ?? ''}`;
      if (c.Action === 'remove') out.delete(key);
      else out.set(key, o);
    }
  }
  return out;
}

function secretBytes(messages: readonly AssignmentsMessage[]): string[] {
  const out: string[] = [];
  for (const m of messages)
    for (const c of m.Changes ?? []) {
      const d = c.Assignment?.Secret?.Spec?.Data;
      if (d !== undefined && d.length > 0) out.push(Buffer.from(d).toString());
    }
  return out;
}

test('assignments: each node gets its own tasks and exactly the secrets and configs they use', async (t) => {
  const { r, workers } = await setup(t);
  const [w1, w2] = workers;
  assert.ok(w1 && w2);
  assert.deepEqual(w1.messages[0], { Type: 'complete', AppliesTo: '', ResultsIn: '1', Changes: [] });

  await r.store.update((tx) => {
    tx.create('secret', blob('secA', 'alpha', 'alpha-bytes'));
    tx.create('secret', blob('secB', 'bravo', 'bravo-bytes'));
    tx.create('secret', blob('secUnused', 'unused', 'unused-bytes'));
    tx.create('config', blob('cfgA', 'conf-a', 'conf-bytes'));
    tx.create('task', { ...taskOn('t1', w1.id, ['secA'], ['cfgA']) });
    tx.create('task', { ...taskOn('t2', w2.id, ['secB']) });
    // Not yet assigned (pending with its node preset, as a global task): not sent.
    tx.create('task', { ...taskOn('t3', w1.id, ['secB'], [], 'pending') });
  });
  await until('w1 gets t1', () => held(w1.messages).has('task:t1'));
  await until('w2 gets t2', () => held(w2.messages).has('task:t2'));
  assert.deepEqual([...held(w1.messages).keys()].sort(), ['config:cfgA', 'secret:secA', 'task:t1']);
  assert.deepEqual([...held(w2.messages).keys()].sort(), ['secret:secB', 'task:t2']);
  assert.deepEqual(secretBytes(w1.messages), ['alpha-bytes'], 'the secret travels with its bytes');
  const cfg = held(w1.messages).get('config:cfgA') as { Spec?: { Data?: Uint8Array } };
  assert.equal(Buffer.from(cfg.Spec?.Data ?? new Uint8Array()).toString(), 'conf-bytes');
  // A secret travels before the task that uses it.
  const firstWithT1 = w1.messages.find((m) => (m.Changes ?? []).some((c) => c.Assignment?.Task?.ID === 't1'));
  assert.deepEqual(
    firstWithT1?.Changes?.map((c) => (c.Assignment?.Task ? 'task' : c.Assignment?.Secret ? 'secret' : 'config')),
    ['secret', 'config', 'task'],
  );

  // Incremental: a new task on w1 with a new secret; then that task ends and is shut down;
  // then t1 is deleted: its secret and config go too.
  await r.store.update((tx) => {
    tx.create('secret', blob('secC', 'charlie', 'charlie-bytes'));
    tx.create('task', { ...taskOn('t5', w1.id, ['secC']) });
  });
  await until('w1 gets t5 and secC', () => held(w1.messages).has('task:t5') && held(w1.messages).has('secret:secC'));
  const t5 = r.store.get<StoredTask>('task', 't5');
  assert.ok(t5);
  await r.store.update((tx) =>
    tx.update('task', { ...t5, DesiredState: 'shutdown', Status: { State: 'shutdown' } } as StoredTask),
  );
  await until('secC leaves w1', () => !held(w1.messages).has('secret:secC'));
  const t5held = held(w1.messages).get('task:t5') as Task | undefined;
  assert.equal(t5held?.DesiredState, 'shutdown', 'the node learns the new desired state');
  await r.store.update((tx) => tx.remove('task', 't1'));
  await until('t1 removed from w1', () => !held(w1.messages).has('task:t1'));
  assert.deepEqual([...held(w1.messages).keys()].sort(), ['task:t5']);

  // w2 never saw anything of w1's, nor the unused secret.
  assert.deepEqual(secretBytes(w2.messages), ['bravo-bytes']);
  for (const m of w2.messages) {
    for (const c of m.Changes ?? []) {
      assert.ok(!['t1', 't3', 't5'].includes(c.Assignment?.Task?.ID ?? ''), 'no task of another node');
    }
  }
  assert.ok(!secretBytes(w1.messages).includes('bravo-bytes'), 'w1 never gets the secret of a task not yet assigned');
  assert.ok(!secretBytes(w1.messages).includes('unused-bytes'));
});

test('assignments: a stream without a current session is refused', async (t) => {
  const { client, workers } = await setup(t);
  const w1 = workers[0];
  assert.ok(w1);
  const it = serverStream(client.assignments.bind(client), { SessionID: 'not-the-session' }, { metadata: w1.md });
  await assert.rejects(it.next(), (e) => hasCode(e, 'MANAGER_SESSION_INVALID'));
});

test('task status: batched into fewer transactions, forward only, own tasks only', async (t) => {
  const { r, client, workers } = await setup(t);
  const [w1, w2] = workers;
  assert.ok(w1 && w2);
  const ids = ['s1', 's2', 's3', 's4', 's5', 's6'];
  await r.store.update((tx) => {
    for (const id of ids) tx.create('task', { ...taskOn(id, w1.id) });
  });
  const call = (w: Worker, updates: { TaskID: string; Status: { State: string; Message?: string } }[]) =>
    unary(client.updateTaskStatus.bind(client), { SessionID: w.sessionId, Updates: updates }, { metadata: w.md });

  // Six calls at once, each moving one task to running: fewer than six store writes.
  const before = r.store.revision;
  await Promise.all(ids.map((id) => call(w1, [{ TaskID: id, Status: { State: 'running', Message: 'started' } }])));
  const written = r.store.revision - before;
  assert.ok(written >= 1 && written < ids.length, `six updates took ${written} transactions`);
  for (const id of ids) assert.equal(r.store.get<StoredTask>('task', id)?.Status?.State, 'running');

  // Backwards is ignored; forward is written.
  await call(w1, [{ TaskID: 's1', Status: { State: 'preparing' } }]);
  assert.equal(r.store.get<StoredTask>('task', 's1')?.Status?.State, 'running');
  await call(w1, [{ TaskID: 's1', Status: { State: 'complete', Message: 'finished' } }]);
  assert.equal(r.store.get<StoredTask>('task', 's1')?.Status?.State, 'complete');
  assert.notEqual(r.store.get<StoredTask>('task', 's1')?.Status?.Timestamp ?? '', '');

  // Several updates of one task in one call: the furthest state wins.
  await call(w1, [
    { TaskID: 's2', Status: { State: 'failed', Message: 'task: non-zero exit (1)' } },
    { TaskID: 's2', Status: { State: 'complete' } },
  ]);
  assert.equal(r.store.get<StoredTask>('task', 's2')?.Status?.State, 'failed');

  // w2 cannot touch w1's task: refused, nothing written, not even its own update in the same call.
  await r.store.update((tx) => tx.create('task', { ...taskOn('own2', w2.id) }));
  const rev = r.store.revision;
  await assert.rejects(
    call(w2, [
      { TaskID: 'own2', Status: { State: 'running' } },
      { TaskID: 's3', Status: { State: 'failed' } },
    ]),
    (e) => {
      assert.ok(hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'));
      assert.equal((e as { kind?: string }).kind, 'permission-denied');
      assert.match((e as Error).message, /task s3 is not assigned to node/);
      return true;
    },
  );
  assert.equal(r.store.revision, rev);
  assert.equal(r.store.get<StoredTask>('task', 's3')?.Status?.State, 'running');
  assert.equal(r.store.get<StoredTask>('task', 'own2')?.Status?.State, 'assigned');

  // An unknown state is a clear error.
  await assert.rejects(call(w1, [{ TaskID: 's4', Status: { State: 'sleeping' } }]), (e) =>
    hasCode(e, 'MANAGER_INVALID_REQUEST'),
  );
});

test('pipeline: new tasks are allocated, scheduled on the workers and reach them; the workers report them running', async (t) => {
  const { r, client, workers } = await setup(t, { loops: true });
  const [w1, w2] = workers;
  assert.ok(w1 && w2);
  await r.store.update((tx) => {
    tx.create('secret', blob('secP', 'pipeline', 'pipeline-bytes'));
    for (let slot = 1; slot <= 4; slot++) {
      const task = taskOn(`p${slot}`, '', ['secP'], [], 'new');
      task.Slot = slot;
      task.Spec = { ...task.Spec, Placement: { Constraints: ['node.role==worker'] } };
      tx.create('task', { ...task });
    }
  });
  const mine = (w: Worker): string[] => [...held(w.messages).keys()].filter((k) => k.startsWith('task:')).sort();
  await until('all four tasks reach the workers', () => mine(w1).length + mine(w2).length === 4);
  assert.equal(mine(w1).length, 2, 'two tasks per worker');
  assert.equal(mine(w2).length, 2);
  assert.ok(held(w1.messages).has('secret:secP') && held(w2.messages).has('secret:secP'));
  for (const w of [w1, w2]) {
    const updates = mine(w).map((k) => ({ TaskID: k.slice('task:'.length), Status: { State: 'running' } }));
    await unary(client.updateTaskStatus.bind(client), { SessionID: w.sessionId, Updates: updates }, { metadata: w.md });
  }
  for (let slot = 1; slot <= 4; slot++) {
    const task = r.store.get<StoredTask>('task', `p${slot}`);
    assert.equal(task?.Status?.State, 'running');
    assert.ok([w1.id, w2.id].includes(task.NodeID ?? ''));
  }
  // The running state travels back to the node that runs the task.
  await until('w1 sees its tasks running', () =>
    mine(w1).every((k) => (held(w1.messages).get(k) as Task).Status?.State === 'running'),
  );
});
