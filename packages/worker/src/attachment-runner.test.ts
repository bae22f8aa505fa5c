/**
 * AttachmentRunner with a fake NetworkController (unit test of this module): the sandbox is made
 * and the task reported RUNNING with the create options offered on `ready`; the claim check keeps
 * an attachment whose container is in its sandbox, ends one whose container was seen and is gone
 * at once, and one no container came into only after the grace; a desired state of shutdown
 * removes the sandbox and reports SHUTDOWN; a sandbox that cannot be made fails the task and
 * rejects `ready`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task, TaskStatus } from '@shoal/api';
import { silentLogger } from '@shoal/common';
import { AttachmentRunner, holdsSandbox, isAttachmentTask } from './attachment-runner.js';
import type { NetworkController, TaskNetworkOptions } from './network/network-controller.js';

const OPTIONS: TaskNetworkOptions = {
  create: { network: { path: '/run/netns/shoal-t-x-a1' }, dns: ['127.0.0.11'], dnsOptions: ['ndots:0'] },
  addresses: ['198.19.128.5'],
};

function attachment(id: string, over: Partial<Task> = {}): Task {
  return {
    ID: id,
    Spec: { Runtime: 'attachment', NetworkAttachmentSpec: { ContainerID: 'c1' }, Networks: [{ Target: 'n1' }] },
    NodeID: 'w1',
    DesiredState: 'running',
    Status: { State: 'assigned' },
    ...over,
  };
}

function rig(prepare: () => Promise<TaskNetworkOptions> = () => Promise.resolve(OPTIONS)) {
  const reports: string[] = [];
  const released: string[] = [];
  let now = 1000;
  const network = {
    prepare: () => {
      const options = prepare();
      return { options, ready: options.then(() => undefined) };
    },
    adopt: () => Promise.resolve(),
    release: (id: string) => {
      released.push(id);
      return Promise.resolve();
    },
  } as unknown as NetworkController;
  const ctx = {
    network,
    log: silentLogger(),
    report: (_id: string, s: TaskStatus) => reports.push(s.State ?? ''),
    sandboxPath: (id: string) => `/run/netns/shoal-t-test-absent-${id}`,
    now: () => now,
  };
  return { ctx, reports, released, advance: (ms: number) => (now += ms) };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

test('an attachment task is told from a container task', () => {
  assert.equal(isAttachmentTask(attachment('a')), true);
  assert.equal(isAttachmentTask({ ID: 'b', Spec: { ContainerSpec: { Image: 'x' } } }), false);
});

test('sandbox made, RUNNING, options on ready; a claimed attachment stays, a vanished container ends it', async () => {
  const r = rig();
  const runner = new AttachmentRunner(r.ctx, attachment('a1'));
  runner.start();
  assert.deepEqual(await runner.ready, OPTIONS);
  await settle();
  assert.deepEqual(r.reports, ['running']);
  assert.equal(runner.attached, true);
  assert.equal(await runner.checkClaim(false, 60_000), false, 'no container yet, within the grace');
  assert.equal(await runner.checkClaim(true, 60_000), false, 'its container is in the sandbox');
  assert.deepEqual(r.released, []);
  // the container is gone: the attachment ends at once, whatever the grace
  assert.equal(await runner.checkClaim(false, 60_000), true);
  assert.deepEqual(r.released, ['a1']);
  assert.deepEqual(r.reports, ['running', 'complete']);
  assert.equal(runner.attached, false);
  assert.equal(await runner.checkClaim(false, 60_000), false, 'ended once');
});

test('no container within the grace: the attachment ends (the CLI that asked died)', async () => {
  const r = rig();
  const runner = new AttachmentRunner(r.ctx, attachment('a2'));
  runner.start();
  await runner.ready;
  await settle();
  r.advance(59_000);
  assert.equal(await runner.checkClaim(false, 60_000), false);
  r.advance(2_000);
  assert.equal(await runner.checkClaim(false, 60_000), true);
  assert.deepEqual(r.released, ['a2']);
  assert.deepEqual(r.reports, ['running', 'complete']);
});

test('desired shutdown removes the sandbox; a sandbox that cannot be made fails the task', async () => {
  const r = rig();
  const runner = new AttachmentRunner(r.ctx, attachment('a3'));
  runner.start();
  await runner.ready;
  runner.update(attachment('a3', { DesiredState: 'shutdown', Status: { State: 'running' } }));
  await settle();
  assert.deepEqual(r.released, ['a3']);
  assert.deepEqual(r.reports, ['running', 'shutdown']);

  const bad = rig(() => Promise.reject(new Error('no such network')));
  const failing = new AttachmentRunner(bad.ctx, attachment('a4'));
  failing.start();
  await assert.rejects(failing.ready, /no such network/);
  await settle();
  assert.deepEqual(bad.reports, ['failed']);
});

test('a container holds its sandbox unless it stopped for good (Docker releases endpoints at stop)', () => {
  assert.equal(holdsSandbox({ status: 'created' }), true);
  assert.equal(holdsSandbox({ status: 'running' }), true);
  assert.equal(holdsSandbox({ status: 'exited', exitCode: 0 }), false);
  assert.equal(holdsSandbox({ status: 'exited', exitCode: 137, manuallyStopped: true }), false);
  // one its restart policy brings back keeps it, unless a user stopped it
  assert.equal(holdsSandbox({ status: 'exited', exitCode: 0, restartPolicy: { name: 'always' } }), true);
  assert.equal(
    holdsSandbox({ status: 'exited', exitCode: 0, restartPolicy: { name: 'always' }, manuallyStopped: true }),
    false,
  );
  assert.equal(holdsSandbox({ status: 'exited', exitCode: 0, restartPolicy: { name: 'on-failure' } }), false);
  assert.equal(holdsSandbox({ status: 'exited', exitCode: 1, restartPolicy: { name: 'on-failure' } }), true);
});
