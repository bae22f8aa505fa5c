/**
 * Published ports and nodes' ingress load-balancer attachments, allocated by the allocator pass
 * on a real store (LocalLog) with the manager's loops: ingress ports asked as 0 get one from
 * 30000-32767 and keep it across updates; a port another service publishes in ingress mode is
 * refused at create and update (nothing written); ports and addresses come back when services
 * and nodes go; a new leader rebuilds both from the store and hands out nothing twice. Pools
 * only from 198.19.128.0/17.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PortConfig, ServiceSpec } from '@shoal/api';
import { hasCode } from '@shoal/common';
import type { StoredNode } from '../context.js';
import { Manager } from '../manager.js';
import { activeOf, root, servicesRig, workerNode, type ServicesRig } from '../orchestrator/test-rig.js';
import type { StoredService } from '../services/objects.js';
import { FakeClock, FakeRaft, settle } from '../test-support.js';

const POOL = ['198.19.128.0/17'];

async function idle(m: Manager): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await settle();
    await m.orchestrator.idle();
    await m.allocator.whenIdle();
  }
}

async function rig(): Promise<ServicesRig> {
  const r = await servicesRig(['w1', 'w2'], { defaultAddrPool: POOL, subnetSize: 24, ingress: true });
  r.manager.allocator.start();
  await idle(r.manager);
  return r;
}

function svc(name: string, ports: PortConfig[]): ServiceSpec {
  return {
    Name: name,
    TaskTemplate: { ContainerSpec: { Image: 'busybox:1' } },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Ports: ports },
  };
}

function published(r: ServicesRig, id: string): (number | undefined)[] {
  return (r.store.get<StoredService>('service', id)?.Endpoint?.Ports ?? []).map((p) => p.PublishedPort);
}

function lbAddresses(r: ServicesRig): Map<string, string> {
  return new Map(
    r.store.list<StoredNode>('node').map((n) => [n.ID, (n.Attachments ?? []).flatMap((a) => a.Addresses ?? []).join()]),
  );
}

test('published ports: ingress ports asked as 0 get 30000 on, kept across updates; conflicts refused', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  const a = await r.create(svc('a', [{ Protocol: 'tcp', TargetPort: 80 }]));
  const b = await r.create(
    svc('b', [
      { Protocol: 'tcp', TargetPort: 80, PublishedPort: 0 },
      { Protocol: 'udp', TargetPort: 53, PublishedPort: 0 },
      { Protocol: 'tcp', TargetPort: 443, PublishedPort: 8443 },
      { Protocol: 'tcp', TargetPort: 9000, PublishedPort: 0, PublishMode: 'host' },
    ]),
  );
  await idle(r.manager);
  assert.deepEqual(published(r, a.ID), [30000]);
  assert.deepEqual(published(r, b.ID), [30001, 30000, 8443, 0], 'udp has its own numbers; host mode is left as asked');
  const bPorts = r.store.get<StoredService>('service', b.ID)?.Endpoint?.Ports ?? [];
  assert.deepEqual(bPorts[0], { Protocol: 'tcp', TargetPort: 80, PublishedPort: 30001, PublishMode: 'ingress' });
  // Tasks carry the allocated ports (the scheduler reads host-mode ports from them).
  for (const task of activeOf(r.store, b.ID)) assert.deepEqual(task.Endpoint?.Ports, bPorts);

  // An update keeps the dynamic port; another service may not take a published one.
  await r.update(a.ID, (s) => ({
    ...s,
    TaskTemplate: { ...s.TaskTemplate, ContainerSpec: { Image: 'busybox:1', Env: ['X=1'] } },
  }));
  await idle(r.manager);
  assert.deepEqual(published(r, a.ID), [30000]);
  const before = JSON.stringify([r.store.list('service'), r.store.list('task')]);
  for (const [port, owner] of [
    [8443, 'b'],
    [30000, 'a'],
  ] as const) {
    await assert.rejects(
      r.manager.servicesApi.createService({
        Spec: svc('c', [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: port }]),
      }),
      (e) => {
        assert.ok(hasCode(e, 'MANAGER_PORT_IN_USE'), (e as Error).message);
        assert.match(
          (e as Error).message,
          new RegExp(`port ${port}/tcp is already published in ingress mode by service ${owner}`),
        );
        return true;
      },
    );
  }
  const cur = r.store.get<StoredService>('service', a.ID);
  await assert.rejects(
    r.manager.servicesApi.updateService({
      ServiceID: a.ID,
      ServiceVersion: { Index: cur?.Version.Index ?? 0 },
      Spec: svc('a', [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8443 }]),
    }),
    (e) => hasCode(e, 'MANAGER_PORT_IN_USE'),
  );
  await idle(r.manager);
  assert.equal(JSON.stringify([r.store.list('service'), r.store.list('task')]), before, 'nothing changed');
  // The same port on udp, or in host mode, is no conflict.
  const d = await r.create(
    svc('d', [
      { Protocol: 'udp', TargetPort: 80, PublishedPort: 8443 },
      { Protocol: 'tcp', TargetPort: 81, PublishedPort: 8443, PublishMode: 'host' },
    ]),
  );
  await idle(r.manager);
  assert.deepEqual(published(r, d.ID), [8443, 8443]);

  // a goes: its port is free for the next service.
  await r.manager.servicesApi.removeService('a');
  await idle(r.manager);
  const e = await r.create(svc('e', [{ Protocol: 'tcp', TargetPort: 80 }]));
  await idle(r.manager);
  assert.deepEqual(published(r, e.ID), [30000]);
});

test('ingress load-balancer attachments: one per node, given back on removal, kept by a new leader', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  const lbs = lbAddresses(r);
  assert.deepEqual([...lbs.keys()].sort(), ['mgr1', 'w1', 'w2']);
  for (const [id, addr] of lbs) assert.match(addr, /^198\.19\.128\.\d+\/24$/, `${id}: one address on ingress`);
  assert.equal(new Set(lbs.values()).size, 3);
  const ingress = r.store.list('network')[0];
  for (const n of r.store.list<StoredNode>('node')) {
    assert.equal(n.Attachments?.[0]?.Network?.ID, ingress?.ID);
    assert.equal(n.Attachments?.[0]?.Network?.Spec?.Ingress, true, 'the allocated network object');
  }
  const a = await r.create(svc('a', [{ Protocol: 'tcp', TargetPort: 80 }]));
  await idle(r.manager);

  // A new leader on the same store: nothing is allocated again, and nothing twice.
  r.raft.setLeader('mgr2');
  const m2 = new Manager({
    nodeId: 'mgr2',
    store: r.store,
    raft: new FakeRaft('mgr2'),
    rootCA: await root(),
    clock: new FakeClock(),
    heartbeatPeriodMs: 86_400_000,
  });
  m2.start();
  t.after(() => m2.stop());
  await r.store.update((tx) => tx.create('node', workerNode('w3')));
  const b = await m2.servicesApi.createService({ Spec: svc('b', [{ Protocol: 'tcp', TargetPort: 80 }]) });
  await idle(m2);
  const after = lbAddresses(r);
  for (const [id, addr] of lbs) assert.equal(after.get(id), addr, `${id} keeps its address`);
  const w3 = after.get('w3') ?? '';
  assert.match(w3, /^198\.19\.128\.\d+\/24$/);
  const ingressHeld = [
    ...after.values(),
    ...r.store.list<StoredService>('service').flatMap((s) => (s.Endpoint?.VirtualIPs ?? []).map((v) => v.Addr ?? '')),
    ...r.store
      .list('task')
      .flatMap((x) =>
        ((x as { NetworksAttachments?: { Addresses?: string[] }[] }).NetworksAttachments ?? []).flatMap(
          (n) => n.Addresses ?? [],
        ),
      ),
  ];
  assert.equal(new Set(ingressHeld).size, ingressHeld.length, `no address twice: ${ingressHeld.join(' ')}`);
  assert.deepEqual(published(r, a.ID), [30000]);
  assert.deepEqual(published(r, b.ID ?? ''), [30001], 'the new leader knows 30000 is taken');

  // A removed node's address goes back.
  const used = (): Promise<number> =>
    m2.networkAllocation.exclusive('test', (x) => Promise.resolve(x.usage(ingress?.ID ?? '').used));
  const usedBefore = await used();
  await r.store.update((tx) => tx.remove('node', 'w3'));
  await idle(m2);
  assert.equal(await used(), usedBefore - 1);
});
