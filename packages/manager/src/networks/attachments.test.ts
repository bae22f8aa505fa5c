/**
 * Plain containers' attachments to attachable overlays (networks/attachments.ts) on a real store
 * with the manager's loops: an attachment is a task on the caller's node with an address in the
 * subnet and the container's aliases, an endpoint of the network's state; network rm is refused
 * naming the container until it is detached; detach gives the address back at once; the reaper
 * deletes attachments their node reports ended or whose node left. Refusals (not attachable,
 * ingress, unknown network, a full subnet, another node's attachment, no session) change nothing.
 * Pools only from 198.19.128.0/17.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkSpec } from '@shoal/api';
import { hasCode } from '@shoal/common';
import { contains, parseCidr, parseIp } from '@shoal/network';
import type { ClusterStore } from '@shoal/store';
import type { Manager } from '../manager.js';
import { report, servicesRig, type ServicesRig } from '../orchestrator/test-rig.js';
import type { StoredTask } from '../services/objects.js';
import { settle } from '../test-support.js';
import { ATTACHMENT_RUNTIME, isNetworkAttachmentTask } from './attachments.js';

const POOL = ['198.19.128.0/17'];

function net(name: string, over: Partial<NetworkSpec> = {}): NetworkSpec {
  return { Name: name, DriverConfiguration: { Name: 'overlay' }, ...over };
}

async function rig(cluster: Parameters<typeof servicesRig>[1] = {}): Promise<ServicesRig> {
  const r = await servicesRig(['w1', 'w2'], { defaultAddrPool: POOL, subnetSize: 24, ...cluster });
  r.manager.allocator.start();
  return r;
}

async function idle(m: Manager): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await settle();
    await m.allocator.whenIdle();
    await m.attachmentReaper.whenIdle();
  }
}

function snapshot(store: ClusterStore): string {
  return JSON.stringify([store.list('network'), store.list('service'), store.list('task')]);
}

async function refused(r: ServicesRig, fn: () => Promise<unknown>, code: string, msg: RegExp): Promise<void> {
  await idle(r.manager);
  const before = snapshot(r.store);
  await assert.rejects(fn(), (e) => {
    assert.ok(hasCode(e, code), `${code} expected, got ${(e as Error).message}`);
    assert.match((e as Error).message, msg);
    return true;
  });
  await idle(r.manager);
  assert.equal(snapshot(r.store), before, 'nothing changed');
}

function addressOf(t: StoredTask | undefined): string {
  return (t?.NetworksAttachments?.[0]?.Addresses?.[0] ?? '').split('/')[0] ?? '';
}

test('attach: a task on the node with an address and the aliases; rm refused until detach frees it', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  const n = await r.manager.networksApi.createNetwork({ Spec: net('att', { Attachable: true }) });
  const id = n.ID ?? '';
  const a = r.manager.attachments;
  const taskId = await a.attach('w1', { Target: 'att', Aliases: ['c1', 'c1-alias', 'c1'] }, 'c1');
  const task = r.store.get<StoredTask>('task', taskId);
  assert.ok(task && isNetworkAttachmentTask(task));
  assert.equal(task.Spec?.Runtime, ATTACHMENT_RUNTIME);
  assert.deepEqual(task.Spec?.NetworkAttachmentSpec, { ContainerID: 'c1' });
  assert.equal(task.NodeID, 'w1');
  assert.equal(task.ServiceID, '');
  assert.equal(task.DesiredState, 'running');
  assert.equal(task.Status?.State, 'assigned', 'assigned to the caller at once, no scheduling');
  const att = task.NetworksAttachments?.[0];
  assert.equal(att?.Network?.ID, id);
  assert.deepEqual(att?.Aliases, ['c1', 'c1-alias'], 'aliases once each');
  const addr = addressOf(task);
  assert.ok(contains(parseCidr('198.19.128.0/24'), parseIp(addr)), `${addr} in the subnet`);

  // a second attachment on the other node gets another address
  const other = await a.attach('w2', { Target: id.slice(0, 6), Aliases: ['c2'] }, 'c2');
  const addr2 = addressOf(r.store.get<StoredTask>('task', other));
  assert.notEqual(addr2, addr);

  // the node is sent the network, with the attachment as an endpoint that has its aliases
  const states = r.manager.dispatcher.networks;
  assert.ok(states.neededBy('w1').has(id), 'w1 needs the network');
  await report(r.store, taskId, 'running');
  const ep = states.get(id)?.state.Endpoints?.find((e) => e.ID === taskId);
  assert.ok(ep, 'an endpoint of the network');
  assert.deepEqual(ep.Aliases, ['c1', 'c1-alias']);
  assert.equal(ep.Running, true);
  assert.equal(ep.ServiceID, '');

  await refused(
    r,
    () => r.manager.networksApi.removeNetwork('att'),
    'MANAGER_NETWORK_IN_USE',
    /network att is in use by container c1, container c2/,
  );
  await refused(r, () => a.detach('w2', taskId), 'MANAGER_CALLER_NOT_ALLOWED', /not a network attachment of node w2/);

  await a.detach('w1', taskId);
  assert.equal(r.store.get('task', taskId), undefined, 'the attachment task is gone');
  await a.detach('w1', taskId); // again: nothing to do
  await a.detach('w2', other);
  await idle(r.manager);
  await r.manager.networksApi.removeNetwork('att');
  assert.equal(r.store.list('network').length, 0);
});

test('attach refusals change nothing: not attachable, ingress, unknown, full subnet, no session', async (t) => {
  const r = await rig({ ingress: true });
  t.after(() => r.close());
  await r.manager.networksApi.createNetwork({ Spec: net('plain') });
  await r.manager.networksApi.createNetwork({
    Spec: net('tiny', { Attachable: true, IPAMOptions: { Configs: [{ Subnet: '198.19.140.0/30' }] } }),
  });
  const a = r.manager.attachments;
  await refused(
    r,
    () => a.attach('w1', { Target: 'plain' }, 'c'),
    'MANAGER_NETWORK_NOT_ATTACHABLE',
    /^network plain is not manually attachable$/,
  );
  await refused(
    r,
    () => a.attach('w1', { Target: 'ingress' }, 'c'),
    'MANAGER_NETWORK_NOT_ATTACHABLE',
    /network ingress is not manually attachable/,
  );
  await refused(
    r,
    () => a.attach('w1', { Target: 'nope' }, 'c'),
    'MANAGER_NETWORK_NOT_FOUND',
    /network nope not found/,
  );
  await refused(r, () => a.attach('w1', { Target: '' }, 'c'), 'MANAGER_INVALID_REQUEST', /Target/);
  // a /30 has one address besides the gateway
  await a.attach('w1', { Target: 'tiny' }, 'c1');
  await refused(
    r,
    () => a.attach('w1', { Target: 'tiny' }, 'c2'),
    'MANAGER_INVALID_REQUEST',
    /cannot attach to network tiny: no free address/,
  );
  // through the dispatcher: only with the caller's session
  await refused(
    r,
    () =>
      r.manager.dispatcher.attachNetwork(
        { SessionID: 'x', Config: { Target: 'tiny' }, ContainerID: 'c' },
        { nodeId: 'w1', addr: '' },
        a,
      ),
    'MANAGER_SESSION_INVALID',
    /w1/,
  );
});

test('the reaper deletes attachments their node reports ended, and those of a node that left', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  await r.manager.networksApi.createNetwork({
    Spec: net('att', { Attachable: true, IPAMOptions: { Configs: [{ Subnet: '198.19.141.0/30' }] } }),
  });
  const a = r.manager.attachments;
  const first = await a.attach('w1', { Target: 'att' }, 'c1');
  const addr = addressOf(r.store.get<StoredTask>('task', first));
  await report(r.store, first, 'running');
  await idle(r.manager);
  assert.ok(r.store.get('task', first), 'a running attachment stays');
  // the node found its container gone
  await report(r.store, first, 'complete');
  await idle(r.manager);
  assert.equal(r.store.get('task', first), undefined, 'an ended attachment is deleted');
  // the only address of the /30 is free again
  const second = await a.attach('w2', { Target: 'att' }, 'c2');
  assert.equal(addressOf(r.store.get<StoredTask>('task', second)), addr);
  // w2 leaves the cluster: its attachment goes with it
  const w2 = r.store.get('node', 'w2');
  assert.ok(w2);
  await r.store.update((tx) => tx.remove('node', 'w2', w2.Version.Index));
  await idle(r.manager);
  assert.equal(r.store.get('task', second), undefined, "a removed node's attachment is deleted");
  await idle(r.manager);
  // detach gives the address back at once (no allocator pass needed): the next attach gets it
  const third = await a.attach('w1', { Target: 'att' }, 'c3');
  assert.equal(addressOf(r.store.get<StoredTask>('task', third)), addr);
  await a.detach('w1', third);
  const fourth = await a.attach('w1', { Target: 'att' }, 'c4');
  assert.equal(addressOf(r.store.get<StoredTask>('task', fourth)), addr, 'the address came back');
  await a.detach('w1', fourth);
  await r.manager.networksApi.removeNetwork('att');
});
