/**
 * The scheduler: every filter (ready and availability, CPU and memory, constraints, platform,
 * host-mode ports, max replicas), spread over placement preferences, fewest tasks of the
 * service then fewest in all, Docker's pending reason, preset nodes of global tasks, and, on a
 * running manager, one store transaction per service and retries when nodes change.
 * The orchestrator is another part: these tests write tasks into the store as it would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, Task } from '@shoal/api';
import type { StoredNode } from '../context.js';
import { rig, settle, type Rig } from '../test-support.js';
import { MAX_WRITE_BYTES, schedule, type StoredTask } from './scheduler.js';

const GiB = 1024 ** 3;
const CPU = 1e9;

let seq = 0;
function node(
  id: string,
  o: {
    state?: string;
    avail?: string;
    labels?: Record<string, string>;
    role?: string;
    cpu?: number;
    mem?: number;
    arch?: string;
    engine?: Record<string, string>;
  } = {},
): StoredNode {
  return {
    ID: id,
    Version: { Index: 1 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Name: '', Labels: o.labels ?? {}, Role: o.role ?? 'worker', Availability: o.avail ?? 'active' },
    Description: {
      Hostname: `host-${id}`,
      Platform: { OS: 'linux', Architecture: o.arch ?? 'x86_64' },
      Resources: { NanoCPUs: o.cpu ?? 4 * CPU, MemoryBytes: o.mem ?? 8 * GiB },
      Engine: { Labels: o.engine ?? {} },
    },
    Status: { State: o.state ?? 'ready' },
  };
}

interface TaskOpts {
  state?: string;
  desired?: string;
  node?: string;
  cpu?: number;
  mem?: number;
  constraints?: string[];
  spread?: string[];
  max?: number;
  hostPort?: number;
  platforms?: { OS?: string; Architecture?: string }[];
  slot?: number;
}

function task(service: string, o: TaskOpts = {}): StoredTask {
  const id = `t${++seq}`;
  return {
    ID: id,
    Version: { Index: 1 },
    CreatedAt: '',
    UpdatedAt: '',
    ServiceID: service,
    Slot: o.slot ?? seq,
    NodeID: o.node ?? '',
    DesiredState: o.desired ?? 'running',
    Status: { State: o.state ?? 'pending' },
    Spec: {
      Resources: { Reservations: { NanoCPUs: o.cpu ?? 0, MemoryBytes: o.mem ?? 0 } },
      Placement: {
        Constraints: o.constraints ?? [],
        Preferences: (o.spread ?? []).map((d) => ({ Spread: { SpreadDescriptor: d } })),
        MaxReplicas: o.max ?? 0,
        Platforms: o.platforms ?? [],
      },
    },
    Endpoint:
      o.hostPort === undefined
        ? {}
        : { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: o.hostPort, PublishMode: 'host' }] },
  };
}

function many(n: number, service: string, o: TaskOpts = {}): StoredTask[] {
  return Array.from({ length: n }, () => task(service, o));
}

/** Node ID (or the pending reason) per pending task of the result. */
function decide(nodes: StoredNode[], tasks: StoredTask[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of schedule(nodes, tasks)) {
    for (const [i, t] of s.tasks.entries()) {
      const d = s.decisions[i];
      assert.ok(d);
      out.set(t.ID, 'nodeId' in d ? d.nodeId : d.err);
    }
  }
  return out;
}

function countBy(values: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

test('scheduler: only ready, active nodes get tasks; otherwise the task stays pending with the reason', () => {
  const nodes = [node('a'), node('b', { state: 'down' }), node('c', { avail: 'drain' }), node('d', { avail: 'pause' })];
  const d = decide(nodes, many(4, 's1'));
  assert.deepEqual(countBy(d.values()), { a: 4 });
  const none = decide(
    [nodes[1], nodes[2], nodes[3]].filter((n) => n !== undefined),
    many(2, 's2'),
  );
  assert.deepEqual([...new Set(none.values())], ['no suitable node (3 nodes not available for new tasks)']);
});

test('scheduler: tasks not pending or no longer wanted are left alone', () => {
  const nodes = [node('a')];
  const tasks = [
    task('s', { state: 'new' }),
    task('s', { desired: 'shutdown' }),
    task('s', { state: 'assigned', node: 'a' }),
  ];
  assert.equal(decide(nodes, tasks).size, 0);
});

test('scheduler: memory and CPU reservations against what nodes have left; reasons most frequent first', () => {
  const nodes = [
    node('a', { mem: 1 * GiB }),
    node('b', { mem: 1 * GiB }),
    node('c', { mem: 1 * GiB }),
    node('d', { state: 'down' }),
    node('e', { state: 'unknown' }),
    node('big', { mem: 4 * GiB }),
  ];
  // 3 GiB already held on big by a running task; a task that is shutting down holds nothing.
  const held = task('other', { state: 'running', node: 'big', mem: 3 * GiB });
  const gone = task('other', { state: 'running', node: 'a', mem: 1 * GiB, desired: 'shutdown' });
  const d = decide(nodes, [held, gone, ...many(4, 's', { mem: 768 * 1024 ** 2 })]);
  const placed = countBy([...d.values()].filter((v) => !v.startsWith('no suitable')));
  assert.deepEqual(placed, { a: 1, b: 1, big: 1, c: 1 });
  const r = decide(nodes, [held, gone, task('s2', { mem: 2 * GiB })]);
  assert.deepEqual(
    [...r.values()],
    ['no suitable node (4 nodes insufficient memory; 2 nodes not available for new tasks)'],
  );
  // CPU: 2 nodes with 2 CPUs; 1 CPU each: four fit, the fifth does not.
  const c = decide([node('x', { cpu: 2 * CPU }), node('y', { cpu: 2 * CPU })], many(5, 's3', { cpu: CPU }));
  const vals = [...c.values()];
  assert.deepEqual(countBy(vals.slice(0, 4)), { x: 2, y: 2 });
  assert.equal(vals[4], 'no suitable node (2 nodes insufficient CPU)');
});

test('scheduler: placement constraints filter nodes; a bad one is the pending reason', () => {
  // parsing and matching themselves: services-api.test.ts ('constraints: parse and match ...')
  const nodes = [node('w1'), node('w2', { labels: { zone: 'b' } }), node('m1', { role: 'manager' })];
  const d = decide(nodes, many(4, 's', { constraints: ['node.role==worker', 'node.labels.zone!=b'] }));
  assert.deepEqual(countBy(d.values()), { w1: 4 });
  const r = decide(nodes, many(1, 's', { constraints: ['node.labels.zone==c'] }));
  assert.deepEqual([...r.values()], ['no suitable node (3 nodes not matching the placement constraints)']);
  const bad = decide(nodes, many(1, 's', { constraints: ['node.color==red'] }));
  assert.match([...bad.values()][0] ?? '', /^no suitable node \(invalid constraint "node.color==red": unknown key/);
  const arm = decide(
    [node('x86'), node('arm', { arch: 'aarch64' })],
    many(2, 's', { constraints: ['node.platform.arch==arm64'] }),
  );
  assert.deepEqual(countBy(arm.values()), { arm: 2 }, 'aarch64 matches arm64');
});

test('scheduler: the platform of the image against the node platform', () => {
  const nodes = [node('x86'), node('arm', { arch: 'aarch64' })];
  const d = decide(nodes, many(3, 's', { platforms: [{ OS: 'linux', Architecture: 'arm64' }] }));
  assert.deepEqual(countBy(d.values()), { arm: 3 });
  const r = decide(nodes, many(1, 's', { platforms: [{ OS: 'windows', Architecture: 'amd64' }] }));
  assert.deepEqual([...r.values()], ['no suitable node (2 nodes unsupported platform)']);
});

test('scheduler: a host-mode published port goes only where it is free', () => {
  const nodes = [node('a'), node('b')];
  const busy = task('web0', { state: 'running', node: 'a', hostPort: 8080 });
  const d = decide(nodes, [busy, ...many(2, 'web', { hostPort: 8080 })]);
  assert.deepEqual([...d.values()], ['b', 'no suitable node (2 nodes host-mode port in use)']);
  // Another port, or a different service on another port, is no conflict.
  const e = decide(nodes, [busy, ...many(2, 'api', { hostPort: 9090 })]);
  assert.deepEqual(countBy(e.values()), { a: 1, b: 1 });
});

test('scheduler: max replicas per node', () => {
  const nodes = [node('a'), node('b')];
  const existing = task('s', { state: 'running', node: 'a' });
  const d = decide(nodes, [existing, ...many(4, 's', { max: 2 })]);
  const vals = [...d.values()];
  assert.deepEqual(countBy(vals.slice(0, 3)), { a: 1, b: 2 });
  assert.equal(vals[3], 'no suitable node (2 nodes at max replicas per node)');
});

test('scheduler: fewest tasks of the service first, then fewest tasks in all', () => {
  const nodes = ['a', 'b', 'c', 'd', 'e'].map((id) => node(id));
  // 10 replicas on 5 empty nodes: 2 each.
  const d = decide(nodes, many(10, 'web'));
  assert.deepEqual(countBy(d.values()), { a: 2, b: 2, c: 2, d: 2, e: 2 });
  // a and b are busy with another service: a single new task avoids them.
  const busy = [...many(3, 'db', { state: 'running', node: 'a' }), ...many(1, 'db', { state: 'running', node: 'b' })];
  const one = decide(nodes, [...busy, task('api'), task('api'), task('api')]);
  assert.deepEqual(countBy(one.values()), { c: 1, d: 1, e: 1 });
  // Scale up from 2 tasks of web on a: the others fill first.
  const web = many(2, 'web', { state: 'running', node: 'a' });
  const up = decide(nodes, [...web, ...many(8, 'web')]);
  assert.deepEqual(countBy(up.values()), { b: 2, c: 2, d: 2, e: 2 });
});

test('scheduler: spread over placement preferences, nested, nodes without the label as their own group', () => {
  const nodes = [
    node('a1', { labels: { zone: 'a', rack: '1' } }),
    node('a2', { labels: { zone: 'a', rack: '1' } }),
    node('a3', { labels: { zone: 'a', rack: '2' } }),
    node('b1', { labels: { zone: 'b', rack: '1' } }),
    node('x1'),
  ];
  const zoneOf = (id: string): string => nodes.find((n) => n.ID === id)?.Spec?.Labels?.['zone'] ?? '';
  const d = decide(nodes, many(6, 's', { spread: ['node.labels.zone'] }));
  assert.deepEqual(countBy([...d.values()].map(zoneOf)), { a: 2, b: 2, '': 2 });
  // Nested: zone, then rack: zone a's 4 tasks (of 12) split 2 per rack.
  const n = decide(nodes, many(12, 's', { spread: ['node.labels.zone', 'node.labels.rack'] }));
  const counts = countBy(n.values());
  assert.equal((counts['a1'] ?? 0) + (counts['a2'] ?? 0), 2);
  assert.equal(counts['a3'], 2);
  assert.equal(counts['b1'], 4);
  assert.equal(counts['x1'], 4);
});

test('scheduler: a global task keeps its preset node when it fits, else stays pending with the reason', () => {
  const nodes = [node('a'), node('b', { avail: 'drain' }), node('c', { mem: GiB })];
  const d = decide(nodes, [
    task('g', { node: 'a' }),
    task('g', { node: 'b' }),
    task('g', { node: 'c', mem: 2 * GiB }),
    task('g', { node: 'gone' }),
  ]);
  assert.deepEqual(
    [...d.values()],
    [
      'a',
      'no suitable node (1 node not available for new tasks)',
      'no suitable node (1 node insufficient memory)',
      'no suitable node (node gone is not in the swarm)',
    ],
  );
});

// ---- on a running manager (allocator and scheduler loops over a real store) ----

async function quiesce(r: Rig): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await settle();
    const rev = r.store.revision;
    await Promise.all([r.manager.allocator.whenIdle(), r.manager.scheduler.whenIdle()]);
    await settle();
    if (rev === r.store.revision && r.manager.allocator.idle && r.manager.scheduler.idle) return;
  }
  throw new Error('the loops did not settle');
}

async function addNodes(r: Rig, nodes: Node[]): Promise<void> {
  await r.store.update((tx) => {
    for (const n of nodes) tx.create('node', { ...(n as Record<string, unknown>), ID: n.ID ?? '' });
  });
}

/** Tasks as the orchestrator creates them: state new, desired running. */
function newTasks(n: number, service: string, o: TaskOpts = {}): Task[] {
  return many(n, service, { ...o, state: 'new' }).map((t) => ({ ...t, Name: `${service}.${t.Slot}.${t.ID}` }));
}

async function createTasks(r: Rig, tasks: Task[]): Promise<void> {
  await r.store.update((tx) => {
    for (const t of tasks) tx.create('task', { ...(t as Record<string, unknown>), ID: t.ID ?? '' });
  });
}

test('scheduler on a manager: new -> pending -> assigned, each service in one transaction', async () => {
  const r = await rig();
  try {
    r.manager.orchestrator.stop(); // its reaper would delete these tasks of no service
    await addNodes(r, [node('w1'), node('w2'), node('w3')]);
    await quiesce(r);
    const before = r.store.revision;
    await createTasks(r, [...newTasks(6, 'svcA'), ...newTasks(4, 'svcB'), ...newTasks(2, 'svcC')]);
    await quiesce(r);
    const tasks = r.store.list<StoredTask>('task');
    assert.equal(tasks.length, 12);
    for (const t of tasks) {
      assert.equal(t.Status?.State, 'assigned', t.ID);
      assert.equal(t.Status?.Message, 'scheduler assigned task to node');
      assert.ok(['w1', 'w2', 'w3', 'mgr1'].includes(t.NodeID ?? ''));
    }
    // One write creating the tasks, one allocator pass, one transaction per service.
    assert.equal(r.store.revision - before, 1 + 1 + 3);
    for (const s of ['svcA', 'svcB', 'svcC']) {
      const versions = new Set(tasks.filter((t) => t.ServiceID === s).map((t) => t.Version.Index));
      assert.equal(versions.size, 1, `the tasks of ${s} were written in one transaction`);
    }
    const perService = new Set(tasks.map((t) => t.Version.Index));
    assert.equal(perService.size, 3);
  } finally {
    r.manager.stop();
  }
});

test('scheduler on a manager: a pending task is retried when a node changes, and Down nodes get none', async () => {
  const r = await rig();
  try {
    await addNodes(r, [node('w1'), node('w2', { state: 'down', labels: { disk: 'ssd' } })]);
    await createTasks(r, newTasks(2, 'db', { constraints: ['node.labels.disk==ssd'] }));
    await quiesce(r);
    for (const t of r.store.list<StoredTask>('task')) {
      assert.equal(t.Status?.State, 'pending');
      assert.equal(t.NodeID, '');
      assert.equal(
        t.Status?.Err,
        'no suitable node (2 nodes not matching the placement constraints; 1 node not available for new tasks)',
      );
    }
    // The ssd node comes back: the tasks go there.
    const w2 = r.store.get<StoredNode>('node', 'w2');
    assert.ok(w2);
    await r.store.update((tx) => tx.update('node', { ...w2, Status: { State: 'ready' } } as StoredNode));
    await quiesce(r);
    for (const t of r.store.list<StoredTask>('task')) {
      assert.equal(t.Status?.State, 'assigned');
      assert.equal(t.NodeID, 'w2');
      assert.equal(t.Status?.Err, '');
    }
  } finally {
    r.manager.stop();
  }
});

test('scheduler on a manager: leader only; a new leader places what was left pending', async () => {
  const r = await rig();
  try {
    await addNodes(r, [node('w1')]);
    await quiesce(r);
    r.raft.setLeader('mgr2');
    assert.equal(r.manager.scheduler.isRunning, false);
    assert.equal(r.manager.allocator.isRunning, false);
    await createTasks(r, newTasks(3, 'late'));
    await quiesce(r);
    for (const t of r.store.list<StoredTask>('task')) assert.equal(t.Status?.State, 'new', 'a follower does nothing');
    r.raft.setLeader('mgr1');
    await quiesce(r);
    for (const t of r.store.list<StoredTask>('task')) assert.equal(t.Status?.State, 'assigned');
  } finally {
    r.manager.stop();
  }
});

test('scheduler on a manager: a service too large for one transaction is placed in one pass, written in several within the limit', async () => {
  const r = await rig();
  try {
    await addNodes(r, [node('w1'), node('w2')]);
    await quiesce(r);
    // One pass by hand: the loops would also pick up the tasks as they are created.
    r.manager.allocator.stop();
    r.manager.scheduler.stop();
    // 100 pending tasks of ~100 KiB each (a large environment): about 10 MiB in all.
    const big = 'x'.repeat(100 * 1024);
    const tasks = newTasks(100, 'huge').map((t) => ({
      ...t,
      Status: { State: 'pending' },
      Spec: { ...t.Spec, ContainerSpec: { Image: 'busybox', Env: [`BIG=${big}`] } },
    }));
    for (let i = 0; i < tasks.length; i += 20) await createTasks(r, tasks.slice(i, i + 20));
    const res = await r.manager.scheduler.pass();
    assert.equal(res.assigned, 100);
    const all = r.store.list<StoredTask>('task');
    assert.equal(all.filter((t) => t.Status?.State === 'assigned').length, 100, 'all placed in one pass');
    const perTxn = countBy(all.map((t) => String(t.Version.Index)));
    const limit = Math.floor(MAX_WRITE_BYTES / (100 * 1024));
    assert.ok(Object.keys(perTxn).length >= Math.ceil(100 / limit), 'several transactions');
    for (const n of Object.values(perTxn)) assert.ok(n <= limit, `${n} tasks in one transaction (limit ${limit})`);
    assert.deepEqual(countBy(all.map((t) => t.NodeID ?? '')), { mgr1: 34, w1: 33, w2: 33 });
  } finally {
    r.manager.stop();
  }
});
