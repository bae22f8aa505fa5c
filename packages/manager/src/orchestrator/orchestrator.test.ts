/**
 * The orchestrators on a real store (LocalLog) under a leader Manager, on a fake clock. The
 * scheduler and the worker are other components: these tests place tasks (`assign`: NodeID and
 * state assigned) and report their states (`report`) by writing the store as those would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SECOND_NS, type ServiceSpec } from '@shoal/api';
import type { StoredCluster } from '../context.js';
import type { StoredTask } from '../services/objects.js';
import { Plan } from './plan.js';
import { MAX_NEW_SLOTS_PER_PASS, reconcileReplicated } from './replicated.js';
import { activeOf, assign, report, servicesRig, setNode, slotCounts, tasksOf, workerNode } from './test-rig.js';

function spec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return { Name: name, TaskTemplate: { ContainerSpec: { Image: 'busybox:1' } }, ...over };
}

const replicas = (n: number): ServiceSpec['Mode'] => ({ Replicated: { Replicas: n } });

function slotsOf(tasks: readonly StoredTask[]): number[] {
  return tasks.map((t) => t.Slot ?? 0).sort((a, b) => a - b);
}

test('replicated: slots 1..N, scale up adds slots, scale down removes the not-running first, the reaper deletes them once stopped', async (t) => {
  const r = await servicesRig(['w1', 'w2']);
  t.after(() => r.close());
  const s = await r.create(spec('web', { Mode: replicas(3) }));
  const first = activeOf(r.store, s.ID);
  assert.deepEqual(slotsOf(first), [1, 2, 3]);
  for (const task of first) {
    assert.equal(task.Status?.State, 'new');
    assert.equal(task.DesiredState, 'running');
    assert.equal(task.ServiceName, 'web');
    assert.equal(task.NodeID, '');
    assert.equal(task.SpecVersion?.Index, 1);
    assert.equal(task.Spec?.ContainerSpec?.Image, 'busybox:1');
    assert.match(task.Name ?? '', new RegExp(`^web\\.${task.Slot}\\.${task.ID}$`));
  }
  await r.runAll(s.ID, ['w1', 'w1', 'w2']);

  await r.update(s.ID, (x) => ({ ...x, Mode: replicas(5) }));
  assert.deepEqual(slotsOf(activeOf(r.store, s.ID)), [1, 2, 3, 4, 5]);
  // Slots 4 and 5 are placed but only 5 runs: 4 is the one not running.
  const t4 = activeOf(r.store, s.ID).find((x) => x.Slot === 4);
  const t5 = activeOf(r.store, s.ID).find((x) => x.Slot === 5);
  assert.ok(t4 && t5);
  await assign(r.store, t4.ID, 'w2');
  await assign(r.store, t5.ID, 'w2');
  await report(r.store, t5.ID, 'running');
  await r.quiet();

  // Down to 3: slot 4 (not running) goes first, then one on w1 (the node with most tasks: w1 has
  // slots 1, 2 and w2 has 3, 5... equal load, so the highest slot among them, 5).
  await r.update(s.ID, (x) => ({ ...x, Mode: replicas(3) }));
  const left = activeOf(r.store, s.ID);
  assert.equal(left.length, 3);
  assert.ok(!left.some((x) => x.Slot === 4), 'the task that was not running went first');
  const removing = tasksOf(r.store, s.ID).filter((x) => x.DesiredState === 'remove');
  assert.equal(removing.length, 2);
  // The not-running, assigned task 4 still has a node that may run it: kept until it reports.
  for (const x of removing) {
    assert.ok(r.store.get('task', x.ID), 'not deleted before it stopped');
    await report(r.store, x.ID, 'shutdown');
  }
  await r.quiet();
  for (const x of removing) assert.equal(r.store.get('task', x.ID), undefined, 'reaped once stopped');
  assert.equal(slotCounts(r.store, s.ID).size, 3);

  // Scale up again: new slots reuse free numbers, nothing doubles.
  await r.update(s.ID, (x) => ({ ...x, Mode: replicas(4) }));
  const counts = slotCounts(r.store, s.ID);
  assert.equal(counts.size, 4);
  for (const c of counts.values()) assert.equal(c, 1);
});

test('global: one task per eligible node, following joins, drain, pause, active and removal', async (t) => {
  const r = await servicesRig(['w1', 'w2']);
  t.after(() => r.close());
  const s = await r.create(spec('agent', { Mode: { Global: {} } }));
  const nodesOf = (): string[] =>
    activeOf(r.store, s.ID)
      .map((x) => x.NodeID ?? '')
      .sort();
  assert.deepEqual(nodesOf(), ['mgr1', 'w1', 'w2']);
  for (const x of activeOf(r.store, s.ID)) {
    assert.equal(x.Slot, 0);
    assert.match(x.Name ?? '', new RegExp(`^agent\\.${x.NodeID}\\.${x.ID}$`));
  }
  await r.runAll(s.ID, []);

  // A node joins (ready after its session).
  await r.store.update((tx) => tx.create('node', workerNode('w3')));
  await r.quiet();
  assert.deepEqual(nodesOf(), ['mgr1', 'w1', 'w2', 'w3']);

  // Drain w1: its task is shut down and not replaced; pause w2: kept.
  const onW1 = activeOf(r.store, s.ID).find((x) => x.NodeID === 'w1');
  assert.ok(onW1);
  await setNode(r.store, 'w1', (n) => ({ ...n, Spec: { ...n.Spec, Availability: 'drain' } }));
  await setNode(r.store, 'w2', (n) => ({ ...n, Spec: { ...n.Spec, Availability: 'pause' } }));
  await r.quiet();
  assert.deepEqual(nodesOf(), ['mgr1', 'w2', 'w3']);
  assert.equal(r.store.get<StoredTask>('task', onW1.ID)?.DesiredState, 'shutdown');
  await report(r.store, onW1.ID, 'shutdown');
  await r.quiet();
  assert.deepEqual(nodesOf(), ['mgr1', 'w2', 'w3'], 'a drained node gets no new task');

  // Active again: w1 gets a new task.
  await setNode(r.store, 'w1', (n) => ({ ...n, Spec: { ...n.Spec, Availability: 'active' } }));
  await r.quiet();
  assert.deepEqual(nodesOf(), ['mgr1', 'w1', 'w2', 'w3']);

  // w2 goes down: its task is shut down and not replaced elsewhere. Back ready, it gets a new
  // task, held back until the old one (which its worker may still run) reports it stopped.
  const onW2 = activeOf(r.store, s.ID).find((x) => x.NodeID === 'w2');
  assert.ok(onW2);
  await setNode(r.store, 'w2', (n) => ({
    ...n,
    Spec: { ...n.Spec, Availability: 'active' },
    Status: { ...n.Status, State: 'down' },
  }));
  await r.quiet();
  assert.deepEqual(nodesOf(), ['mgr1', 'w1', 'w3']);
  assert.equal(r.store.get<StoredTask>('task', onW2.ID)?.DesiredState, 'shutdown');
  await setNode(r.store, 'w2', (n) => ({ ...n, Status: { ...n.Status, State: 'ready' } }));
  await r.quiet();
  const back = activeOf(r.store, s.ID).find((x) => x.NodeID === 'w2');
  assert.ok(back && back.ID !== onW2.ID);
  assert.equal(back.DesiredState, 'ready', 'not started next to the old one');
  await report(r.store, onW2.ID, 'shutdown');
  await r.quiet();
  assert.equal(r.store.get<StoredTask>('task', back.ID)?.DesiredState, 'running');

  // A removed node loses its task.
  const onW3 = activeOf(r.store, s.ID).find((x) => x.NodeID === 'w3');
  assert.ok(onW3);
  await r.store.update((tx) => tx.remove('node', 'w3'));
  await r.quiet();
  assert.equal(
    r.store.get<StoredTask>('task', onW3.ID)?.DesiredState ?? 'deleted',
    'deleted',
    'reaped: its node is gone',
  );
  assert.deepEqual(nodesOf(), ['mgr1', 'w1', 'w2']);
});

test('global with a constraint runs only on matching nodes and follows label changes', async (t) => {
  const r = await servicesRig(['w1', 'w2']);
  t.after(() => r.close());
  await setNode(r.store, 'w2', (n) => ({ ...n, Spec: { ...n.Spec, Labels: { zone: 'b' } } }));
  const s = await r.create(
    spec('zoned', {
      Mode: { Global: {} },
      TaskTemplate: { ContainerSpec: { Image: 'busybox:1' }, Placement: { Constraints: ['node.labels.zone==b'] } },
    }),
  );
  assert.deepEqual(
    activeOf(r.store, s.ID).map((x) => x.NodeID),
    ['w2'],
  );
  await setNode(r.store, 'w1', (n) => ({ ...n, Spec: { ...n.Spec, Labels: { zone: 'B' } } }));
  await setNode(r.store, 'w2', (n) => ({ ...n, Spec: { ...n.Spec, Labels: { zone: 'c' } } }));
  await r.quiet();
  assert.deepEqual(
    activeOf(r.store, s.ID).map((x) => x.NodeID),
    ['w1'],
  );
});

test('replicated job: MaxConcurrent at a time until TotalCompletions completed; failures retried in their slot', async (t) => {
  const r = await servicesRig(['w1', 'w2']);
  t.after(() => r.close());
  const s = await r.create(
    spec('batch', {
      Mode: { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 5 } },
      TaskTemplate: { ContainerSpec: { Image: 'busybox:1' }, RestartPolicy: { Condition: 'on-failure', Delay: 0 } },
    }),
  );
  let peak = 0;
  const failed = new Set<string>();
  for (let round = 0; round < 20; round++) {
    const live = activeOf(r.store, s.ID).filter((x) => x.Status?.State !== 'complete');
    peak = Math.max(peak, live.length);
    if (live.length === 0) break;
    for (const x of live) assert.equal(x.DesiredState, 'complete');
    const [a] = live;
    assert.ok(a);
    await assign(r.store, a.ID, 'w1');
    await report(r.store, a.ID, 'running');
    // Slot 2 fails once; every other run completes.
    if (a.Slot === 2 && !failed.has('2')) {
      failed.add('2');
      await report(r.store, a.ID, 'failed', { Err: 'task: non-zero exit (1)' });
    } else await report(r.store, a.ID, 'complete');
    await r.quiet();
  }
  assert.equal(peak, 2, 'never more than MaxConcurrent at once');
  const done = tasksOf(r.store, s.ID).filter((x) => x.Status?.State === 'complete');
  assert.deepEqual(slotsOf(done), [1, 2, 3, 4, 5]);
  const slot2 = tasksOf(r.store, s.ID).filter((x) => x.Slot === 2);
  assert.equal(slot2.length, 2, 'the failed run was retried in its slot');
  const st = r.manager.servicesApi.listServices({ Status: true }).find((x) => x.ID === s.ID)?.ServiceStatus;
  assert.deepEqual(st, { RunningTasks: 0, DesiredTasks: 0, CompletedTasks: 5 });
});

test('global job: one completed task per node, also on a node that joins later', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const s = await r.create(spec('once', { Mode: { GlobalJob: {} } }));
  const runAndComplete = async (): Promise<void> => {
    for (const x of activeOf(r.store, s.ID).filter((y) => y.Status?.State !== 'complete')) {
      await assign(r.store, x.ID, x.NodeID ?? '');
      await report(r.store, x.ID, 'complete');
    }
    await r.quiet();
  };
  await runAndComplete();
  assert.equal(tasksOf(r.store, s.ID).length, 2);
  await r.store.update((tx) => tx.create('node', workerNode('w9')));
  await r.quiet();
  await runAndComplete();
  assert.deepEqual(
    tasksOf(r.store, s.ID)
      .map((x) => `${x.NodeID}:${x.Status?.State}`)
      .sort(),
    ['mgr1:complete', 'w1:complete', 'w9:complete'],
  );
});

test('restart policy: on-failure with a delay and MaxAttempts; a clean exit is not restarted', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const s = await r.create(
    spec('flaky', {
      Mode: replicas(1),
      TaskTemplate: {
        ContainerSpec: { Image: 'busybox:1' },
        RestartPolicy: { Condition: 'on-failure', Delay: 10 * SECOND_NS, MaxAttempts: 2 },
      },
    }),
  );
  const fail = async (): Promise<StoredTask> => {
    const [cur] = activeOf(r.store, s.ID);
    assert.ok(cur);
    await assign(r.store, cur.ID, 'w1');
    await report(r.store, cur.ID, 'running');
    await report(r.store, cur.ID, 'failed', { Err: 'task: non-zero exit (1)' });
    await r.quiet();
    return cur;
  };
  for (let attempt = 1; attempt <= 2; attempt++) {
    const old = await fail();
    assert.equal(r.store.get<StoredTask>('task', old.ID)?.DesiredState, 'shutdown');
    const [next] = activeOf(r.store, s.ID);
    assert.ok(next && next.ID !== old.ID);
    assert.equal(next.Slot, 1);
    assert.equal(next.DesiredState, 'ready', 'held back for the restart delay');
    await r.clock.advance(9_000);
    await r.quiet();
    assert.equal(r.store.get<StoredTask>('task', next.ID)?.DesiredState, 'ready', 'not before the delay');
    await r.clock.advance(1_000);
    await r.quiet();
    assert.equal(r.store.get<StoredTask>('task', next.ID)?.DesiredState, 'running', 'released after the delay');
  }
  await fail();
  await r.clock.advance(60_000);
  await r.quiet();
  assert.equal(activeOf(r.store, s.ID).length, 0, 'MaxAttempts 2: no third restart');
  assert.equal(tasksOf(r.store, s.ID).length, 3);

  // A clean exit under on-failure is not restarted.
  const ok = await r.create(
    spec('clean', {
      Mode: replicas(1),
      TaskTemplate: { ContainerSpec: { Image: 'busybox:1' }, RestartPolicy: { Condition: 'on-failure', Delay: 0 } },
    }),
  );
  const [c] = activeOf(r.store, ok.ID);
  assert.ok(c);
  await assign(r.store, c.ID, 'w1');
  await report(r.store, c.ID, 'complete');
  await r.quiet();
  assert.equal(tasksOf(r.store, ok.ID).length, 1);

  // A policy change is a new spec version: the slot gets a fresh task.
  await r.update(s.ID, (x) => ({
    ...x,
    TaskTemplate: { ...x.TaskTemplate, RestartPolicy: { Condition: 'any', Delay: 0 } },
  }));
  assert.equal(activeOf(r.store, s.ID).length, 1);
});

test('restart window: attempts older than the window do not count', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const s = await r.create(
    spec('windowed', {
      Mode: replicas(1),
      TaskTemplate: {
        ContainerSpec: { Image: 'busybox:1' },
        RestartPolicy: { Condition: 'any', Delay: 0, MaxAttempts: 1, Window: 60 * SECOND_NS },
      },
    }),
  );
  const fail = async (): Promise<void> => {
    const [cur] = activeOf(r.store, s.ID);
    assert.ok(cur);
    await assign(r.store, cur.ID, 'w1');
    await report(r.store, cur.ID, 'failed');
    await r.quiet();
  };
  await fail();
  assert.equal(activeOf(r.store, s.ID).length, 1, 'first restart');
  await r.clock.advance(120_000);
  await fail();
  assert.equal(activeOf(r.store, s.ID).length, 1, 'the earlier failure is outside the window');
  await fail();
  assert.equal(activeOf(r.store, s.ID).length, 0, 'two failures within the window: given up');
});

test('node down: its tasks are replaced in their slots, nothing doubles, and the node coming back gets none back', async (t) => {
  const r = await servicesRig(['w1', 'w2']);
  t.after(() => r.close());
  const s = await r.create(spec('api', { Mode: replicas(4) }));
  await r.runAll(s.ID, ['w1', 'w2']);
  const onW1 = activeOf(r.store, s.ID).filter((x) => x.NodeID === 'w1');
  assert.equal(onW1.length, 2);
  await setNode(r.store, 'w1', (n) => ({ ...n, Status: { ...n.Status, State: 'down', Message: 'heartbeat failure' } }));
  await r.quiet();
  for (const old of onW1) {
    const now = r.store.get<StoredTask>('task', old.ID);
    assert.equal(now?.DesiredState, 'shutdown');
    const repl = activeOf(r.store, s.ID).find((x) => x.Slot === old.Slot);
    assert.ok(repl && repl.ID !== old.ID);
    assert.equal(repl.NodeID, '', 'the replacement waits for the scheduler');
    assert.equal(repl.DesiredState, 'running');
  }
  for (const c of slotCounts(r.store, s.ID).values()) assert.equal(c, 1);
  await r.runAll(s.ID, ['w2']);
  await setNode(r.store, 'w1', (n) => ({ ...n, Status: { ...n.Status, State: 'ready', Message: '' } }));
  await r.quiet();
  assert.equal(activeOf(r.store, s.ID).length, 4);
  for (const c of slotCounts(r.store, s.ID).values()) assert.equal(c, 1);
  for (const old of onW1) assert.equal(r.store.get<StoredTask>('task', old.ID)?.DesiredState, 'shutdown');
});

test('update: a changed TaskTemplate replaces tasks one at a time, stop-first', async (t) => {
  const r = await servicesRig(['w1', 'w2']);
  t.after(() => r.close());
  const s = await r.create(spec('roll', { Mode: replicas(3) }));
  await r.runAll(s.ID, ['w1', 'w2']);
  const after = await r.update(s.ID, (x) => ({
    ...x,
    TaskTemplate: { ...x.TaskTemplate, ContainerSpec: { Image: 'busybox:2' } },
  }));
  assert.equal(after.SpecVersion?.Index, 2);
  assert.equal(after.UpdateStatus?.State, 'updating');
  assert.equal(after.PreviousSpec?.TaskTemplate?.ContainerSpec?.Image, 'busybox:1');
  for (let step = 1; step <= 3; step++) {
    const fresh = activeOf(r.store, s.ID).filter((x) => x.SpecVersion?.Index === 2);
    assert.equal(fresh.length, step, `one more task replaced at step ${step}`);
    const held = fresh.find((x) => x.Status?.State === 'new');
    assert.ok(held);
    assert.equal(held.DesiredState, 'ready', 'stop-first: held until the old task stopped');
    const old = tasksOf(r.store, s.ID).find(
      (x) => x.Slot === held.Slot && x.SpecVersion?.Index === 1 && x.Status?.State === 'running',
    );
    assert.ok(old);
    assert.equal(old.DesiredState, 'shutdown');
    await report(r.store, old.ID, 'shutdown');
    await r.quiet();
    assert.equal(r.store.get<StoredTask>('task', held.ID)?.DesiredState, 'running');
    assert.equal(
      activeOf(r.store, s.ID).filter((x) => x.SpecVersion?.Index === 2).length,
      step,
      'next only once it runs',
    );
    await r.runAll(s.ID, ['w1']);
  }
  assert.equal(r.store.get<typeof s>('service', s.ID)?.UpdateStatus?.State, 'completed');
  // A label change is not a new spec version: nothing is replaced.
  const before = activeOf(r.store, s.ID)
    .map((x) => x.ID)
    .sort();
  await r.update(s.ID, (x) => ({ ...x, Labels: { a: 'b' } }));
  assert.deepEqual(
    activeOf(r.store, s.ID)
      .map((x) => x.ID)
      .sort(),
    before,
  );
});

test('task history: each slot keeps TaskHistoryRetentionLimit tasks; service rm deletes the tasks once stopped', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const c = r.store.list<StoredCluster>('cluster')[0];
  assert.ok(c);
  await r.store.update((tx) =>
    tx.update('cluster', {
      ...c,
      Spec: { ...c.Spec, Orchestration: { TaskHistoryRetentionLimit: 2 } },
    } as StoredCluster),
  );
  const s = await r.create(
    spec('crashy', {
      Mode: replicas(1),
      TaskTemplate: { ContainerSpec: { Image: 'busybox:1' }, RestartPolicy: { Condition: 'any', Delay: 0 } },
    }),
  );
  for (let i = 0; i < 6; i++) {
    const [cur] = activeOf(r.store, s.ID);
    assert.ok(cur);
    await assign(r.store, cur.ID, 'w1');
    await report(r.store, cur.ID, 'failed');
    await r.quiet();
    assert.ok(tasksOf(r.store, s.ID).length <= 2, `history bounded (round ${i})`);
  }
  assert.equal(activeOf(r.store, s.ID).length, 1);

  await r.runAll(s.ID, ['w1']);
  const [running] = activeOf(r.store, s.ID);
  assert.ok(running);
  await r.manager.servicesApi.removeService('crashy');
  await r.quiet();
  assert.equal(r.store.get('service', s.ID), undefined);
  assert.equal(r.store.get<StoredTask>('task', running.ID)?.DesiredState, 'remove', 'kept until it stopped');
  await report(r.store, running.ID, 'shutdown');
  await r.quiet();
  assert.equal(tasksOf(r.store, s.ID).length, 0);
});

test('a new leadership reconciles from the store without doubling slots', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const s = await r.create(spec('steady', { Mode: replicas(3) }));
  r.raft.setLeader('mgr2');
  assert.equal(r.manager.orchestrator.isRunning, false);
  // While nobody orchestrates, the service is scaled.
  await r.manager.servicesApi.updateService({
    ServiceID: s.ID,
    ServiceVersion: { Index: r.store.get<typeof s>('service', s.ID)?.Version.Index ?? 0 },
    Spec: { ...s.Spec, Mode: replicas(5) },
  });
  await r.quiet();
  assert.equal(activeOf(r.store, s.ID).length, 3);
  r.raft.setLeader('mgr1');
  await r.quiet();
  const counts = slotCounts(r.store, s.ID);
  assert.deepEqual([...counts.keys()].sort(), [1, 2, 3, 4, 5]);
  for (const c of counts.values()) assert.equal(c, 1);
});

test('a large scale is written in transactions of at most MAX_NEW_SLOTS_PER_PASS new tasks', () => {
  const service = {
    ID: 'svc1',
    Version: { Index: 1 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: spec('huge', { Mode: replicas(MAX_NEW_SLOTS_PER_PASS + 500) }),
    SpecVersion: { Index: 1 },
  };
  const plan = new Plan(0, new Date(0).toISOString());
  reconcileReplicated({ service, nodes: new Map(), plan }, []);
  assert.equal(plan.creates.length, MAX_NEW_SLOTS_PER_PASS);
  assert.deepEqual(
    plan.creates.slice(0, 3).map((c) => c.Slot),
    [1, 2, 3],
  );
});

test('replicated: a task whose node no longer matches the constraints, or is drained, is replaced in its slot; pause keeps it', async (t) => {
  const r = await servicesRig(['w1', 'w2']);
  t.after(() => r.close());
  await setNode(r.store, 'w1', (n) => ({ ...n, Spec: { ...n.Spec, Labels: { disk: 'ssd' } } }));
  await setNode(r.store, 'w2', (n) => ({ ...n, Spec: { ...n.Spec, Labels: { disk: 'ssd' } } }));
  const s = await r.create(
    spec('fast', {
      Mode: replicas(2),
      TaskTemplate: { ContainerSpec: { Image: 'busybox:1' }, Placement: { Constraints: ['node.labels.disk==ssd'] } },
    }),
  );
  await r.runAll(s.ID, ['w1', 'w2']);
  const [onW1] = activeOf(r.store, s.ID).filter((x) => x.NodeID === 'w1');
  const [onW2] = activeOf(r.store, s.ID).filter((x) => x.NodeID === 'w2');
  assert.ok(onW1 && onW2);
  await setNode(r.store, 'w2', (n) => ({ ...n, Spec: { ...n.Spec, Availability: 'pause' } }));
  await r.quiet();
  assert.equal(r.store.get<StoredTask>('task', onW2.ID)?.DesiredState, 'running', 'pause keeps the task');
  await setNode(r.store, 'w1', (n) => ({ ...n, Spec: { ...n.Spec, Labels: { disk: 'hdd' } } }));
  await setNode(r.store, 'w2', (n) => ({ ...n, Spec: { ...n.Spec, Availability: 'drain' } }));
  await r.quiet();
  for (const old of [onW1, onW2]) {
    assert.equal(r.store.get<StoredTask>('task', old.ID)?.DesiredState, 'shutdown');
    const repl = activeOf(r.store, s.ID).find((x) => x.Slot === old.Slot);
    assert.ok(repl && repl.ID !== old.ID && repl.NodeID === '');
  }
  for (const c of slotCounts(r.store, s.ID).values()) assert.equal(c, 1);
});

test('services marked at once (a stack deploy) get their new tasks in one transaction, not one per service', async (t) => {
  const r = await servicesRig(['w1', 'w2']);
  t.after(() => r.close());
  // Made while the orchestrator is stopped, so that its next start marks all five at once.
  r.manager.orchestrator.stop();
  const ids: string[] = [];
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    const s = await r.manager.servicesApi.createService({ Spec: spec(name, { Mode: replicas(2) }) });
    ids.push(s.ID ?? '');
  }
  const from = r.store.revision;
  const ac = new AbortController();
  t.after(() => ac.abort());
  const creates = new Map<number, number>();
  const watching = (async () => {
    for await (const c of r.store.watch({ fromRevision: from, kinds: ['task'], signal: ac.signal })) {
      if (c.action === 'create') creates.set(c.revision, (creates.get(c.revision) ?? 0) + 1);
      if ([...creates.values()].reduce((a, b) => a + b, 0) >= 10) return;
    }
  })();
  r.manager.orchestrator.start();
  await r.quiet();
  await watching;
  for (const id of ids) assert.deepEqual(slotsOf(activeOf(r.store, id)), [1, 2]);
  assert.deepEqual([...creates.values()], [10], 'all ten tasks in one transaction');
});
