/**
 * The status batcher alone: a batch larger than one transaction may carry is written in
 * several transactions within the limit, and every update is stored. Tasks are written into
 * the store as the scheduler leaves them (assigned to a node). Updates that arrive during a slow
 * commit are written together in the next transaction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '@shoal/api';
import type { StoredObject } from '@shoal/store';
import { STATUS_BATCH_MS } from './dispatcher-status.js';
import { MAX_WRITE_BYTES } from './scheduler/scheduler.js';
import { rig } from './test-support.js';

type StoredTask = Task & StoredObject;

test('task status: a batch too large for one transaction goes in several within the limit', async () => {
  const r = await rig();
  try {
    r.manager.scheduler.stop();
    r.manager.allocator.stop();
    r.manager.orchestrator.stop(); // its reaper would delete these tasks of no service
    const big = 'y'.repeat(100 * 1024);
    const ids = Array.from({ length: 60 }, (_, i) => `big${i}`);
    for (let i = 0; i < ids.length; i += 10) {
      await r.store.update((tx) => {
        for (const id of ids.slice(i, i + 10)) {
          const task: Record<string, unknown> & { ID: string } = {
            ID: id,
            ServiceID: 'svc',
            NodeID: 'w1',
            DesiredState: 'running',
            Status: { State: 'assigned' },
            Spec: { ContainerSpec: { Image: 'busybox', Env: [`BIG=${big}`] } },
          };
          tx.create('task', task);
        }
      });
    }
    const before = r.manager.dispatcher.status.transactions;
    await r.manager.dispatcher.status.submit(
      'w1',
      ids.map((id) => ({ TaskID: id, Status: { State: 'running' } })),
    );
    const txns = r.manager.dispatcher.status.transactions - before;
    const limit = Math.floor(MAX_WRITE_BYTES / (100 * 1024));
    assert.ok(txns >= Math.ceil(ids.length / limit), `${txns} transactions`);
    const tasks = ids.map((id) => r.store.get<StoredTask>('task', id));
    for (const t of tasks) assert.equal(t?.Status?.State, 'running');
    const perTxn = new Map<number, number>();
    for (const t of tasks) perTxn.set(t?.Version.Index ?? 0, (perTxn.get(t?.Version.Index ?? 0) ?? 0) + 1);
    for (const n of perTxn.values()) assert.ok(n <= limit, `${n} tasks in one transaction (limit ${limit})`);
  } finally {
    r.manager.stop();
  }
});

test('task status: updates that arrive while a batch is being committed go in one next transaction', async () => {
  const r = await rig();
  try {
    r.manager.scheduler.stop();
    r.manager.allocator.stop();
    r.manager.orchestrator.stop();
    const ids = ['slow0', 'slow1', 'slow2', 'slow3', 'slow4'];
    await r.store.update((tx) => {
      for (const id of ids)
        tx.create('task', {
          ID: id,
          ServiceID: 'svc',
          NodeID: 'w1',
          DesiredState: 'running',
          Status: { State: 'assigned' },
        });
    });
    // The first commit is held (a slow disk under Raft) until the others have been submitted.
    const update = r.store.update.bind(r.store);
    let inFlight!: () => void;
    const started = new Promise<void>((resolve) => (inFlight = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    r.store.update = async (fn: Parameters<typeof update>[0]) => {
      if (calls++ === 0) {
        inFlight();
        await held;
      }
      return update(fn);
    };
    const before = r.manager.dispatcher.status.transactions;
    const first = r.manager.dispatcher.status.submit('w1', [{ TaskID: 'slow0', Status: { State: 'running' } }]);
    await started;
    // each one after the batch window of the one before: without coalescing, one transaction each
    const later: Promise<void>[] = [];
    for (const id of ids.slice(1)) {
      later.push(r.manager.dispatcher.status.submit('w1', [{ TaskID: id, Status: { State: 'running' } }]));
      await new Promise((resolve) => setTimeout(resolve, STATUS_BATCH_MS * 2));
    }
    release();
    await Promise.all([first, ...later]);
    assert.equal(r.manager.dispatcher.status.transactions - before, 2);
    for (const id of ids) assert.equal(r.store.get<StoredTask>('task', id)?.Status?.State, 'running');
    // and the batcher is idle again: a new update is written by its own timer
    await r.manager.dispatcher.status.submit('w1', [{ TaskID: 'slow0', Status: { State: 'complete' } }]);
    assert.equal(r.store.get<StoredTask>('task', 'slow0')?.Status?.State, 'complete');
  } finally {
    r.manager.stop();
  }
});
