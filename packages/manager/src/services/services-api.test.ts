/**
 * Control for services, tasks, secrets and configs over a real store (LocalLog) with the
 * orchestrator running: validation with typed errors that change nothing, lookups and filters,
 * versions, secrets never returned, rm of a secret or config in use refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@shoal/common';
import { ServiceSpec as ServiceSpecCodec, type ServiceSpec } from '@shoal/api';
import { activeOf, assign, report, servicesRig, type ServicesRig } from '../orchestrator/test-rig.js';
import type { StoredSecret } from './objects.js';
import { fromStored } from '../context.js';
import { constraintsMatch, parseConstraints } from './constraint.js';
import { workerNode } from '../orchestrator/test-rig.js';
import { randomServiceName } from './service-names.js';

function spec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return { Name: name, TaskTemplate: { ContainerSpec: { Image: 'busybox:1' } }, ...over };
}

/** Asserts `fn` fails with `code` and its message matches, and that nothing was created. */
async function refused(r: ServicesRig, fn: () => Promise<unknown>, code: string, msg: RegExp): Promise<void> {
  await r.quiet();
  const before = JSON.stringify([
    r.store.list('service'),
    r.store.list('task'),
    r.store.list('secret'),
    r.store.list('config'),
  ]);
  await assert.rejects(fn(), (e) => {
    assert.ok(hasCode(e, code), `${code} expected, got ${(e as Error).message}`);
    assert.match((e as Error).message, msg);
    assert.doesNotMatch((e as Error).message, /\n/);
    return true;
  });
  await r.quiet();
  assert.equal(
    JSON.stringify([r.store.list('service'), r.store.list('task'), r.store.list('secret'), r.store.list('config')]),
    before,
    'nothing changed',
  );
}

test('create service: Docker defaults, lookups by ID, prefix and name, filters, status counts', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const api = r.manager.servicesApi;
  const web = await api.createService({
    Spec: spec('web', { Labels: { tier: 'front' } }),
    EncodedRegistryAuth: 'e30=',
  });
  assert.equal(web.Spec?.Mode?.Replicated?.Replicas, 1);
  // Stored as sent (as Docker's daemon): the defaults are shown with InsertDefaults only.
  assert.equal(web.Spec?.TaskTemplate?.RestartPolicy, undefined);
  assert.equal(web.Spec?.TaskTemplate?.Runtime, 'container', 'enums are named on every answer');
  const inspected = api.getService('web', true);
  assert.deepEqual(inspected.Spec?.TaskTemplate?.RestartPolicy, { Condition: 'any', Delay: 5e9, MaxAttempts: 0 });
  assert.equal(inspected.Spec?.UpdateConfig?.Order, 'stop-first');
  assert.equal(inspected.Spec?.TaskTemplate?.ContainerSpec?.StopGracePeriod, 10e9);
  assert.equal(web.Spec?.TaskTemplate?.ContainerSpec?.PullOptions?.RegistryAuth, 'e30=');
  await api.createService({ Spec: spec('agent', { Mode: { Global: {} } }) });
  const job = await api.createService({ Spec: spec('batch', { Mode: { ReplicatedJob: { MaxConcurrent: 3 } } }) });
  assert.deepEqual(job.Spec?.Mode?.ReplicatedJob, { MaxConcurrent: 3, TotalCompletions: 3 });
  await r.quiet();

  assert.equal(api.getService('web').ID, web.ID);
  assert.equal(api.getService(web.ID ?? '').Spec?.Name, 'web');
  assert.equal(api.getService((web.ID ?? '').slice(0, 12)).Spec?.Name, 'web');
  assert.throws(
    () => api.getService('nope'),
    (e) => hasCode(e, 'MANAGER_SERVICE_NOT_FOUND'),
  );
  const names = (f: Parameters<typeof api.listServices>[0]): string[] =>
    api.listServices(f).map((s) => s.Spec?.Name ?? '');
  assert.deepEqual(names({}), ['agent', 'batch', 'web']);
  assert.deepEqual(names({ Filters: { Modes: ['global'] } }), ['agent']);
  assert.deepEqual(names({ Filters: { Labels: { tier: '' } } }), ['web']);
  assert.deepEqual(names({ Filters: { Labels: { tier: 'back' } } }), []);
  assert.deepEqual(names({ Filters: { NamePrefixes: ['ba'] } }), ['batch']);
  assert.deepEqual(names({ Filters: { IDPrefixes: [(web.ID ?? '').slice(0, 5)] } }), ['web']);

  // REPLICAS as `service ls`: 0/1, then 1/1 once its task runs; global: one per node (2 nodes).
  const status = (n: string): unknown => api.listServices({ Status: true, Filters: { Names: [n] } })[0]?.ServiceStatus;
  assert.deepEqual(status('web'), { RunningTasks: 0, DesiredTasks: 1, CompletedTasks: 0 });
  assert.equal(api.listServices({}).find((s) => s.Spec?.Name === 'web')?.ServiceStatus, undefined);
  const [task] = activeOf(r.store, web.ID ?? '');
  assert.ok(task);
  await assign(r.store, task.ID, 'w1');
  await report(r.store, task.ID, 'running');
  assert.deepEqual(status('web'), { RunningTasks: 1, DesiredTasks: 1, CompletedTasks: 0 });
  assert.deepEqual(status('agent'), { RunningTasks: 0, DesiredTasks: 2, CompletedTasks: 0 });

  // Tasks: get by ID or prefix, filters as `service ps`.
  assert.equal(api.getTask(task.ID).ID, task.ID);
  assert.equal(api.getTask(task.ID.slice(0, 10)).ID, task.ID);
  assert.throws(
    () => api.getTask('zzzz'),
    (e) => hasCode(e, 'MANAGER_TASK_NOT_FOUND'),
  );
  const ids = (f: Parameters<typeof api.listTasks>[0]): string[] => api.listTasks(f).map((x) => x.ID ?? '');
  assert.deepEqual(ids({ Filters: { ServiceIDs: ['web'] } }), [task.ID]);
  assert.deepEqual(ids({ Filters: { Names: ['web.1'] } }), [task.ID]);
  assert.deepEqual(ids({ Filters: { ServiceIDs: ['web'], NodeIDs: ['w1'] } }), [task.ID]);
  assert.equal(ids({ Filters: { NodeIDs: ['w1'] } }).length, 2, 'web.1 and the global task on w1');
  assert.deepEqual(ids({ Filters: { ServiceIDs: ['web'], DesiredStates: ['shutdown'] } }), []);
  assert.deepEqual(ids({ Filters: { IDPrefixes: [task.ID.slice(0, 8)] } }), [task.ID]);
  assert.equal(api.listTasks({ Filters: { ServiceIDs: ['agent'] } }).length, 2);
  assert.equal(api.listTasks({}).length, 6);
});

test('bad service input gets one clear typed error and creates nothing', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const api = r.manager.servicesApi;
  await api.createService({ Spec: spec('taken') });
  await r.quiet();
  const create = (s: ServiceSpec) => () => api.createService({ Spec: s });
  await refused(
    r,
    create(spec('bad name!')),
    'MANAGER_INVALID_REQUEST',
    /Name: name "bad name!" must be valid as a DNS name/,
  );
  await refused(r, create(spec('taken')), 'MANAGER_NAME_EXISTS', /service taken already exists/);
  await refused(r, create({ Name: 'noimage' }), 'MANAGER_INVALID_REQUEST', /Image: image must be provided/);
  await refused(
    r,
    create(
      spec('c1', { TaskTemplate: { ContainerSpec: { Image: 'x' }, Placement: { Constraints: ['node.role=worker'] } } }),
    ),
    'MANAGER_INVALID_REQUEST',
    /invalid constraint "node.role=worker"/,
  );
  await refused(
    r,
    create(
      spec('c2', { TaskTemplate: { ContainerSpec: { Image: 'x' }, Placement: { Constraints: ['node.colour==red'] } } }),
    ),
    'MANAGER_INVALID_REQUEST',
    /unknown key "node.colour"/,
  );
  await refused(
    r,
    create(
      spec('m1', { TaskTemplate: { ContainerSpec: { Image: 'x' }, Resources: { Limits: { MemoryBytes: 1024 } } } }),
    ),
    'MANAGER_INVALID_REQUEST',
    /invalid memory value 1024: it must be at least 4 MiB/,
  );
  await refused(
    r,
    create(spec('m2', { TaskTemplate: { ContainerSpec: { Image: 'x' }, Resources: { Limits: { MemoryBytes: -5 } } } })),
    'MANAGER_INVALID_REQUEST',
    /MemoryBytes: must not be negative/,
  );
  await refused(
    r,
    create(
      spec('cpu', { TaskTemplate: { ContainerSpec: { Image: 'x' }, Resources: { Reservations: { NanoCPUs: 10 } } } }),
    ),
    'MANAGER_INVALID_REQUEST',
    /invalid cpu value/,
  );
  await refused(
    r,
    create(spec('rc', { TaskTemplate: { ContainerSpec: { Image: 'x' }, RestartPolicy: { Condition: 'sometimes' } } })),
    'MANAGER_INVALID_REQUEST',
    /Condition: invalid value "sometimes"/,
  );
  await refused(
    r,
    create(spec('neg', { Mode: { Replicated: { Replicas: -1 } } })),
    'MANAGER_INVALID_REQUEST',
    /invalid replicas -1/,
  );
  await refused(
    r,
    create(spec('two', { Mode: { Replicated: { Replicas: 1 }, Global: {} } })),
    'MANAGER_INVALID_REQUEST',
    /only one of Replicated, Global/,
  );
  await refused(
    r,
    create(
      spec('gmax', {
        Mode: { Global: {} },
        TaskTemplate: { ContainerSpec: { Image: 'x' }, Placement: { MaxReplicas: 2 } },
      }),
    ),
    'MANAGER_INVALID_REQUEST',
    /max replicas per node can only be used with replicated mode/,
  );
  await refused(
    r,
    create(
      spec('sec', {
        TaskTemplate: { ContainerSpec: { Image: 'x', Secrets: [{ SecretName: 'ghost', File: { Name: 'g' } }] } },
      }),
    ),
    'MANAGER_SECRET_NOT_FOUND',
    /secret ghost not found \(referenced by service sec\)/,
  );
  await refused(
    r,
    create(spec('cfg', { TaskTemplate: { ContainerSpec: { Image: 'x', Configs: [{ ConfigName: 'ghost' }] } } })),
    'MANAGER_CONFIG_NOT_FOUND',
    /config ghost not found/,
  );
  assert.equal(r.store.list('service').length, 1);
});

test('update service: version required and checked, name and mode kept, rollback to the previous spec', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const api = r.manager.servicesApi;
  const s = await api.createService({ Spec: spec('up') });
  const v = s.Version?.Index ?? 0;
  const upd = (over: Partial<Parameters<typeof api.updateService>[0]>) => () =>
    api.updateService({ ServiceID: 'up', ServiceVersion: { Index: v }, Spec: s.Spec, ...over });
  await refused(r, upd({ ServiceVersion: undefined }), 'MANAGER_INVALID_REQUEST', /ServiceVersion/);
  await refused(
    r,
    upd({ Spec: { ...s.Spec, Name: 'other' } }),
    'MANAGER_INVALID_REQUEST',
    /renaming services is not supported/,
  );
  await refused(r, upd({ Spec: { ...s.Spec, Mode: { Global: {} } } }), 'MANAGER_INVALID_REQUEST', /changing the mode/);
  await refused(r, upd({ Rollback: 'previous' }), 'MANAGER_INVALID_REQUEST', /no previous spec/);
  const next = await api.updateService({
    ServiceID: 'up',
    ServiceVersion: { Index: v },
    Spec: {
      ...s.Spec,
      TaskTemplate: { ContainerSpec: { Image: 'busybox:2' } },
      UpdateConfig: { Parallelism: 2, Delay: 1e9, Order: 'start-first' },
    },
  });
  assert.equal(next.SpecVersion?.Index, 2);
  assert.equal(next.Spec?.UpdateConfig?.Order, 'start-first', 'UpdateConfig stored as given');
  assert.equal(next.Spec?.UpdateConfig?.Parallelism, 2);
  // The version read before is now stale.
  await refused(r, upd({}), 'STORE_VERSION_CONFLICT', /update out of sequence/);
  // The orchestrator writes the service too (UpdateStatus): read the version again.
  await r.quiet();
  const seen = api.getService('up').Version?.Index ?? 0;
  const back = await api.updateService({ ServiceID: 'up', ServiceVersion: { Index: seen }, Rollback: 'previous' });
  assert.equal(back.Spec?.TaskTemplate?.ContainerSpec?.Image, 'busybox:1');
  assert.equal(back.SpecVersion?.Index, 3);
});

test('secrets: data never returned, names unique, only labels change, rm refused while a service uses it', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const sc = r.manager.secretsConfigs;
  const data = Buffer.from('s3cr3t-bytes');
  const sec = await sc.createSecret({ Spec: { Name: 'db.pass', Labels: { a: '1' }, Data: data } });
  assert.equal(Buffer.from(sec.Spec?.Data ?? []).length, 0, 'create answers without data');
  assert.equal(Buffer.from(sc.getSecret('db.pass').Spec?.Data ?? []).length, 0, 'get: no data');
  assert.equal(Buffer.from(sc.getSecret(sec.ID ?? '').Spec?.Data ?? []).length, 0);
  for (const s of sc.listSecrets({})) assert.equal(Buffer.from(s.Spec?.Data ?? []).length, 0, 'list: no data');
  assert.doesNotMatch(JSON.stringify(sc.listSecrets({})), /s3cr3t/);
  // The store keeps it (for the dispatcher).
  const stored = r.store.get<StoredSecret>('secret', sec.ID ?? '');
  assert.ok(Buffer.from(fromStored(stored?.Spec?.Data) ?? []).equals(data));

  await refused(
    r,
    () => sc.createSecret({ Spec: { Name: 'db.pass', Data: data } }),
    'MANAGER_NAME_EXISTS',
    /secret db.pass already exists/,
  );
  await refused(
    r,
    () => sc.createSecret({ Spec: { Name: 'big', Data: Buffer.alloc(500 * 1024) } }),
    'MANAGER_INVALID_REQUEST',
    /smaller than 500 KiB/,
  );
  await refused(
    r,
    () => sc.createSecret({ Spec: { Name: 'bad/name', Data: data } }),
    'MANAGER_INVALID_REQUEST',
    /Name: name "bad\/name" is invalid/,
  );
  await refused(
    r,
    () =>
      sc.updateSecret({
        SecretID: 'db.pass',
        SecretVersion: sec.Version,
        Spec: { Name: 'db.pass', Data: Buffer.from('other') },
      }),
    'MANAGER_INVALID_REQUEST',
    /only updates to Labels are allowed/,
  );
  const relabeled = await sc.updateSecret({
    SecretID: 'db.pass',
    SecretVersion: sec.Version,
    Spec: { Name: 'db.pass', Labels: { b: '2' } },
  });
  assert.deepEqual(relabeled.Spec?.Labels, { b: '2' });
  assert.deepEqual(
    sc.listSecrets({ Filters: { Labels: { b: '' } } }).map((s) => s.Spec?.Name),
    ['db.pass'],
  );

  // A service uses it by name: the reference is stored with the ID.
  const svc = await r.manager.servicesApi.createService({
    Spec: spec('app', {
      TaskTemplate: { ContainerSpec: { Image: 'x', Secrets: [{ SecretName: 'db.pass', File: { Name: 'pw' } }] } },
    }),
  });
  assert.equal(svc.Spec?.TaskTemplate?.ContainerSpec?.Secrets?.[0]?.SecretID, sec.ID);
  await r.manager.servicesApi.createService({
    Spec: spec('app2', {
      TaskTemplate: { ContainerSpec: { Image: 'x', Secrets: [{ SecretID: sec.ID ?? '', File: { Name: 'pw' } }] } },
    }),
  });
  await refused(
    r,
    () => sc.removeSecret('db.pass'),
    'MANAGER_IN_USE',
    /secret 'db.pass' is in use by the following services: app, app2/,
  );
  await r.manager.servicesApi.removeService('app');
  await r.manager.servicesApi.removeService('app2');
  await sc.removeSecret('db.pass');
  assert.equal(r.store.list('secret').length, 0);
  assert.throws(
    () => sc.getSecret('db.pass'),
    (e) => hasCode(e, 'MANAGER_SECRET_NOT_FOUND'),
  );
});

test('configs: data returned, rm refused while in use', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const sc = r.manager.secretsConfigs;
  const cfg = await sc.createConfig({ Spec: { Name: 'nginx.conf', Data: Buffer.from('worker_processes 1;') } });
  assert.equal(Buffer.from(sc.getConfig('nginx.conf').Spec?.Data ?? []).toString(), 'worker_processes 1;');
  await r.manager.servicesApi.createService({
    Spec: spec('web', {
      TaskTemplate: {
        ContainerSpec: { Image: 'x', Configs: [{ ConfigName: 'nginx.conf', File: { Name: '/etc/nginx.conf' } }] },
      },
    }),
  });
  await refused(
    r,
    () => sc.removeConfig(cfg.ID ?? ''),
    'MANAGER_IN_USE',
    /config 'nginx.conf' is in use by the following service: web/,
  );
  await refused(
    r,
    () => sc.createConfig({ Spec: { Name: 'huge', Data: Buffer.alloc(1000 * 1024) } }),
    'MANAGER_INVALID_REQUEST',
    /1000 KiB/,
  );
});

test('constraints: parse and match as Docker (case-insensitive values, missing labels, arch aliases)', () => {
  const n = workerNode('n1', {
    Spec: { Role: 'worker', Availability: 'active', Labels: { zone: 'East' } },
    Description: {
      Hostname: 'box1',
      Platform: { OS: 'linux', Architecture: 'x86_64' },
      Engine: { Labels: { ssd: 'true' } },
    },
  });
  const m = (...cs: string[]): boolean => constraintsMatch(parseConstraints(cs), n);
  assert.ok(m('node.role==worker', 'node.hostname==BOX1', 'node.labels.zone==east', 'engine.labels.ssd==true'));
  assert.ok(m('node.platform.arch==amd64', 'node.platform.os==linux', 'node.id==n1'));
  assert.ok(m('node.labels.rack!=r1'), 'a missing label matches !=');
  assert.ok(!m('node.labels.rack==r1'), 'and never ==');
  assert.ok(!m('node.role!=worker'));
  assert.ok(!m('node.role==manager'));
  assert.ok(m('node.id!=n2', 'node.hostname != box2', ' node.labels.zone == EAST '), 'spaces around the operator');
  assert.ok(!m('node.id!=n1'));
  assert.ok(!m('node.labels.zone!=east'));
  assert.ok(!m('engine.labels.ssd==false'));
  assert.ok(m('engine.labels.hdd!=true'), 'a missing engine label matches !=');
  assert.ok(m('node.platform.arch==x86_64', 'node.platform.arch==X86-64'), 'the raw name and its aliases');
  assert.ok(!m('node.platform.arch==arm64'));
  assert.ok(!m('node.platform.os==windows'));
  const arm = (arch: string): boolean =>
    constraintsMatch(
      parseConstraints(['node.platform.arch==arm64']),
      workerNode('a', { Description: { Platform: { OS: 'linux', Architecture: arch } } }),
    );
  assert.ok(arm('aarch64') && arm('arm64') && !arm('armv7l'), 'aarch64 is arm64, armv7l is not');
  for (const bad of [
    'node.role~worker',
    'node.labels.zone',
    'node.color==red',
    'node.id=>x',
    'node.labels.==x',
    'node.id==',
  ]) {
    assert.throws(
      () => parseConstraints([bad]),
      (e) => hasCode(e, 'MANAGER_INVALID_REQUEST'),
      bad,
    );
  }
});

test('a service created without a name gets a free random adjective_fish name', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const api = r.manager.servicesApi;
  const names = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const s = await api.createService({ Spec: spec('') });
    const name = s.Spec?.Name ?? '';
    assert.match(name, /^[a-z]+_[a-z]+\d*$/);
    assert.equal(api.getService(name).ID, s.ID, 'found by its given name');
    names.add(name);
  }
  assert.equal(names.size, 3, 'each unnamed service got its own name');

  // a collision is retried: the first pick is taken, the second is not
  const picks = [0, 0, 0, 1];
  const seq = (): number => picks.shift() ?? 0;
  const taken = new Set(['amber_anchovy']);
  assert.equal(
    randomServiceName((n) => taken.has(n), seq),
    'amber_barracuda',
  );
  // after ten plain collisions a number is appended
  const all = (n: string): boolean => !/\d$/.test(n);
  assert.match(
    randomServiceName(all, () => 7),
    /^[a-z]+_[a-z]+7$/,
  );
  assert.throws(
    () => randomServiceName(() => true),
    (e) => hasCode(e, 'MANAGER_NAME_EXISTS'),
  );
});

test('scale through the wire: the spec as a client decodes it keeps the SpecVersion (no task replaced)', async (t) => {
  const r = await servicesRig(['w1']);
  t.after(() => r.close());
  const api = r.manager.servicesApi;
  // Both requests as grpc-js hands them to the server: decoded, with proto3's empty defaults.
  const wire = (s: ServiceSpec): ServiceSpec => ServiceSpecCodec.decode(ServiceSpecCodec.encode(s).finish());
  const s = await api.createService({
    Spec: wire(spec('sc', { Mode: { Replicated: { Replicas: 2 } } })),
  });
  assert.equal(s.SpecVersion?.Index, 1);
  const got = wire(s.Spec ?? {});
  const scaled = await api.updateService({
    ServiceID: 'sc',
    ServiceVersion: s.Version,
    Spec: { ...got, Mode: { Replicated: { Replicas: 4 } } },
    RegistryAuthFrom: 'spec',
  });
  assert.equal(scaled.Spec?.Mode?.Replicated?.Replicas, 4);
  assert.equal(scaled.SpecVersion?.Index, 1, 'a scale changes no TaskTemplate field');
});
