/**
 * `npm run bench -- scheduler`: the scheduler in this process on a store over a LocalLog (no
 * Raft), 100,000 pending tasks on 1,000 ready nodes. Two layouts: 100 services of 1,000 tasks
 * (a tenth with constraints, a tenth spread over a zone label, a tenth with CPU and memory
 * reservations), and one service of 100,000 tasks (one pass, several transactions: one holds
 * at most MAX_WRITE_BYTES of tasks). The figure is the scheduler's pass: decide every task and
 * build each service's transactions (`scheduler_100k_on_1k_ms`); then
 * `store_commit_100k_ms` is the store committing those transactions (the store's JSON codec
 * through the LocalLog, indexes, watches) until every task reads `assigned`. Ends with one
 * JSON line. The CPU time of the pass is given too (`..._cpu_ms`): on a shared machine it says
 * more than the wall time.
 */
import { performance } from 'node:perf_hooks';
import { silentLogger, systemClock } from '@shoal/common';
import { ClusterStore, LocalLog, StoreStateMachine } from '@shoal/store';
import type { ManagerContext, StoredNode } from '../context.js';
import { Scheduler, type StoredTask } from '../scheduler/scheduler.js';

const NODES = 1000;
const TASKS = 100_000;

function log(msg: string): void {
  process.stderr.write(`bench scheduler: ${msg}\n`);
}

async function fill(services: number): Promise<{ store: ClusterStore; scheduler: Scheduler }> {
  const sm = new StoreStateMachine();
  const store = new ClusterStore({ log: new LocalLog(sm), stateMachine: sm });
  await store.update((tx) => {
    for (let i = 0; i < NODES; i++) {
      const node: StoredNode = {
        ID: `node${i}`,
        Version: { Index: 0 },
        CreatedAt: '',
        UpdatedAt: '',
        Spec: { Name: '', Labels: { zone: `z${i % 10}` }, Role: 'worker', Availability: 'active' },
        Description: {
          Hostname: `host${i}`,
          Platform: { OS: 'linux', Architecture: 'x86_64' },
          Resources: { NanoCPUs: 64e9, MemoryBytes: 256 * 1024 ** 3 },
        },
        Status: { State: 'ready' },
      };
      tx.create('node', node as StoredNode & Record<string, unknown>);
    }
  });
  const per = TASKS / services;
  for (let s = 0; s < services; s++) {
    const kind = s % 10;
    await store.update((tx) => {
      for (let i = 0; i < per; i++) {
        const task: StoredTask = {
          ID: `s${s}t${i}`,
          Version: { Index: 0 },
          CreatedAt: '',
          UpdatedAt: '',
          Name: `svc${s}.${i + 1}`,
          ServiceID: `svc${s}`,
          Slot: i + 1,
          NodeID: '',
          DesiredState: 'running',
          Status: { State: 'pending' },
          SpecVersion: { Index: 1 },
          Spec: {
            ContainerSpec: { Image: 'busybox' },
            Resources: kind === 2 ? { Reservations: { NanoCPUs: 1e7, MemoryBytes: 16 * 1024 ** 2 } } : {},
            Placement: {
              Constraints: kind === 0 ? ['node.labels.zone!=z9', 'node.role==worker'] : [],
              Preferences: kind === 1 ? [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }] : [],
            },
          },
        };
        tx.create('task', task as StoredTask & Record<string, unknown>);
      }
    });
  }
  // The scheduler needs only the store, a logger and a clock of the manager's context.
  const ctx = { nodeId: 'bench', store, logger: silentLogger(), clock: systemClock } as unknown as ManagerContext;
  return { store, scheduler: new Scheduler(ctx) };
}

async function run(services: number): Promise<{ plan: number; planCpu: number; commit: number }> {
  log(`${TASKS} pending tasks in ${services} service(s) on ${NODES} nodes: filling the store`);
  const { store, scheduler } = await fill(services);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const p = scheduler.plan();
  const t1 = performance.now();
  const cpu = process.cpuUsage(c0);
  const r = await scheduler.write(p);
  const plan = t1 - t0;
  const planCpu = (cpu.user + cpu.system) / 1000;
  const commit = performance.now() - t1;
  const assigned = store.list<StoredTask>('task').filter((t) => t.Status?.State === 'assigned').length;
  if (assigned !== TASKS) throw new Error(`only ${assigned} of ${TASKS} tasks stored as assigned`);
  log(
    `  decided in ${plan.toFixed(0)} ms (CPU ${planCpu.toFixed(0)} ms); ` +
      `${r.transactions} transactions committed in ${commit.toFixed(0)} ms`,
  );
  return { plan, planCpu, commit };
}

const many = await run(100);
const one = await run(1);
console.log(
  JSON.stringify({
    scheduler_100k_on_1k_ms: Math.round(many.plan),
    scheduler_100k_on_1k_cpu_ms: Math.round(many.planCpu),
    scheduler_100k_one_service_ms: Math.round(one.plan),
    store_commit_100k_ms: Math.round(many.commit),
    goal_scheduler_100k_on_1k_ms: 1000,
  }),
);
