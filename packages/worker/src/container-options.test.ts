// The task spec -> engine options mapping, field by field (pure: no engine). The agent tests in
// test/worker-agent.test.ts run these options on the real engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '@shoal/api';
import { taskContainerOptions } from './container-options.js';
import { decodeRegistryAuth } from './registry-auth.js';
import { StatusReporter } from './status-reporter.js';
import { silentLogger } from '@shoal/common';

const node = { id: 'node1abc', hostname: 'host-a' };

function task(spec: NonNullable<Task['Spec']>['ContainerSpec'], extra: Partial<Task> = {}): Task {
  return {
    ID: 'taskid1',
    Name: 'web.3.taskid1',
    ServiceID: 'svcid1',
    ServiceName: 'web',
    Slot: 3,
    NodeID: node.id,
    DesiredState: 'running',
    Spec: { ContainerSpec: spec },
    ...extra,
  };
}

const none = (): undefined => undefined;

test('every ContainerSpec field the engine supports is mapped', () => {
  assert.throws(
    () => taskContainerOptions({ task: { ID: 'x' }, node, secret: none, config: none }),
    /ContainerSpec.Image is empty/,
  );
  const t = task({
    Image: 'reg:5000/app:1',
    Command: ['/bin/app'],
    Args: ['--x'],
    Env: ['A=1', 'WHO={{.Task.Name}}@{{ .Node.Hostname }}'],
    Dir: '/work',
    User: '1000:1000',
    Hostname: '{{.Service.Name}}-{{.Task.Slot}}.{{.Node.ID}}',
    Labels: { team: 'a' },
    StopSignal: 'SIGINT',
    StopGracePeriod: 3e9,
    Init: true,
    ReadOnly: true,
    Sysctls: { 'net.ipv4.ip_forward': '1' },
    CapabilityAdd: ['NET_ADMIN'],
    CapabilityDrop: ['CHOWN'],
    Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
    Hosts: ['198.18.0.9 db db.local'],
    DNSConfig: { Nameservers: ['198.18.0.53'], Search: ['svc'], Options: ['ndots:2'] },
    Healthcheck: { Test: ['CMD', 'true'], Interval: 2e9, Retries: 4 },
    Mounts: [
      { Type: 'bind', Source: '/srv/{{.Task.Slot}}', Target: '/data', ReadOnly: true },
      { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 1 << 20, Mode: 0o1777 } },
    ],
  });
  t.Spec!.Resources = { Limits: { NanoCPUs: 5e8, MemoryBytes: 128 << 20, Pids: 50 } };
  const opts = taskContainerOptions({ task: t, node, secret: none, config: none });
  assert.deepEqual(opts, {
    image: 'reg:5000/app:1',
    name: 'web.3.taskid1',
    labels: {
      team: 'a',
      'com.docker.swarm.service.id': 'svcid1',
      'com.docker.swarm.service.name': 'web',
      'com.docker.swarm.task': '',
      'com.docker.swarm.task.id': 'taskid1',
      'com.docker.swarm.task.name': 'web.3.taskid1',
      'com.docker.swarm.node.id': 'node1abc',
    },
    stopTimeoutMs: 3000,
    entrypoint: ['/bin/app'],
    cmd: ['--x'],
    env: ['A=1', 'WHO=web.3.taskid1@host-a'],
    workdir: '/work',
    user: '1000:1000',
    hostname: 'web-3.node1abc',
    stopSignal: 'SIGINT',
    init: true,
    readOnly: true,
    sysctls: { 'net.ipv4.ip_forward': '1' },
    capAdd: ['NET_ADMIN'],
    capDrop: ['CHOWN'],
    ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }],
    extraHosts: [
      { host: 'db', ip: '198.18.0.9' },
      { host: 'db.local', ip: '198.18.0.9' },
    ],
    dns: ['198.18.0.53'],
    dnsSearch: ['svc'],
    dnsOptions: ['ndots:2'],
    memoryBytes: 128 << 20,
    cpus: 0.5,
    pidsLimit: 50,
    healthcheck: { test: ['CMD', 'true'], intervalMs: 2000, retries: 4 },
    binds: [{ source: '/srv/3', target: '/data', readOnly: true }],
    tmpfs: [{ target: '/tmp', options: [`size=${1 << 20}`, 'mode=1777'] }],
  });
});

test('defaults: 10 s grace, global tasks template their node ID as the slot', () => {
  const opts = taskContainerOptions({
    task: task({ Image: 'app', Hostname: '{{.Task.Slot}}' }, { Slot: 0, Name: 'mon.node1abc.taskid1' }),
    node,
    secret: none,
    config: none,
  });
  assert.equal(opts.stopTimeoutMs, 10_000);
  assert.equal(opts.hostname, 'node1abc');
  assert.equal(opts.name, 'mon.node1abc.taskid1');
});

test('secrets and configs become engine files with Docker defaults (0444, root)', () => {
  const opts = taskContainerOptions({
    task: task({
      Image: 'app',
      Secrets: [{ SecretID: 's1', SecretName: 'db', File: { Name: 'db', UID: '0', GID: '0', Mode: 0 } }],
      Configs: [{ ConfigID: 'c1', ConfigName: 'conf', File: { Name: '', UID: '10', GID: '20', Mode: 0o440 } }],
    }),
    node,
    secret: (id) => (id === 's1' ? { ID: 's1', Spec: { Name: 'db', Data: Buffer.from('pw') } } : undefined),
    config: (id) => (id === 'c1' ? { ID: 'c1', Spec: { Name: 'conf', Data: Buffer.from('x=1') } } : undefined),
  });
  assert.deepEqual(
    opts.secrets?.map((f) => ({ ...f, data: f.data.toString() })),
    [
      { name: 'db', kind: 'secret', target: 'db', data: 'pw', uid: 0, gid: 0, mode: 0o444 },
      { name: 'conf', kind: 'config', target: '/conf', data: 'x=1', uid: 10, gid: 20, mode: 0o440 },
    ],
  );
});

test('bad specs fail with a message naming the field', () => {
  const bad = (spec: Parameters<typeof task>[0], re: RegExp, code: string): void => {
    assert.throws(
      () => taskContainerOptions({ task: task(spec), node, secret: none, config: none }),
      (err: Error) => {
        assert.match(err.message, re);
        assert.equal((err as { code?: string }).code, code);
        return true;
      },
    );
  };
  bad({ Image: '' }, /ContainerSpec.Image is empty/, 'WORKER_INVALID_SPEC');
  bad({ Image: 'a', Hostname: '{{.Service.Nope}}' }, /Hostname: template \{\{.Service.Nope\}\}/, 'WORKER_INVALID_SPEC');
  bad({ Image: 'a', Env: ['X={{ printf "%d" 1 }}'] }, /Env\[0\]: template/, 'WORKER_INVALID_SPEC');
  bad(
    {
      Image: 'a',
      Mounts: [
        { Type: 'tmpfs', Target: '/t' },
        { Type: 'volume', Source: 'data', Target: '/d', VolumeOptions: { DriverConfig: { Name: 'nfs-plugin' } } },
      ],
    },
    /Mounts\[1\]: volume driver "nfs-plugin" is not supported \(only local\)/,
    'WORKER_INVALID_SPEC',
  );
  bad(
    { Image: 'a', Mounts: [{ Type: 'volume', Source: 'data', Target: '/d', VolumeOptions: { Subpath: 'sub' } }] },
    /Mounts\[0\]: VolumeOptions.Subpath is not supported/,
    'WORKER_INVALID_SPEC',
  );
  bad(
    { Image: 'a', Mounts: [{ Type: 'npipe', Source: 'x', Target: '/d' }] },
    /Mounts\[0\]: mount type "npipe" is not supported/,
    'WORKER_INVALID_SPEC',
  );
  bad(
    { Image: 'a', Mounts: [{ Type: 'bind', Target: '/d' }] },
    /Mounts\[0\]: a bind mount needs a Source/,
    'WORKER_INVALID_SPEC',
  );
  bad(
    { Image: 'a', Secrets: [{ SecretID: 'zz', SecretName: 'x', File: { Name: 'x', UID: 'root' } }] },
    /secret x \(zz\) was not sent/,
    'WORKER_SECRET_MISSING',
  );
  bad({ Image: 'a', Hosts: ['198.18.0.1'] }, /Hosts\[0\] "198.18.0.1": want "IP hostname"/, 'WORKER_INVALID_SPEC');
});

test("volume mounts become the engine's volumes: templated name, options, anonymous without Source", () => {
  const opts = taskContainerOptions({
    task: task({
      Image: 'a',
      Mounts: [
        {
          Type: 'volume',
          Source: 'data-{{.Task.Slot}}',
          Target: '/d',
          ReadOnly: true,
          VolumeOptions: {
            NoCopy: true,
            Labels: { tier: 'db' },
            DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs' } },
          },
        },
        { Target: '/scratch' },
      ],
    }),
    node,
    secret: none,
    config: none,
  });
  assert.deepEqual(opts.volumes, [
    {
      source: 'data-3',
      target: '/d',
      readOnly: true,
      noCopy: true,
      labels: { tier: 'db' },
      driverOpts: { type: 'tmpfs', device: 'tmpfs' },
    },
    { target: '/scratch' },
  ]);
  assert.equal(opts.binds, undefined);
});

test('registry auth: X-Registry-Auth base64url JSON', () => {
  const enc = Buffer.from(JSON.stringify({ username: 'u', password: 'p?>', serveraddress: 'r:5000' })).toString(
    'base64url',
  );
  assert.deepEqual(decodeRegistryAuth(enc), { username: 'u', password: 'p?>' });
  assert.equal(decodeRegistryAuth(''), undefined);
  assert.throws(() => decodeRegistryAuth('!!notjson'), /registry auth: not base64url-encoded JSON/);
});

const turn = (): Promise<void> => new Promise((res) => setImmediate(res));

test('the status reporter sends the reports of one turn together, up to 4 calls at once, batches behind them, and keeps failed batches in report order', async () => {
  const r = new StatusReporter(silentLogger());
  const calls: number[] = [];
  const releases: (() => void)[] = [];
  const slow = {
    assignments: () => ({
      [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<never>>(() => undefined) }),
    }),
    updateTaskStatus: (u: unknown[]) => {
      calls.push(u.length);
      return new Promise<void>((res) => releases.push(res));
    },
  };
  r.attach(slow);
  // a task's STARTING and RUNNING are reported in one turn: one call, RUNNING waits for no round trip
  r.report('s', { State: 'starting' });
  r.report('s', { State: 'running' });
  assert.deepEqual(calls, [], 'sent at the end of the turn');
  await turn();
  assert.deepEqual(calls, [2], 'the reports of one turn go in one call');
  for (const id of ['a', 'b', 'c']) {
    r.report(id, { State: 'accepted' });
    await turn();
  }
  assert.deepEqual(calls, [2, 1, 1, 1], 'each turn goes at once while fewer than 4 calls are in flight');
  r.report('a', { State: 'running' });
  r.report('b', { State: 'running' });
  await turn();
  assert.deepEqual(calls, [2, 1, 1, 1], 'with 4 in flight the next wait');
  assert.equal(r.pending, 7);
  releases.shift()?.();
  await turn();
  await turn();
  assert.deepEqual(calls, [2, 1, 1, 1, 2], 'the two that waited go in one batch as soon as a call ends');
  for (const rel of releases.splice(0)) rel();
  await r.drained();
  assert.equal(r.pending, 0);

  // three calls in flight fail in the reverse order: their updates come back in report order
  const rejects: ((e: Error) => void)[] = [];
  r.attach({
    ...slow,
    updateTaskStatus: () => new Promise<void>((_res, rej) => rejects.push(rej)),
  });
  for (const id of ['c', 'd', 'e']) {
    r.report(id, { State: 'running' });
    await turn();
  }
  assert.equal(rejects.length, 3, 'three calls in flight');
  for (const rej of rejects.reverse()) rej(new Error('session gone'));
  await turn();
  assert.equal(r.pending, 3, 'kept');
  const got: string[] = [];
  r.attach({
    ...slow,
    updateTaskStatus: (u: { TaskID?: string }[]) => (got.push(...u.map((x) => x.TaskID ?? '')), Promise.resolve()),
  });
  await r.drained();
  assert.deepEqual(got, ['c', 'd', 'e'], 'the failed calls come back in report order');
});
