/**
 * Test support for the services tests (used only by tests): a bootstrapped manager on a
 * LocalLog store whose clock is the fake clock (the store stamps CreatedAt/UpdatedAt with it,
 * which the restart delay and window read), worker nodes written straight into the store, and
 * helpers that play the parts of other components: the scheduler (`assign`: NodeID and state
 * assigned) and the worker (`report`: a status update as the dispatcher would write it). Those
 * parts are other modules' work; here they only move task states the way they will.
 */
import type { ServiceSpec, TaskStatus } from '@shoal/api';
import { RootCA, newClusterId } from '@shoal/ca';
import { ClusterStore, LocalLog, StoreStateMachine } from '@shoal/store';
import type { StoredNode } from '../context.js';
import { Manager } from '../manager.js';
import type { StoredService, StoredTask } from '../services/objects.js';
import { FakeClock, FakeRaft, settle } from '../test-support.js';
import { isActive } from './tasks.js';

let sharedRoot: RootCA | undefined;

export async function root(): Promise<RootCA> {
  sharedRoot ??= await RootCA.create();
  return sharedRoot;
}

/** A worker node as the store keeps it after its first session. */
export function workerNode(id: string, over: Partial<StoredNode> = {}): StoredNode & Record<string, unknown> {
  return {
    ID: id,
    Version: { Index: 0 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Name: '', Labels: {}, Role: 'worker', Availability: 'active' },
    Description: { Hostname: id, Platform: { OS: 'linux', Architecture: 'x86_64' } },
    Status: { State: 'ready', Message: '', Addr: '127.0.0.1' },
    ...over,
  };
}

/** Writes `state` (and more) as the task's observed status, as a worker's report would. */
export async function report(
  store: ClusterStore,
  id: string,
  state: string,
  extra: Partial<TaskStatus> = {},
): Promise<void> {
  const t = store.get<StoredTask>('task', id);
  if (t === undefined) throw new Error(`no task ${id}`);
  await store.update((tx) =>
    tx.update('task', {
      ...t,
      Status: { ...t.Status, State: state, Timestamp: new Date().toISOString(), ...extra },
    } as StoredTask),
  );
}

/** Sets NodeID and state assigned, as the scheduler would. */
export async function assign(store: ClusterStore, id: string, nodeId: string): Promise<void> {
  const t = store.get<StoredTask>('task', id);
  if (t === undefined) throw new Error(`no task ${id}`);
  await store.update((tx) =>
    tx.update('task', {
      ...t,
      NodeID: nodeId,
      Status: { ...t.Status, State: 'assigned', Message: 'scheduler assigned task to node' },
    } as StoredTask),
  );
}

export async function setNode(store: ClusterStore, id: string, fn: (n: StoredNode) => StoredNode): Promise<void> {
  const n = store.get<StoredNode>('node', id);
  if (n === undefined) throw new Error(`no node ${id}`);
  await store.update((tx) => tx.update('node', fn(structuredClone(n))));
}

export function tasksOf(store: ClusterStore, serviceId: string): StoredTask[] {
  return store.find<StoredTask>('task', 'service', serviceId);
}

export function activeOf(store: ClusterStore, serviceId: string): StoredTask[] {
  return tasksOf(store, serviceId).filter((t) => isActive(t));
}

/** Active tasks per slot (replicated) — a doubled slot shows as a count of 2. */
export function slotCounts(store: ClusterStore, serviceId: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const t of activeOf(store, serviceId)) m.set(t.Slot ?? 0, (m.get(t.Slot ?? 0) ?? 0) + 1);
  return m;
}

export interface ServicesRig {
  manager: Manager;
  store: ClusterStore;
  raft: FakeRaft;
  clock: FakeClock;
  /** Lets the orchestrator finish what the last writes started. */
  quiet(): Promise<void>;
  create(spec: ServiceSpec): Promise<StoredService>;
  update(id: string, fn: (s: ServiceSpec) => ServiceSpec): Promise<StoredService>;
  /** Assigns every unassigned active task round-robin over `nodes`, then reports them running. */
  runAll(serviceId: string, nodes: readonly string[]): Promise<void>;
  close(): void;
}

export async function servicesRig(
  workers: readonly string[] = ['w1', 'w2'],
  cluster: { defaultAddrPool?: readonly string[]; subnetSize?: number; ingress?: boolean } = {},
): Promise<ServicesRig> {
  const clock = new FakeClock();
  const sm = new StoreStateMachine();
  const store = new ClusterStore({ log: new LocalLog(sm), stateMachine: sm, now: () => new Date(clock.now()) });
  const raft = new FakeRaft('mgr1');
  // Heartbeats are not part of these tests: a period of days keeps the dispatcher from marking
  // the fake workers down while the clock moves; tests mark nodes down themselves.
  const manager = new Manager({
    nodeId: 'mgr1',
    store,
    raft,
    rootCA: await root(),
    clock,
    heartbeatPeriodMs: 86_400_000,
  });
  await manager.bootstrapCluster({
    clusterId: newClusterId(),
    advertiseAddr: '198.18.0.2:2377',
    description: { Hostname: 'm1' },
    ...cluster,
  });
  await store.update((tx) => {
    for (const w of workers) tx.create('node', workerNode(w));
  });
  manager.start();
  // Tests move tasks on themselves (assign, report): the allocator and scheduler would too.
  manager.allocator.stop();
  manager.scheduler.stop();
  const quiet = async (): Promise<void> => {
    for (let i = 0; i < 10; i++) {
      await settle();
      await manager.orchestrator.idle();
    }
  };
  await quiet();
  return {
    manager,
    store,
    raft,
    clock,
    quiet,
    async create(spec) {
      const s = await manager.servicesApi.createService({ Spec: spec });
      await quiet();
      const stored = store.get<StoredService>('service', s.ID ?? '');
      if (stored === undefined) throw new Error('service not stored');
      return stored;
    },
    async update(id, fn) {
      const cur = store.get<StoredService>('service', id);
      if (cur === undefined) throw new Error('no service');
      await manager.servicesApi.updateService({
        ServiceID: id,
        ServiceVersion: { Index: cur.Version.Index },
        Spec: fn(structuredClone(cur.Spec ?? {})),
      });
      await quiet();
      const after = store.get<StoredService>('service', id);
      if (after === undefined) throw new Error('service gone');
      return after;
    },
    async runAll(serviceId, nodes) {
      let i = 0;
      for (const t of activeOf(store, serviceId)) {
        if (t.DesiredState === 'ready') continue;
        if ((t.Status?.State ?? 'new') === 'new' || t.Status?.State === 'pending') {
          await assign(store, t.ID, t.NodeID || (nodes[i++ % nodes.length] ?? ''));
          await report(store, t.ID, 'running');
        }
      }
      await quiet();
    },
    close() {
      manager.stop();
      store.close();
    },
  };
}
