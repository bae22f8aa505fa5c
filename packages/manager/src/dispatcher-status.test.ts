/**
 * The status batcher alone: a batch larger than one transaction may carry is written in
 * several transactions within the limit, and every update is stored. Tasks are written into
 * the store as the scheduler leaves them (assigned to a node).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '@shoal/api';
import type { StoredObject } from '@shoal/store';
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
