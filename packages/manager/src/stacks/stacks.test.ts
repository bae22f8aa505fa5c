/**
 * DeployStack on a real store (LocalLog) with the manager's loops running: a stack is written in
 * one transaction with references to the objects it creates resolved; one bad object refuses the
 * whole deploy (store revision unchanged); a re-deploy writes only what changed; prune, dry run,
 * external objects, immutable secret data, and names owned by another stack. Pools only from
 * 198.19.128.0/17.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeployStackRequest, NetworkSpec, SecretSpec, ServiceSpec } from '@shoal/api';
import { hasCode } from '@shoal/common';
import type { ClusterStore } from '@shoal/store';
import { servicesRig, type ServicesRig } from '../orchestrator/test-rig.js';
import type { StoredNetwork, StoredSecret, StoredService, StoredTask } from '../services/objects.js';
import { StackDeployError } from '../errors.js';
import { STACK_NAMESPACE_LABEL } from './stacks-api.js';

const LABEL = STACK_NAMESPACE_LABEL;

async function stackRig(): Promise<ServicesRig> {
  const r = await servicesRig(['w1', 'w2'], { defaultAddrPool: ['198.19.128.0/17'], subnetSize: 24 });
  r.manager.allocator.start();
  return r;
}

/** A stack as the CLI's converter sends it: `<ns>_<name>` objects with the namespace label. */
function stack(ns: string, over: Partial<DeployStackRequest> = {}): DeployStackRequest {
  const labels = { [LABEL]: ns };
  const net: NetworkSpec = { Name: `${ns}_default`, Labels: labels, DriverConfiguration: { Name: 'overlay' } };
  const secret: SecretSpec = { Name: `${ns}_db_pw`, Labels: labels, Data: Buffer.from('s3cret') };
  const svc = (name: string, image: string, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({
    Name: `${ns}_${name}`,
    Labels: { ...labels, 'com.docker.stack.image': image },
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        Labels: labels,
        Env: [],
        ...(name === 'db'
          ? { Secrets: [{ SecretName: `${ns}_db_pw`, File: { Name: 'db_pw', UID: '0', GID: '0', Mode: 292 } }] }
          : {}),
      },
      Networks: [{ Target: `${ns}_default`, Aliases: [name] }],
      Placement: {},
      Resources: {},
    },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Mode: 'vip' },
    ...extra,
  });
  return {
    Namespace: ns,
    Networks: [net],
    Secrets: [secret],
    Configs: [{ Name: `${ns}_app_cfg`, Labels: labels, Data: Buffer.from('x=1\n') }],
    Services: [svc('db', 'busybox:1'), svc('web', 'busybox:1'), svc('worker', 'busybox:1')],
    ...over,
  };
}

function byName<T extends { Spec?: { Name?: string } }>(
  store: ClusterStore,
  kind: 'service' | 'network' | 'secret' | 'config',
  name: string,
): T {
  const o = store.byName(kind, name) as T | undefined;
  assert.ok(o, `${kind} ${name} exists`);
  return o;
}

function names(store: ClusterStore, kind: 'service' | 'network' | 'secret' | 'config', ns: string): string[] {
  return store
    .list(kind)
    .filter((o) => o.Spec?.Labels?.[LABEL] === ns)
    .map((o) => o.Spec?.Name ?? '')
    .sort();
}

test('stack deploy: every object in one transaction, references resolved to what it creates', async (t) => {
  const r = await stackRig();
  t.after(() => r.close());
  await r.quiet();
  const before = r.store.revision;
  const res = await r.manager.stacksApi.deploy(stack('app'));
  assert.equal(res.Revision, before + 1, 'one transaction');
  assert.deepEqual(
    res.Changes?.map((c) => `${c.Action} ${c.Kind} ${c.Name}`),
    [
      'create network app_default',
      'create secret app_db_pw',
      'create config app_app_cfg',
      'create service app_db',
      'create service app_web',
      'create service app_worker',
    ],
  );
  const net = byName<StoredNetwork>(r.store, 'network', 'app_default');
  assert.match(net.IPAMOptions?.Configs?.[0]?.Subnet ?? '', /^198\.19\./, 'the network got a subnet');
  const db = byName<StoredService>(r.store, 'service', 'app_db');
  assert.equal(db.Spec?.TaskTemplate?.Networks?.[0]?.Target, net.ID);
  const secret = byName<StoredSecret>(r.store, 'secret', 'app_db_pw');
  assert.equal(db.Spec?.TaskTemplate?.ContainerSpec?.Secrets?.[0]?.SecretID, secret.ID);
  await r.quiet();
  assert.ok(r.store.find<StoredTask>('task', 'service', db.ID).length > 0, 'the orchestrator made tasks');
});

test('stack deploy: one invalid service among several creates nothing, and every problem is named', async (t) => {
  const r = await stackRig();
  t.after(() => r.close());
  await r.quiet();
  const req = stack('bad');
  const services = req.Services ?? [];
  const web = services[1];
  const worker = services[2];
  assert.ok(web && worker);
  web.Mode = { Replicated: { Replicas: -1 } };
  worker.TaskTemplate = {
    ...worker.TaskTemplate,
    ContainerSpec: { ...worker.TaskTemplate?.ContainerSpec, Secrets: [{ SecretName: 'nope', File: { Name: 'nope' } }] },
  };
  const before = r.store.revision;
  const snapshot = JSON.stringify(
    ['service', 'network', 'secret', 'config', 'task'].map((k) => r.store.list(k as 'task')),
  );
  await assert.rejects(r.manager.stacksApi.deploy(req), (e) => {
    assert.ok(e instanceof StackDeployError);
    assert.ok(hasCode(e, 'MANAGER_STACK_INVALID'));
    assert.match(e.message, /nothing was changed/);
    assert.match(e.message, /bad_web.*Replicas/);
    assert.match(e.message, /secret nope not found \(referenced by service bad_worker\)/);
    assert.deepEqual(
      e.problems.map((p) => p.name),
      ['bad_web', 'bad_worker'],
    );
    return true;
  });
  await r.quiet();
  assert.equal(r.store.revision, before, 'store revision unchanged');
  assert.equal(
    JSON.stringify(['service', 'network', 'secret', 'config', 'task'].map((k) => r.store.list(k as 'task'))),
    snapshot,
  );
  assert.deepEqual(names(r.store, 'service', 'bad'), []);
  assert.deepEqual(names(r.store, 'network', 'bad'), [], 'no network allocated or written');
});

test('stack re-deploy: only the changed service is updated; an identical one writes nothing', async (t) => {
  const r = await stackRig();
  t.after(() => r.close());
  await r.manager.stacksApi.deploy(stack('app'));
  await r.quiet();
  const versions = (): Record<string, number> =>
    Object.fromEntries(r.store.list<StoredService>('service').map((s) => [s.Spec?.Name ?? '', s.Version.Index]));
  const v0 = versions();
  const rev0 = r.store.revision;
  // The same stack again, as it comes off the wire (empty lists and maps present or absent).
  const same = stack('app');
  for (const s of same.Services ?? []) delete s.TaskTemplate?.ContainerSpec?.Env;
  const again = await r.manager.stacksApi.deploy(same);
  assert.ok(
    (again.Changes ?? []).every((c) => c.Action === 'unchanged'),
    JSON.stringify(again.Changes),
  );
  await r.quiet();
  assert.equal(r.store.revision, rev0, 'nothing written');

  const changed = stack('app');
  const web = changed.Services?.[1];
  assert.ok(web?.TaskTemplate?.ContainerSpec);
  web.TaskTemplate.ContainerSpec.Env = ['MODE=2'];
  const res = await r.manager.stacksApi.deploy(changed);
  const upd = (res.Changes ?? []).filter((c) => c.Action !== 'unchanged');
  assert.deepEqual(
    upd.map((c) => `${c.Action} ${c.Name}`),
    ['update app_web'],
  );
  assert.deepEqual(upd[0]?.Diff, ['TaskTemplate.ContainerSpec.Env: (none) -> ["MODE=2"]']);
  await r.quiet();
  const v1 = versions();
  assert.equal(v1['app_db'], v0['app_db'], 'db untouched');
  assert.equal(v1['app_worker'], v0['app_worker'], 'worker untouched');
  assert.notEqual(v1['app_web'], v0['app_web']);
  const stored = byName<StoredService>(r.store, 'service', 'app_web');
  assert.deepEqual(stored.Spec?.TaskTemplate?.ContainerSpec?.Env, ['MODE=2']);
  assert.equal(stored.SpecVersion?.Index, 2, 'a new task spec version');
});

test('stack deploy --prune removes the services no longer in the file; without it they stay', async (t) => {
  const r = await stackRig();
  t.after(() => r.close());
  await r.manager.stacksApi.deploy(stack('app'));
  await r.quiet();
  const smaller = stack('app');
  smaller.Services = smaller.Services?.filter((s) => s.Name !== 'app_worker');
  await r.manager.stacksApi.deploy(smaller);
  assert.deepEqual(names(r.store, 'service', 'app'), ['app_db', 'app_web', 'app_worker']);
  const worker = byName<StoredService>(r.store, 'service', 'app_worker');
  const res = await r.manager.stacksApi.deploy({ ...smaller, Prune: true });
  assert.deepEqual(
    (res.Changes ?? []).filter((c) => c.Action === 'remove').map((c) => c.Name),
    ['app_worker'],
  );
  assert.deepEqual(names(r.store, 'service', 'app'), ['app_db', 'app_web']);
  await r.quiet();
  assert.ok(
    r.store.find<StoredTask>('task', 'service', worker.ID).every((x) => x.DesiredState === 'remove'),
    'its tasks are being removed',
  );
});

test('stack deploy --dry-run returns the plan and writes nothing', async (t) => {
  const r = await stackRig();
  t.after(() => r.close());
  await r.quiet();
  const rev = r.store.revision;
  const res = await r.manager.stacksApi.deploy({ ...stack('app'), DryRun: true });
  assert.equal(res.Changes?.length, 6);
  assert.ok(res.Changes?.every((c) => c.Action === 'create'));
  await r.quiet();
  assert.equal(r.store.revision, rev);
  assert.deepEqual(names(r.store, 'service', 'app'), []);
  assert.deepEqual(names(r.store, 'network', 'app'), []);
  // and on a deployed stack: the diff, still nothing written
  await r.manager.stacksApi.deploy(stack('app'));
  await r.quiet();
  const rev2 = r.store.revision;
  const changed = stack('app');
  const db = changed.Services?.[0];
  assert.ok(db);
  db.Mode = { Replicated: { Replicas: 3 } };
  const plan = await r.manager.stacksApi.deploy({
    ...changed,
    DryRun: true,
    Prune: true,
    Services: changed.Services?.slice(0, 2),
  });
  assert.deepEqual(
    plan.Changes?.filter((c) => c.Action !== 'unchanged').map(
      (c) => `${c.Action} ${c.Name} ${(c.Diff ?? []).join(',')}`,
    ),
    ['update app_db Mode.Replicated.Replicas: 1 -> 3', 'remove app_worker '],
  );
  await r.quiet();
  assert.equal(r.store.revision, rev2);
  assert.equal(byName<StoredService>(r.store, 'service', 'app_db').Spec?.Mode?.Replicated?.Replicas, 1);
});

test('stack deploy: external objects must exist; secret data is immutable; names of other stacks', async (t) => {
  const r = await stackRig();
  t.after(() => r.close());
  await r.quiet();
  const rev = r.store.revision;
  await assert.rejects(
    r.manager.stacksApi.deploy(stack('ext', { ExternalNetworks: ['proxy'], ExternalSecrets: ['tls_key'] })),
    (e) => {
      assert.ok(hasCode(e, 'MANAGER_STACK_INVALID'));
      assert.match((e as Error).message, /network "proxy" is declared as external, but could not be found/);
      assert.match((e as Error).message, /secret "tls_key" is declared as external, but could not be found/);
      return true;
    },
  );
  await r.quiet();
  assert.equal(r.store.revision, rev, 'nothing written');
  await r.manager.networksApi.createNetwork({ Spec: { Name: 'proxy', DriverConfiguration: { Name: 'overlay' } } });
  await r.manager.secretsConfigs.createSecret({ Spec: { Name: 'tls_key', Data: Buffer.from('k') } });
  await r.manager.stacksApi.deploy(stack('ext', { ExternalNetworks: ['proxy'], ExternalSecrets: ['tls_key'] }));
  assert.deepEqual(names(r.store, 'service', 'ext'), ['ext_db', 'ext_web', 'ext_worker']);
  await r.quiet();

  // New data for an existing secret: refused as Docker refuses it; new labels are fine.
  const rev2 = r.store.revision;
  const changed = stack('ext');
  const s0 = changed.Secrets?.[0];
  assert.ok(s0);
  s0.Data = Buffer.from('other');
  await assert.rejects(r.manager.stacksApi.deploy(changed), /ext_db_pw: only updates to Labels are allowed/);
  assert.equal(r.store.revision, rev2);
  s0.Data = Buffer.from('s3cret');
  s0.Labels = { ...s0.Labels, rotated: 'no' };
  const res = await r.manager.stacksApi.deploy(changed);
  assert.deepEqual(
    res.Changes?.filter((c) => c.Action === 'update').map((c) => `${c.Name} ${(c.Diff ?? []).join(',')}`),
    ['ext_db_pw Labels.rotated: (none) -> "no"'],
  );

  // Another stack cannot take over ext's objects, nor a service created by hand.
  await r.create({
    Name: 'other_web',
    TaskTemplate: { ContainerSpec: { Image: 'busybox:1' } },
    Mode: { Replicated: { Replicas: 0 } },
  });
  const rev3 = r.store.revision;
  const other = stack('other', { Networks: [{ Name: 'ext_default', Labels: { [LABEL]: 'other' } }] });
  await assert.rejects(r.manager.stacksApi.deploy(other), (e) => {
    assert.match((e as Error).message, /network ext_default \(not part of stack other\) already exists/);
    assert.match((e as Error).message, /service other_web \(not part of stack other\) already exists/);
    return true;
  });
  await r.quiet();
  assert.equal(r.store.revision, rev3);
});

test("a secret or config of the stack's name made without the stack label: adopted when its data is the same, refused when not (as Docker)", async (t) => {
  const r = await stackRig();
  t.after(() => r.close());
  await r.quiet();
  const byHand = await r.manager.secretsConfigs.createSecret({
    Spec: { Name: 'own_db_pw', Labels: { owner: 'ops' }, Data: Buffer.from('s3cret') },
  });
  const cfg = await r.manager.secretsConfigs.createConfig({
    Spec: { Name: 'own_app_cfg', Data: Buffer.from('x=1\n') },
  });
  // Another stack's secret: Docker's deploy updates it too (it looks secrets up by name only).
  await r.manager.stacksApi.deploy(
    stack('oth', {
      Networks: [],
      Configs: [],
      Services: [],
      Secrets: [{ Name: 'shared_key', Labels: { [LABEL]: 'oth' }, Data: Buffer.from('k') }],
    }),
  );
  const sharedId = byName<StoredSecret>(r.store, 'secret', 'shared_key').ID;

  // Different data: refused, naming the object, and nothing of the stack is written.
  const rev = r.store.revision;
  const bad = stack('own');
  const s0 = bad.Secrets?.[0];
  assert.ok(s0);
  s0.Data = Buffer.from('other');
  await assert.rejects(r.manager.stacksApi.deploy(bad), (e) => {
    assert.ok(hasCode(e, 'MANAGER_STACK_INVALID'));
    assert.match((e as Error).message, /own_db_pw: only updates to Labels are allowed \(Data changed\)/);
    assert.doesNotMatch((e as Error).message, /own_app_cfg/);
    return true;
  });
  await r.quiet();
  assert.equal(r.store.revision, rev, 'nothing written');

  // The same data: the objects are adopted in place (same IDs), their labels now the stack's.
  const good = stack('own');
  good.Secrets?.push({ Name: 'shared_key', Labels: { [LABEL]: 'own' }, Data: Buffer.from('k') });
  const res = await r.manager.stacksApi.deploy(good);
  const actions = (res.Changes ?? [])
    .filter((c) => c.Kind !== 'service')
    .map((c) => `${c.Kind} ${c.Name} ${c.Action} ${(c.Diff ?? []).join(',')}`.trimEnd())
    .sort();
  assert.deepEqual(actions, [
    'config own_app_cfg update Labels.com.docker.stack.namespace: (none) -> "own"',
    'network own_default create',
    'secret own_db_pw update Labels.com.docker.stack.namespace: (none) -> "own",Labels.owner: "ops" -> (none)',
    'secret shared_key update Labels.com.docker.stack.namespace: "oth" -> "own"',
  ]);
  const pw = byName<StoredSecret>(r.store, 'secret', 'own_db_pw');
  assert.equal(pw.ID, byHand.ID);
  assert.deepEqual(pw.Spec?.Labels, { [LABEL]: 'own' });
  assert.equal(byName<StoredSecret>(r.store, 'config', 'own_app_cfg').ID, cfg.ID);
  assert.equal(byName<StoredSecret>(r.store, 'secret', 'shared_key').ID, sharedId);
  assert.deepEqual(names(r.store, 'secret', 'own'), ['own_db_pw', 'shared_key']);
  assert.deepEqual(names(r.store, 'service', 'own'), ['own_db', 'own_web', 'own_worker']);
  const db = byName<StoredService>(r.store, 'service', 'own_db');
  assert.equal(
    db.Spec?.TaskTemplate?.ContainerSpec?.Secrets?.[0]?.SecretID,
    byHand.ID,
    'the service uses the adopted secret',
  );
});
