/**
 * Networks on a real store (LocalLog) with the manager's loops running: network create/ls/rm
 * with the packages/network allocator, tasks' addresses and services' VIPs filled by the
 * allocator pass, a new leader's allocator rebuilt from the store, release on rm, and bad input
 * refused with a clear error that changes nothing. Pools only from 198.19.128.0/17.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkSpec, ServiceSpec } from '@shoal/api';
import { hasCode } from '@shoal/common';
import { checkEncryptionSupport, contains, parseCidr, parseIp } from '@shoal/network';
import type { ClusterStore } from '@shoal/store';
import { Manager } from '../manager.js';
import { activeOf, report, root, servicesRig, type ServicesRig } from '../orchestrator/test-rig.js';
import type { StoredService, StoredTask } from '../services/objects.js';
import { FakeClock, FakeRaft, settle } from '../test-support.js';

const POOL = ['198.19.128.0/17'];

function net(name: string, over: Partial<NetworkSpec> = {}): NetworkSpec {
  return { Name: name, DriverConfiguration: { Name: 'overlay' }, ...over };
}

function svc(name: string, networks: string[], over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    Name: name,
    TaskTemplate: { ContainerSpec: { Image: 'busybox:1' }, Networks: networks.map((n) => ({ Target: n })) },
    Mode: { Replicated: { Replicas: 3 } },
    ...over,
  };
}

/**
 * The services rig (which plays the scheduler and the workers itself) with the allocator loop
 * running: its passes are what these tests are about.
 */
async function allocatingRig(...args: Parameters<typeof servicesRig>): Promise<ServicesRig> {
  const r = await servicesRig(...args);
  r.manager.allocator.start();
  return r;
}

async function idle(m: Manager): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await settle();
    await m.orchestrator.idle();
    await m.allocator.whenIdle();
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
    assert.doesNotMatch((e as Error).message, /\n/);
    return true;
  });
  await idle(r.manager);
  assert.equal(snapshot(r.store), before, 'nothing changed');
}

/** Every address held by a live task or a service VIP on `networkId`, without the prefix length. */
function held(store: ClusterStore, networkId: string): string[] {
  const tasks = store
    .list<StoredTask>('task')
    .filter(
      (t) => !['complete', 'shutdown', 'failed', 'rejected', 'orphaned', 'remove'].includes(t.Status?.State ?? ''),
    )
    .flatMap((t) => (t.NetworksAttachments ?? []).filter((a) => a.Network?.ID === networkId))
    .flatMap((a) => a.Addresses ?? []);
  const vips = store
    .list<StoredService>('service')
    .flatMap((s) => s.Endpoint?.VirtualIPs ?? [])
    .filter((v) => v.NetworkID === networkId)
    .map((v) => v.Addr ?? '');
  return [...tasks, ...vips].map((a) => a.split('/')[0] ?? '');
}

function assertUnique(list: string[]): void {
  assert.equal(new Set(list).size, list.length, `duplicate addresses in ${list.join(' ')}`);
}

test('network create: pool subnet and VNI, lookups and filters, refusals that change nothing', async (t) => {
  const r = await allocatingRig(['w1'], { defaultAddrPool: POOL, subnetSize: 24 });
  t.after(() => r.close());
  const api = r.manager.networksApi;
  const a = await api.createNetwork({ Spec: net('front', { Labels: { tier: 'web' }, Attachable: true }) });
  assert.equal(a.Spec?.Scope, 'swarm');
  assert.equal(a.Spec?.Attachable, true);
  assert.deepEqual(a.IPAMOptions?.Configs, [{ Subnet: '198.19.128.0/24', Gateway: '198.19.128.1' }]);
  assert.equal(a.DriverState?.Name, 'overlay');
  assert.equal(a.DriverState?.Options?.['com.docker.network.driver.overlay.vxlanid_list'], '4096');
  const b = await api.createNetwork({
    Spec: net('back', {
      Internal: true,
      IPAMOptions: { Configs: [{ Subnet: '198.19.200.0/24', Gateway: '198.19.200.254', Range: '198.19.200.128/25' }] },
    }),
  });
  assert.deepEqual(b.IPAMOptions?.Configs, [
    { Subnet: '198.19.200.0/24', Gateway: '198.19.200.254', Range: '198.19.200.128/25' },
  ]);
  assert.equal(b.DriverState?.Options?.['com.docker.network.driver.overlay.vxlanid_list'], '4097');

  assert.equal(api.getNetwork('front').ID, a.ID);
  assert.equal(api.getNetwork((a.ID ?? '').slice(0, 10)).Spec?.Name, 'front');
  assert.throws(
    () => api.getNetwork('nope'),
    (e) => hasCode(e, 'MANAGER_NETWORK_NOT_FOUND'),
  );
  const names = (f: Parameters<typeof api.listNetworks>[0]): string[] =>
    api.listNetworks(f).map((n) => n.Spec?.Name ?? '');
  assert.deepEqual(names({}), ['back', 'front']);
  assert.deepEqual(names({ Filters: { Labels: { tier: '' } } }), ['front']);
  assert.deepEqual(names({ Filters: { NamePrefixes: ['ba'] } }), ['back']);
  assert.deepEqual(names({ Filters: { Drivers: ['bridge'] } }), []);

  await refused(r, () => api.createNetwork({ Spec: net('front') }), 'MANAGER_NAME_EXISTS', /network front already/);
  await refused(
    r,
    () => api.createNetwork({ Spec: net('lap', { IPAMOptions: { Configs: [{ Subnet: '198.19.128.128/25' }] } }) }),
    'NETWORK_SUBNET_OVERLAP',
    /198\.19\.128\.128\/25 overlaps 198\.19\.128\.0\/24 of network front/,
  );
  await refused(
    r,
    () => api.createNetwork({ Spec: net('br', { DriverConfiguration: { Name: 'bridge' } }) }),
    'MANAGER_INVALID_REQUEST',
    /driver "bridge" is not supported for swarm networks/,
  );
  await refused(
    r,
    () => api.createNetwork({ Spec: net('gw', { IPAMOptions: { Configs: [{ Gateway: '198.19.5.1' }] } }) }),
    'NETWORK_INVALID_ADDRESS',
    /need a --subnet/,
  );
  await refused(r, () => api.createNetwork({ Spec: net('Bad name!') }), 'MANAGER_INVALID_REQUEST', /DNS name/);
  const encrypted = (): Promise<unknown> =>
    api.createNetwork({
      Spec: net('secret', { DriverConfiguration: { Name: 'overlay', Options: { encrypted: '' } } }),
    });
  const kernelHasEsp = await checkEncryptionSupport().then(
    () => true,
    (e: unknown) => {
      if (!hasCode(e, 'NETWORK_ENCRYPTION_UNSUPPORTED')) throw e;
      return false;
    },
  );
  if (kernelHasEsp) assert.ok(await encrypted());
  else await refused(r, encrypted, 'NETWORK_ENCRYPTION_UNSUPPORTED', /IPsec ESP/);
});

test('network create: an exhausted pool is refused and stores nothing; rm gives the subnet back', async (t) => {
  const r = await allocatingRig(['w1'], { defaultAddrPool: ['198.19.130.0/23'], subnetSize: 24 });
  t.after(() => r.close());
  const api = r.manager.networksApi;
  await api.createNetwork({ Spec: net('n1') });
  const n2 = await api.createNetwork({ Spec: net('n2') });
  await refused(r, () => api.createNetwork({ Spec: net('n3') }), 'NETWORK_POOL_EXHAUSTED', /no free \/24 subnet/);
  await api.removeNetwork('n2');
  await refused(r, () => api.removeNetwork('n2'), 'MANAGER_NETWORK_NOT_FOUND', /network n2 not found/);
  const n3 = await api.createNetwork({ Spec: net('n3') });
  assert.deepEqual(n3.IPAMOptions?.Configs, n2.IPAMOptions?.Configs, 'the subnet came back');
  assert.equal(
    n3.DriverState?.Options?.['com.docker.network.driver.overlay.vxlanid_list'],
    n2.DriverState?.Options?.['com.docker.network.driver.overlay.vxlanid_list'],
    'the VNI came back',
  );
});

test('services on a network: unique task addresses in the subnet, one VIP (none for dnsrr), names resolved', async (t) => {
  const r = await allocatingRig(['w1', 'w2'], { defaultAddrPool: POOL, subnetSize: 24 });
  t.after(() => r.close());
  const n = await r.manager.networksApi.createNetwork({ Spec: net('app') });
  const id = n.ID ?? '';
  const subnet = parseCidr('198.19.128.0/24');
  const web = await r.create(svc('web', ['app']));
  const dns = await r.create(svc('db', [id.slice(0, 8)], { EndpointSpec: { Mode: 'dnsrr' } }));
  await idle(r.manager);
  const w = r.store.get<StoredService>('service', web.ID);
  assert.deepEqual(w?.Spec?.TaskTemplate?.Networks, [{ Target: id, Aliases: [] }], 'name resolved to the ID');
  const vips = w?.Endpoint?.VirtualIPs ?? [];
  assert.equal(vips.length, 1);
  assert.equal(vips[0]?.NetworkID, id);
  assert.ok(contains(subnet, parseIp((vips[0]?.Addr ?? '').split('/')[0] ?? '')), `VIP ${vips[0]?.Addr} in the subnet`);
  assert.deepEqual(r.store.get<StoredService>('service', dns.ID)?.Endpoint?.VirtualIPs, [], 'no VIP with dnsrr');
  const tasks = [...activeOf(r.store, web.ID), ...activeOf(r.store, dns.ID)];
  assert.equal(tasks.length, 6);
  for (const task of tasks) {
    assert.notEqual(task.Status?.State, 'new', 'allocated');
    const att = task.NetworksAttachments ?? [];
    assert.equal(att.length, 1);
    assert.equal(att[0]?.Network?.ID, id);
    assert.equal(att[0]?.Network?.Spec?.Name, 'app');
    const addr = att[0]?.Addresses?.[0] ?? '';
    assert.match(addr, /\/24$/);
    assert.ok(contains(subnet, parseIp(addr.split('/')[0] ?? '')), `${addr} in the subnet`);
    assert.notEqual(addr.split('/')[0], '198.19.128.1', 'not the gateway');
  }
  assert.deepEqual(activeOf(r.store, web.ID)[0]?.Endpoint?.VirtualIPs, vips, "the task carries its service's VIPs");
  const all = held(r.store, id);
  assert.equal(all.length, 7);
  assertUnique(all);

  await refused(
    r,
    () => r.manager.servicesApi.createService({ Spec: svc('x', ['nope']) }),
    'MANAGER_NETWORK_NOT_FOUND',
    /network nope not found \(attached to service x\)/,
  );
  await refused(
    r,
    () => r.manager.servicesApi.createService({ Spec: svc('x', ['app', id]) }),
    'MANAGER_INVALID_REQUEST',
    /network app is given twice/,
  );
  await refused(
    r,
    () => r.manager.networksApi.removeNetwork('app'),
    'MANAGER_NETWORK_IN_USE',
    /network app is in use by service db, service web, task db\.1/,
  );
});

test('a new leader rebuilds the allocator from the store and never hands out an address twice', async (t) => {
  const r = await allocatingRig(['w1', 'w2'], { defaultAddrPool: POOL, subnetSize: 24 });
  t.after(() => r.close());
  const n = await r.manager.networksApi.createNetwork({ Spec: net('app') });
  const id = n.ID ?? '';
  const web = await r.create(svc('web', ['app']));
  await r.runAll(web.ID, ['w1', 'w2']);
  await idle(r.manager);
  const before = held(r.store, id);
  assert.equal(before.length, 4);
  // This manager steps down; another one on the same store leads with a fresh allocator.
  r.raft.setLeader('mgr2');
  assert.equal(r.manager.leaderLoopsRunning, false);
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
  const other = await m2.networksApi.createNetwork({ Spec: net('other') });
  assert.deepEqual(other.IPAMOptions?.Configs, [{ Subnet: '198.19.129.0/24', Gateway: '198.19.129.1' }]);
  const cur = r.store.get<StoredService>('service', web.ID);
  await m2.servicesApi.updateService({
    ServiceID: web.ID,
    ServiceVersion: { Index: cur?.Version.Index ?? 0 },
    Spec: { ...cur?.Spec, Mode: { Replicated: { Replicas: 9 } } },
  });
  await idle(m2);
  const after = held(r.store, id);
  assert.equal(after.length, 10, '9 tasks and the VIP');
  assertUnique(after);
  for (const a of before) assert.ok(after.includes(a), `${a} kept`);
  assert.equal(activeOf(r.store, web.ID).filter((x) => x.Status?.State === 'new').length, 0);
});

test('addresses come back when tasks stop and services go; an exhausted network holds tasks new', async (t) => {
  const r = await allocatingRig(['w1', 'w2'], { defaultAddrPool: POOL, subnetSize: 24 });
  t.after(() => r.close());
  // A /29: 6 addresses but the gateway: 5 for tasks and VIPs.
  const n = await r.manager.networksApi.createNetwork({
    Spec: net('tiny', { IPAMOptions: { Configs: [{ Subnet: '198.19.140.0/29' }] } }),
  });
  const id = n.ID ?? '';
  const big = await r.create(svc('big', ['tiny'], { Mode: { Replicated: { Replicas: 6 } } }));
  await idle(r.manager);
  const waiting = activeOf(r.store, big.ID).filter((x) => (x.Status?.State ?? 'new') === 'new');
  assert.equal(waiting.length, 2, 'VIP + 4 tasks fit, 2 wait');
  for (const w of waiting) assert.match(w.Status?.Err ?? '', /no free address left in 198\.19\.140\.0\/29/);
  assert.equal(held(r.store, id).length, 5);

  await r.manager.servicesApi.removeService('big');
  await idle(r.manager);
  for (const task of r.store.list<StoredTask>('task'))
    if (task.Status?.State !== 'new') await report(r.store, task.ID, 'shutdown');
  await idle(r.manager);
  assert.equal(r.store.list('task').length, 0, 'tasks reaped');
  // Everything is free again: 1 VIP + 4 tasks fit once more.
  const again = await r.create(svc('again', ['tiny'], { Mode: { Replicated: { Replicas: 4 } } }));
  await idle(r.manager);
  assert.equal(activeOf(r.store, again.ID).filter((x) => (x.Status?.State ?? 'new') === 'new').length, 0);
  assert.equal(held(r.store, id).length, 5);
  assertUnique(held(r.store, id));
  await r.manager.servicesApi.removeService('again');
  await idle(r.manager);
  for (const task of r.store.list<StoredTask>('task')) await report(r.store, task.ID, 'shutdown');
  await idle(r.manager);
  await r.manager.networksApi.removeNetwork('tiny');
  assert.equal(r.store.list('network').length, 0);
});

test('swarm init with ingress: the ingress network, and services publishing in ingress mode attach to it', async (t) => {
  const r = await allocatingRig(['w1'], { defaultAddrPool: POOL, subnetSize: 24, ingress: true });
  t.after(() => r.close());
  const api = r.manager.networksApi;
  const ing = api.getNetwork('ingress');
  assert.equal(ing.Spec?.Ingress, true);
  assert.deepEqual(ing.IPAMOptions?.Configs, [{ Subnet: '198.19.128.0/24', Gateway: '198.19.128.1' }]);
  assert.equal(ing.DriverState?.Options?.['com.docker.network.driver.overlay.vxlanid_list'], '4096');
  const app = await api.createNetwork({ Spec: net('app') });
  assert.deepEqual(app.IPAMOptions?.Configs, [{ Subnet: '198.19.129.0/24', Gateway: '198.19.129.1' }]);
  await refused(
    r,
    () => api.createNetwork({ Spec: net('ing2', { Ingress: true }) }),
    'MANAGER_NAME_EXISTS',
    /only one/,
  );

  const pub = await r.create(
    svc('pub', ['app'], { EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080 }] } }),
  );
  const host = await r.create(
    svc('host', ['app'], {
      EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8081, PublishMode: 'host' }] },
    }),
  );
  await idle(r.manager);
  const vipNets = (id: string): string[] =>
    (r.store.get<StoredService>('service', id)?.Endpoint?.VirtualIPs ?? []).map((v) => v.NetworkID ?? '');
  assert.deepEqual(vipNets(pub.ID), [ing.ID, app.ID]);
  assert.deepEqual(vipNets(host.ID), [app.ID]);
  for (const task of activeOf(r.store, pub.ID))
    assert.deepEqual(
      (task.NetworksAttachments ?? []).map((a) => a.Network?.Spec?.Name),
      ['ingress', 'app'],
    );
  for (const task of activeOf(r.store, host.ID))
    assert.deepEqual(
      (task.NetworksAttachments ?? []).map((a) => a.Network?.Spec?.Name),
      ['app'],
    );
  assertUnique(held(r.store, ing.ID ?? ''));
  assert.equal(held(r.store, ing.ID ?? '').length, 4, '3 tasks and the VIP');
  await refused(
    r,
    () => r.manager.servicesApi.createService({ Spec: svc('x', ['ingress']) }),
    'MANAGER_INVALID_REQUEST',
    /ingress network ingress cannot be attached explicitly/,
  );
  await refused(r, () => api.removeNetwork('ingress'), 'MANAGER_NETWORK_IN_USE', /service pub/);
});

test('a service moved to another network: its VIP moves, the old network is free once the old tasks stop', async (t) => {
  const r = await allocatingRig(['w1'], { defaultAddrPool: POOL, subnetSize: 24 });
  t.after(() => r.close());
  const a = await r.manager.networksApi.createNetwork({ Spec: net('a') });
  const b = await r.manager.networksApi.createNetwork({ Spec: net('b') });
  const web = await r.create(svc('web', ['a'], { Mode: { Replicated: { Replicas: 1 } } }));
  await r.runAll(web.ID, ['w1']);
  await idle(r.manager);
  await r.update(web.ID, (s) => ({ ...s, TaskTemplate: { ...s.TaskTemplate, Networks: [{ Target: 'b' }] } }));
  await idle(r.manager);
  const vips = r.store.get<StoredService>('service', web.ID)?.Endpoint?.VirtualIPs ?? [];
  assert.deepEqual(
    vips.map((v) => v.NetworkID),
    [b.ID],
  );
  // The old task still runs (stop-first: it is being shut down): network a is in use until it stops.
  for (const task of r.store.list<StoredTask>('task'))
    if (task.NetworksAttachments?.[0]?.Network?.ID === a.ID) await report(r.store, task.ID, 'shutdown');
  await idle(r.manager);
  assert.deepEqual(held(r.store, a.ID ?? ''), []);
  await r.manager.networksApi.removeNetwork('a');
  const c = await r.manager.networksApi.createNetwork({ Spec: net('c') });
  assert.deepEqual(c.IPAMOptions?.Configs, a.IPAMOptions?.Configs, "a's subnet is free again");
  const fresh = activeOf(r.store, web.ID).filter((x) => x.Status?.State !== 'shutdown');
  for (const task of fresh) assert.equal(task.NetworksAttachments?.[0]?.Network?.ID, b.ID);
});
