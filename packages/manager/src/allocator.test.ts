/**
 * The allocator step: new tasks still wanted move to pending in one transaction; tasks the
 * managers no longer want stay new; the seam for network attachments (issue 10) can hold a
 * task back. Tasks are written into the store as the orchestrator (another part) creates them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '@shoal/api';
import type { StoredObject } from '@shoal/store';
import { Allocator } from './allocator.js';
import { rig, settle } from './test-support.js';

type StoredTask = Task & StoredObject;

function newTask(id: string, desired: string): { ID: string } & Record<string, unknown> {
  return {
    ID: id,
    Name: `web.1.${id}`,
    ServiceID: 'svc',
    Slot: 1,
    DesiredState: desired,
    Status: { State: 'new' },
    Spec: {},
  };
}

test('allocator: new tasks still wanted become pending together; others stay new', async () => {
  const r = await rig();
  try {
    // Only the allocator here: the scheduler would move the pending tasks on.
    r.manager.scheduler.stop();
    r.manager.orchestrator.stop(); // its reaper would delete these tasks of no service
    const before = r.store.revision;
    await r.store.update((tx) => {
      tx.create('task', newTask('a', 'running'));
      tx.create('task', newTask('b', 'running'));
      tx.create('task', newTask('job', 'complete'));
      tx.create('task', newTask('gone', 'shutdown'));
    });
    await settle();
    await r.manager.allocator.whenIdle();
    await settle();
    const state = (id: string): string | undefined => r.store.get<StoredTask>('task', id)?.Status?.State;
    assert.equal(state('a'), 'pending');
    assert.equal(state('b'), 'pending');
    assert.equal(state('job'), 'pending');
    assert.equal(state('gone'), 'new');
    assert.equal(r.store.get<StoredTask>('task', 'a')?.Status?.Message, 'pending task scheduling');
    assert.equal(r.store.revision - before, 2, 'the create, then one allocator transaction');
  } finally {
    r.manager.stop();
  }
});

test('allocator: the network seam can hold a task back until a later pass', async () => {
  const r = await rig();
  r.manager.stop();
  let ready = false;
  const alloc = new Allocator(r.manager.ctx, (t) =>
    ready ? { ...t, NetworksAttachments: [{ Addresses: ['198.18.5.2/24'] }] } : undefined,
  );
  await r.store.update((tx) => tx.create('task', newTask('n1', 'running')));
  assert.equal(await alloc.pass(), 0);
  assert.equal(r.store.get<StoredTask>('task', 'n1')?.Status?.State, 'new');
  ready = true;
  assert.equal(await alloc.pass(), 1);
  const t = r.store.get<StoredTask>('task', 'n1');
  assert.equal(t?.Status?.State, 'pending');
  assert.deepEqual(t?.NetworksAttachments?.[0]?.Addresses, ['198.18.5.2/24']);
});
