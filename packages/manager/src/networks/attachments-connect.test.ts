/**
 * `network connect` on the manager side (networks/attachments.ts): a container with an attachment
 * on one network gets a second attachment task on another; a second attachment of the same
 * container to a network it is on is refused as Docker's (`endpoint with name X already exists
 * in network Y`, from any node) and changes nothing; once detached or ended it may attach again.
 * Pools only from 198.19.128.0/17.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkSpec } from '@shoal/api';
import { hasCode } from '@shoal/common';
import type { ClusterStore } from '@shoal/store';
import type { Manager } from '../manager.js';
import { report, servicesRig } from '../orchestrator/test-rig.js';
import type { StoredTask } from '../services/objects.js';
import { settle } from '../test-support.js';

function net(name: string): NetworkSpec {
  return { Name: name, DriverConfiguration: { Name: 'overlay' }, Attachable: true };
}

async function idle(m: Manager): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await settle();
    await m.allocator.whenIdle();
    await m.attachmentReaper.whenIdle();
  }
}

function snapshot(store: ClusterStore): string {
  return JSON.stringify([store.list('network'), store.list('task')]);
}

test('connect: a second network is a second attachment task; the same network twice is refused', async (t) => {
  const r = await servicesRig(['w1', 'w2'], { defaultAddrPool: ['198.19.128.0/17'], subnetSize: 24 });
  r.manager.allocator.start();
  t.after(() => r.close());
  const a = await r.manager.networksApi.createNetwork({ Spec: net('neta') });
  const b = await r.manager.networksApi.createNetwork({ Spec: net('netb') });
  const at = r.manager.attachments;
  const first = await at.attach('w1', { Target: 'neta', Aliases: ['c1'] }, 'c1');
  await report(r.store, first, 'running');
  const second = await at.attach('w1', { Target: 'netb', Aliases: ['c1', 'c1b'] }, 'c1');
  assert.notEqual(second, first);
  const task = r.store.get<StoredTask>('task', second);
  assert.deepEqual(task?.Spec?.NetworkAttachmentSpec, { ContainerID: 'c1' });
  assert.equal(task?.NetworksAttachments?.[0]?.Network?.ID, b.ID);
  assert.deepEqual(task?.NetworksAttachments?.[0]?.Aliases, ['c1', 'c1b']);

  for (const [node, target, other] of [
    ['w1', 'netb', 'netb'],
    ['w1', a.ID ?? '', 'neta'],
    ['w2', 'netb', 'netb'],
  ] as const) {
    await idle(r.manager);
    const before = snapshot(r.store);
    await assert.rejects(at.attach(node, { Target: target, Aliases: ['c1'] }, 'c1'), (e) => {
      assert.ok(hasCode(e, 'MANAGER_ENDPOINT_EXISTS'), (e as Error).message);
      assert.equal((e as Error).message, `endpoint with name c1 already exists in network ${other}`);
      return true;
    });
    await idle(r.manager);
    assert.equal(snapshot(r.store), before, 'nothing changed');
  }
  // another container on the same network is fine
  await at.attach('w2', { Target: 'netb' }, 'c2');
  // detached (network disconnect): c1 may connect again
  await at.detach('w1', second);
  const again = await at.attach('w1', { Target: 'netb' }, 'c1');
  // ended on its node (the container went): the same
  await report(r.store, again, 'running');
  await report(r.store, again, 'complete');
  await idle(r.manager);
  await at.attach('w1', { Target: 'netb' }, 'c1');
});
