/**
 * Overlay network states in nodes' assignments, on a real store (LocalLog) with the manager's
 * orchestrator and allocator running (the scheduler and the workers are played with `assign`
 * and `report`): a node gets exactly the networks its tasks need and the ingress network;
 * endpoints follow tasks as they run, move and stop; a down or removed node's endpoints leave
 * the others' states; a network leaves a node with its last task; many task changes in one
 * commit make one update per network per node. The last test runs the dispatcher's own
 * session and assignments stream. Pools only from 198.19.128.0/17; node addresses in
 * 198.18.0.0/24 (nothing is sent anywhere).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AssignmentsMessage, NetworkState, ServiceSpec, Task } from '@shoal/api';
import { contains, parseCidr, parseIp } from '@shoal/network';
import type { StoredNode } from './context.js';
import { AssignmentSet } from './dispatcher-assignments.js';
import { lbEndpointId } from './networks/network-allocation.js';
import {
  activeOf,
  assign,
  report,
  servicesRig,
  setNode,
  workerNode,
  type ServicesRig,
} from './orchestrator/test-rig.js';
import type { StoredNetwork, StoredService, StoredTask } from './services/objects.js';
import { settle } from './test-support.js';
import { ShoalError } from '@shoal/common';

/**
 * The end of a session or assignments stream this code opened: a typed error (the dispatcher
 * stopped, not the leader, the session replaced) is how such a stream ends when the rig stops;
 * anything else is a bug and is rethrown.
 */
function streamEnded(err: unknown): undefined {
  if (err instanceof ShoalError) return undefined;
  throw err;
}

const POOL = ['198.19.128.0/17'];
const WORKERS = ['w1', 'w2', 'w3'];
const ADDRS: Record<string, string> = { mgr1: '198.18.0.2', w1: '198.18.0.11', w2: '198.18.0.12', w3: '198.18.0.13' };
/** A node's underlay address in these tests. */
function addr(node: string): string {
  return ADDRS[node] ?? '198.18.0.99';
}

async function rig(t: TestContext, workers: readonly string[] = WORKERS): Promise<ServicesRig> {
  const r = await servicesRig(workers, { defaultAddrPool: POOL, subnetSize: 24, ingress: true });
  t.after(() => r.close());
  for (const w of workers) {
    await setNode(r.store, w, (n) => ({ ...n, Status: { ...n.Status, Addr: addr(w) } }));
  }
  r.manager.allocator.start();
  await idle(r);
  return r;
}

async function idle(r: ServicesRig): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await settle();
    await r.manager.orchestrator.idle();
    await r.manager.allocator.whenIdle();
  }
}

function svc(
  name: string,
  networks: { Target: string; Aliases?: string[] }[],
  over: Partial<ServiceSpec> = {},
): ServiceSpec {
  return {
    Name: name,
    TaskTemplate: { ContainerSpec: { Image: 'busybox:1' }, Networks: networks },
    Mode: { Replicated: { Replicas: 1 } },
    ...over,
  };
}

/** What one node holds from its assignment messages, as a worker would apply them. */
class NodeView {
  readonly set: AssignmentSet;
  readonly networks = new Map<string, NetworkState>();
  readonly tasks = new Map<string, Task>();
  messages = 0;
  networkUpdates = 0;
  networkRemoves = 0;

  constructor(
    r: ServicesRig,
    readonly id: string,
  ) {
    this.set = new AssignmentSet(r.store, id, r.manager.dispatcher.networks);
    this.apply(this.set.complete());
  }

  /** Applies the changes since the last call (one incremental message, or none). */
  sync(): void {
    const m = this.set.incremental();
    if (m !== undefined) this.apply(m);
  }

  private apply(m: AssignmentsMessage): void {
    this.messages++;
    if (m.Type === 'complete') this.networks.clear();
    let sawTask = false;
    for (const c of m.Changes ?? []) {
      const a = c.Assignment;
      if (a?.Network !== undefined) {
        assert.equal(sawTask && c.Action === 'update', false, 'network updates come before tasks');
        const id = a.Network.Network?.ID ?? '';
        if (c.Action === 'remove') {
          this.networkRemoves++;
          this.networks.delete(id);
        } else {
          this.networkUpdates++;
          this.networks.set(id, a.Network);
        }
      } else if (a?.Task !== undefined) {
        sawTask = true;
        if (c.Action === 'remove') this.tasks.delete(a.Task.ID ?? '');
        else this.tasks.set(a.Task.ID ?? '', a.Task);
      }
    }
  }

  names(): string[] {
    return [...this.networks.values()].map((n) => n.Network?.Spec?.Name ?? '').sort();
  }

  state(name: string): NetworkState {
    const s = [...this.networks.values()].find((n) => n.Network?.Spec?.Name === name);
    assert.ok(s, `${this.id} holds network ${name}`);
    return s;
  }

  endpointIds(name: string): string[] {
    return (this.state(name).Endpoints ?? []).map((e) => e.ID ?? '');
  }
}

function views(r: ServicesRig, ids: readonly string[]): NodeView[] {
  return ids.map((id) => new NodeView(r, id));
}

function syncAll(vs: readonly NodeView[]): void {
  for (const v of vs) v.sync();
}

function tasksOn(r: ServicesRig, serviceId: string, nodeId: string): StoredTask[] {
  return activeOf(r.store, serviceId).filter((t) => t.NodeID === nodeId);
}

test('a node gets exactly the networks its tasks use, every node the ingress network', async (t) => {
  const r = await rig(t);
  const api = r.manager.networksApi;
  const a = await api.createNetwork({ Spec: { Name: 'neta', DriverConfiguration: { Name: 'overlay' } } });
  const b = await api.createNetwork({ Spec: { Name: 'netb', DriverConfiguration: { Name: 'overlay' } } });
  const web = await r.create(
    svc('web', [{ Target: 'neta', Aliases: ['www'] }], {
      Mode: { Replicated: { Replicas: 2 } },
      TaskTemplate: {
        ContainerSpec: { Image: 'busybox:1', Hostname: 'webhost' },
        Networks: [{ Target: 'neta', Aliases: ['www'] }],
      },
      EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080 }] },
    }),
  );
  const db = await r.create(svc('db', [{ Target: 'netb' }], { EndpointSpec: { Mode: 'dnsrr' } }));
  await idle(r);
  await r.runAll(web.ID, ['w1']);
  await r.runAll(db.ID, ['w2']);
  await idle(r);
  const [m, w1, w2, w3] = views(r, ['mgr1', ...WORKERS]);
  assert.ok(m && w1 && w2 && w3);
  assert.deepEqual(w1.names(), ['ingress', 'neta']);
  assert.deepEqual(w2.names(), ['ingress', 'netb']);
  assert.deepEqual(w3.names(), ['ingress'], 'a node without tasks: the ingress network only');
  assert.deepEqual(m.names(), ['ingress']);

  // neta: the two web tasks, both on w1, running, with the attachment's aliases and the hostname.
  const webTasks = tasksOn(r, web.ID, 'w1');
  assert.equal(webTasks.length, 2);
  const sa = w1.state('neta');
  assert.equal(sa.Network?.ID, a.ID);
  assert.deepEqual(sa.Network?.IPAMOptions, a.IPAMOptions, 'the allocated network object');
  assert.deepEqual(
    sa.Endpoints,
    webTasks
      .map((task) => ({
        ID: task.ID,
        NodeID: 'w1',
        NodeAddr: addr('w1'),
        Address: task.NetworksAttachments?.find((x) => x.Network?.ID === a.ID)?.Addresses?.[0],
        ServiceID: web.ID,
        ServiceName: 'web',
        Slot: task.Slot,
        Aliases: ['webhost'],
        Running: true,
      }))
      .sort((x, y) => (x.ID < y.ID ? -1 : 1)),
  );
  const webNow = r.store.get<StoredService>('service', web.ID);
  const vipOn = (id: string | undefined): string =>
    webNow?.Endpoint?.VirtualIPs?.find((v) => v.NetworkID === id)?.Addr ?? 'none';
  assert.deepEqual(sa.Services, [
    {
      ServiceID: web.ID,
      ServiceName: 'web',
      Mode: 'vip',
      VIP: vipOn(a.ID),
      Aliases: ['www'],
      Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }],
    },
  ]);
  assert.ok(contains(parseCidr(a.IPAMOptions?.Configs?.[0]?.Subnet ?? ''), parseIp(vipOn(a.ID).split('/')[0] ?? '')));

  // netb: dnsrr, no VIP; w1 never hears of it.
  const sb = w2.state('netb');
  assert.equal(sb.Network?.ID, b.ID);
  assert.deepEqual(
    sb.Services?.map((s) => [s.ServiceName, s.Mode, s.VIP]),
    [['db', 'dnsrr', '']],
  );
  assert.deepEqual(
    sb.Endpoints?.map((e) => [e.NodeID, e.NodeAddr, e.ServiceName]),
    [['w2', addr('w2'), 'db']],
  );

  // ingress: every node's load-balancer endpoint, and web's tasks and VIP (it publishes 8080).
  const ing = w3.state('ingress');
  const lbs = (ing.Endpoints ?? []).filter((e) => (e.ID ?? '').startsWith('lb-'));
  assert.deepEqual(
    lbs.map((e) => [e.ID, e.NodeID, e.NodeAddr, e.Running, e.ServiceID]).sort(),
    ['mgr1', ...WORKERS].map((n) => [lbEndpointId(n), n, addr(n), true, '']).sort(),
  );
  const lbAddrs = lbs.map((e) => e.Address ?? '');
  assert.equal(new Set(lbAddrs).size, 4, 'one address per node');
  for (const n of ['mgr1', ...WORKERS]) {
    const node = r.store.get<StoredNode>('node', n);
    assert.equal(node?.Attachments?.length, 1, `${n} has its ingress attachment`);
    assert.ok(lbAddrs.includes(node?.Attachments?.[0]?.Addresses?.[0] ?? ''));
  }
  assert.deepEqual(
    (ing.Endpoints ?? []).filter((e) => e.ServiceID === web.ID).length,
    2,
    "web's tasks are on the ingress network",
  );
  assert.deepEqual(
    ing.Services?.map((s) => [s.ServiceName, s.VIP]),
    [['web', vipOn(ing.Network?.ID)]],
  );
  assert.deepEqual(w1.state('ingress'), ing, 'every node gets the same state');
});

test('a templated hostname answers as the task expands it (slot, service, node), not as written', async (t) => {
  const r = await rig(t);
  const net = await r.manager.networksApi.createNetwork({
    Spec: { Name: 'tmpl', DriverConfiguration: { Name: 'overlay' } },
  });
  await setNode(r.store, 'w1', (n) => ({ ...n, Description: { ...n.Description, Hostname: 'host-w1' } }));
  const cart = await r.create(
    svc('cart', [{ Target: 'tmpl' }], {
      Mode: { Replicated: { Replicas: 2 } },
      TaskTemplate: {
        ContainerSpec: { Image: 'busybox:1', Hostname: '{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}' },
        Networks: [{ Target: 'tmpl' }],
      },
    }),
  );
  const bad = await r.create(
    svc('bad', [{ Target: 'tmpl' }], {
      TaskTemplate: {
        ContainerSpec: { Image: 'busybox:1', Hostname: 'x-{{.Task.Nope}}' },
        Networks: [{ Target: 'tmpl' }],
      },
    }),
  );
  await idle(r);
  await r.runAll(cart.ID, ['w1']);
  await r.runAll(bad.ID, ['w1']);
  await idle(r);
  const [w1] = views(r, ['w1']);
  assert.ok(w1);
  const eps = (w1.state('tmpl').Endpoints ?? []).filter((e) => e.ServiceID === cart.ID);
  assert.equal(w1.state('tmpl').Network?.ID, net.ID);
  assert.deepEqual(eps.map((e) => e.Aliases?.[0]).sort(), ['cart-1.host-w1', 'cart-2.host-w1']);
  const badEp = (w1.state('tmpl').Endpoints ?? []).find((e) => e.ServiceID === bad.ID);
  assert.deepEqual(badEp?.Aliases, [], 'a template the worker refuses answers to no hostname');
});

test('endpoints follow tasks: assigned, running, moved; the network leaves a node with its last task', async (t) => {
  const r = await rig(t);
  await r.manager.networksApi.createNetwork({ Spec: { Name: 'app', DriverConfiguration: { Name: 'overlay' } } });
  const web = await r.create(svc('web', [{ Target: 'app' }]));
  await idle(r);
  const vs = views(r, WORKERS);
  const [w1, w2, w3] = vs;
  assert.ok(w1 && w2 && w3);
  const first = activeOf(r.store, web.ID)[0];
  assert.ok(first);
  assert.equal(first.Status?.State, 'pending', 'allocated');
  syncAll(vs);
  assert.deepEqual(w1.names(), ['ingress'], 'a pending task has no node: nobody needs app yet');

  await assign(r.store, first.ID, 'w1');
  syncAll(vs);
  assert.deepEqual(w1.names(), ['app', 'ingress']);
  assert.deepEqual(
    w1.state('app').Endpoints?.map((e) => [e.ID, e.Running]),
    [[first.ID, false]],
    'an assigned task is a peer before it runs',
  );
  assert.ok(w1.tasks.has(first.ID));
  assert.deepEqual(w2.names(), ['ingress']);

  // Accepted and starting change nothing in the network: no network update is sent.
  const before = w1.networkUpdates;
  await report(r.store, first.ID, 'accepted');
  await report(r.store, first.ID, 'starting');
  syncAll(vs);
  assert.equal(w1.networkUpdates, before, 'no network update without a change in it');
  await report(r.store, first.ID, 'running');
  syncAll(vs);
  assert.deepEqual(
    w1.state('app').Endpoints?.map((e) => [e.ID, e.Running]),
    [[first.ID, true]],
  );
  assert.equal(w1.networkUpdates, before + 1);

  // The task fails; its replacement goes to w2. w1 drops app once its task stopped.
  await report(r.store, first.ID, 'failed', { Err: 'exit 1' });
  await idle(r);
  syncAll(vs);
  assert.deepEqual(w1.names(), ['ingress'], 'the last task left: the network is removed');
  await r.clock.advance(10_000); // the restart delay (5 s by default)
  await idle(r);
  const second = activeOf(r.store, web.ID).find((x) => x.ID !== first.ID && x.DesiredState === 'running');
  assert.ok(second, 'a replacement');
  await assign(r.store, second.ID, 'w2');
  await report(r.store, second.ID, 'running');
  syncAll(vs);
  assert.deepEqual(w2.names(), ['app', 'ingress']);
  assert.deepEqual(
    w2.state('app').Endpoints?.map((e) => [e.ID, e.NodeID, e.Running]),
    [[second.ID, 'w2', true]],
    "the failed task's endpoint is gone",
  );

  // Desired shutdown while still running (a scale down): still a peer, no longer running.
  await r.update(web.ID, (s) => ({ ...s, Mode: { Replicated: { Replicas: 0 } } }));
  await idle(r);
  syncAll(vs);
  assert.deepEqual(
    w2.state('app').Endpoints?.map((e) => [e.ID, e.Running]),
    [[second.ID, false]],
  );
  await report(r.store, second.ID, 'shutdown');
  await idle(r);
  syncAll(vs);
  assert.deepEqual(w2.names(), ['ingress']);
  assert.ok(w2.networkRemoves >= 1);
});

test("a down node's endpoints leave the others' states, and a removed node's too", async (t) => {
  const r = await rig(t);
  await r.manager.networksApi.createNetwork({ Spec: { Name: 'app', DriverConfiguration: { Name: 'overlay' } } });
  const web = await r.create(svc('web', [{ Target: 'app' }], { Mode: { Replicated: { Replicas: 3 } } }));
  await idle(r);
  const tasks = activeOf(r.store, web.ID);
  for (const [i, task] of tasks.entries()) {
    await assign(r.store, task.ID, WORKERS[i] ?? '');
    await report(r.store, task.ID, 'running');
  }
  const vs = views(r, WORKERS);
  const [w1, w2, w3] = vs;
  assert.ok(w1 && w2 && w3);
  const nodesOf = (v: NodeView, net: string): string[] => [
    ...new Set((v.state(net).Endpoints ?? []).map((e) => e.NodeID ?? '')),
  ];
  assert.deepEqual(nodesOf(w1, 'app').sort(), WORKERS);
  assert.deepEqual(nodesOf(w1, 'ingress').sort(), ['mgr1', ...WORKERS]);

  await setNode(r.store, 'w2', (n) => ({ ...n, Status: { ...n.Status, State: 'down', Message: 'heartbeat failure' } }));
  syncAll([w1, w3]);
  assert.deepEqual(nodesOf(w1, 'app').sort(), ['w1', 'w3'], "w2's task endpoint is gone");
  assert.deepEqual(nodesOf(w3, 'ingress').sort(), ['mgr1', 'w1', 'w3'], "w2's load-balancer endpoint is gone");

  // A node's new address reaches its peers.
  await setNode(r.store, 'w3', (n) => ({ ...n, Status: { ...n.Status, Addr: '198.18.0.33' } }));
  syncAll([w1]);
  assert.deepEqual(
    w1
      .state('app')
      .Endpoints?.filter((e) => e.NodeID === 'w3')
      .map((e) => e.NodeAddr),
    ['198.18.0.33'],
  );

  // w3 is removed from the store (its task is still there until the reaper): its endpoints go,
  // and its load-balancer address is given back.
  const w3lb = r.store.get<StoredNode>('node', 'w3')?.Attachments?.[0]?.Addresses?.[0];
  assert.ok(w3lb);
  const ingressId = r.store.list<StoredNetwork>('network').find((n) => n.Spec?.Ingress === true)?.ID ?? '';
  const used = (): Promise<number> =>
    r.manager.networkAllocation.exclusive('test', (a) => Promise.resolve(a.usage(ingressId).used));
  const usedBefore = await used();
  await r.store.update((tx) => tx.remove('node', 'w3'));
  await idle(r);
  syncAll([w1]);
  assert.deepEqual(nodesOf(w1, 'app'), ['w1']);
  assert.deepEqual(nodesOf(w1, 'ingress').sort(), ['mgr1', 'w1']);
  assert.equal(await used(), usedBefore - 1, "w3's load-balancer address is given back");
  await r.store.update((tx) =>
    tx.create('node', workerNode('w4', { Status: { State: 'ready', Message: '', Addr: '198.18.0.14' } })),
  );
  await idle(r);
  const w4 = r.store.get<StoredNode>('node', 'w4')?.Attachments?.[0]?.Addresses?.[0];
  assert.ok(w4 !== undefined && w4 !== w3lb, 'a new node gets an address of its own');
  assert.equal(await used(), usedBefore);
});

test('coalescing: 100 tasks on 5 nodes, each step one network update per node', async (t) => {
  const nodes = ['w1', 'w2', 'w3', 'w4', 'w5'];
  const r = await rig(t, nodes);
  await r.manager.networksApi.createNetwork({ Spec: { Name: 'big', DriverConfiguration: { Name: 'overlay' } } });
  const web = await r.create(svc('web', [{ Target: 'big' }], { Mode: { Replicated: { Replicas: 100 } } }));
  await idle(r);
  const vs = views(r, nodes);
  const tasks = activeOf(r.store, web.ID);
  assert.equal(tasks.length, 100);
  assert.ok(tasks.every((x) => x.Status?.State === 'pending'));
  const rebuilds = r.manager.dispatcher.networks.rebuilds;
  const step = async (fn: (task: StoredTask, i: number) => StoredTask): Promise<void> => {
    const cur = activeOf(r.store, web.ID).sort((x, y) => (x.Slot ?? 0) - (y.Slot ?? 0));
    await r.store.update((tx) => {
      for (const [i, task] of cur.entries()) tx.update('task', fn(task, i));
    });
    syncAll(vs);
  };
  const counts = (): number[] => vs.map((v) => v.networkUpdates);
  const start = counts();
  // The scheduler's commit: all 100 assigned round-robin.
  await step((task, i) => ({
    ...task,
    NodeID: nodes[i % nodes.length] ?? '',
    Status: { ...task.Status, State: 'assigned' },
  }));
  assert.deepEqual(
    counts().map((c, i) => c - (start[i] ?? 0)),
    [1, 1, 1, 1, 1],
    'one update of big per node, not one per task',
  );
  for (const v of vs) assert.equal(v.state('big').Endpoints?.length, 100);
  // Workers' batches: accepted then running.
  await step((task) => ({ ...task, Status: { ...task.Status, State: 'accepted' } }));
  assert.deepEqual(
    counts().map((c, i) => c - (start[i] ?? 0)),
    [1, 1, 1, 1, 1],
    'accepted changes no network state',
  );
  await step((task) => ({ ...task, Status: { ...task.Status, State: 'running' } }));
  assert.deepEqual(
    counts().map((c, i) => c - (start[i] ?? 0)),
    [2, 2, 2, 2, 2],
  );
  for (const v of vs) assert.ok(v.state('big').Endpoints?.every((e) => e.Running));
  assert.ok(
    r.manager.dispatcher.networks.rebuilds - rebuilds <= 3,
    'the states are built once per store revision, shared by the nodes',
  );
});

test('the dispatcher stream: the ingress network first, then task networks as tasks arrive', async (t) => {
  const r = await rig(t, ['w1']);
  await r.manager.networksApi.createNetwork({ Spec: { Name: 'app', DriverConfiguration: { Name: 'overlay' } } });
  const web = await r.create(svc('web', [{ Target: 'app' }], { Mode: { Replicated: { Replicas: 3 } } }));
  await idle(r);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const caller = { nodeId: 'w1', role: 'worker' as const, addr: addr('w1') };
  let sessionId = '';
  void r.manager.dispatcher
    .session({ Description: { Hostname: 'w1' } }, caller, (msg) => (sessionId = msg.SessionID ?? sessionId), ac.signal)
    .catch(streamEnded);
  for (let i = 0; i < 100 && sessionId === ''; i++) await settle();
  assert.notEqual(sessionId, '');
  const msgs: AssignmentsMessage[] = [];
  void r.manager.dispatcher
    .assignments({ SessionID: sessionId }, caller, (m) => msgs.push(m), ac.signal)
    .catch(streamEnded);
  await settle();
  const nets = (m: AssignmentsMessage): string[] =>
    (m.Changes ?? []).flatMap((c) =>
      c.Assignment?.Network
        ? [`${c.Action} ${c.Assignment.Network.Network?.Spec?.Name ?? c.Assignment.Network.Network?.ID}`]
        : [],
    );
  assert.deepEqual(nets(msgs[0] ?? {}), ['update ingress'], 'the complete set has the ingress network');

  // Three commits (the scheduler's writes): at most one update of app each.
  const count = msgs.length;
  await Promise.all(
    activeOf(r.store, web.ID).map(async (task) => {
      await assign(r.store, task.ID, 'w1');
    }),
  );
  for (let i = 0; i < 20 && msgs.length === count; i++) await settle();
  await settle();
  const appUpdates = msgs.slice(count).flatMap(nets);
  assert.ok(appUpdates.length >= 1 && appUpdates.every((x) => x === 'update app'), JSON.stringify(appUpdates));
  assert.ok(appUpdates.length <= 3, `three commits gave ${appUpdates.length} updates of app`);
  const last = msgs.at(-1);
  const app = last?.Changes?.find((c) => c.Assignment?.Network?.Network?.Spec?.Name === 'app')?.Assignment?.Network;
  assert.equal(app?.Endpoints?.length, 3);
});
