import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_NODE_CERT_EXPIRY_NS,
  defaultClusterSpec,
  defaultServiceSpec,
  serviceModeName,
  withEndpointViewEnums,
  withServiceDefaults,
  withServiceEnums,
  withServiceMode,
} from './defaults.js';
import { familiarImage } from './image-name.js';

test("default service spec carries Docker's defaults", () => {
  const s = defaultServiceSpec('web', 'busybox');
  assert.deepEqual(s.Mode, { Replicated: { Replicas: 1 } });
  assert.deepEqual(s.TaskTemplate?.RestartPolicy, { Condition: 'any', Delay: 5e9, MaxAttempts: 0 });
  assert.deepEqual(s.UpdateConfig, {
    Parallelism: 1,
    Delay: 0,
    FailureAction: 'pause',
    Monitor: 5e9,
    MaxFailureRatio: 0,
    Order: 'stop-first',
  });
  assert.deepEqual(s.RollbackConfig, s.UpdateConfig);
  assert.notEqual(s.RollbackConfig, s.UpdateConfig);
  assert.equal(s.EndpointSpec?.Mode, 'vip');
  assert.equal(s.TaskTemplate?.ContainerSpec?.StopGracePeriod, 10e9);
});

test('withServiceDefaults fills only what is unset and keeps the mode', () => {
  const g = withServiceDefaults({
    Name: 'agent',
    TaskTemplate: { ContainerSpec: { Image: 'x' }, RestartPolicy: { Condition: 'none' } },
    Mode: { Global: {} },
    UpdateConfig: { Parallelism: 0 },
  });
  assert.deepEqual(g.Mode, { Global: {} });
  assert.equal(serviceModeName(g), 'global');
  assert.equal(g.TaskTemplate?.RestartPolicy?.Condition, 'none');
  assert.equal(g.TaskTemplate?.RestartPolicy?.Delay, 5e9);
  assert.equal(g.UpdateConfig?.Parallelism, 0);
  assert.equal(g.UpdateConfig?.Order, 'stop-first');
  const r = withServiceDefaults({ Name: 'r', Mode: { Replicated: {} } });
  assert.deepEqual(r.Mode, { Replicated: { Replicas: 1 } });
  assert.equal(serviceModeName(r), 'replicated');
  const input = { Name: 'n' };
  withServiceDefaults(input);
  assert.deepEqual(input, { Name: 'n' }, 'input is not changed');
});

test('cluster defaults: 90-day certificates, 5 s heartbeat, history 5', () => {
  const c = defaultClusterSpec();
  assert.equal(c.CAConfig?.NodeCertExpiry, DEFAULT_NODE_CERT_EXPIRY_NS);
  assert.equal(DEFAULT_NODE_CERT_EXPIRY_NS, 7_776_000_000_000_000);
  assert.equal(c.Dispatcher?.HeartbeatPeriod, 5e9);
  assert.equal(c.Orchestration?.TaskHistoryRetentionLimit, 5);
  assert.equal(c.Raft?.ElectionTick, 10);
});

test("stored, returned, inspected: the mode, the enums at their zero value, then InsertDefaults (as Docker's daemon)", () => {
  // What is stored: the spec as sent, its mode filled in.
  assert.deepEqual(withServiceMode({ Name: 'a' }), { Name: 'a', Mode: { Replicated: { Replicas: 1 } } });
  assert.deepEqual(withServiceMode({ Name: 'g', Mode: { Global: {} } }).Mode, { Global: {} });
  // What every answer shows: enums named, nothing else added.
  const sent = {
    Name: 'w',
    TaskTemplate: { ContainerSpec: { Image: 'x' }, RestartPolicy: { Condition: '' } },
    UpdateConfig: { Parallelism: 2, Delay: 0, FailureAction: '', Monitor: 0, MaxFailureRatio: 0, Order: '' },
    EndpointSpec: { Mode: '', Ports: [{ TargetPort: 80, PublishedPort: 8080, Protocol: '', PublishMode: '' }] },
  };
  const e = withServiceEnums(sent);
  assert.equal(e.TaskTemplate?.Runtime, 'container');
  assert.equal(e.TaskTemplate?.ContainerSpec?.Isolation, 'default');
  assert.equal(e.TaskTemplate?.RestartPolicy?.Condition, 'any');
  assert.equal(e.TaskTemplate?.RestartPolicy?.Delay, undefined, 'no default without InsertDefaults');
  assert.deepEqual(e.UpdateConfig, { ...sent.UpdateConfig, FailureAction: 'pause', Order: 'stop-first' });
  assert.equal(e.RollbackConfig, undefined);
  assert.deepEqual(e.EndpointSpec, {
    Mode: 'vip',
    Ports: [{ TargetPort: 80, PublishedPort: 8080, Protocol: 'tcp', PublishMode: 'ingress' }],
  });
  assert.deepEqual(withEndpointViewEnums({}).Spec, { Mode: 'vip' });
  // InsertDefaults: every unset field; a given update config keeps its values but Monitor 0.
  const d = withServiceDefaults(sent);
  const s = defaultServiceSpec('w', 'x');
  assert.deepEqual(d.UpdateConfig, { ...s.UpdateConfig, Parallelism: 2 }, 'Monitor 0 shows 5 s');
  assert.deepEqual(d.RollbackConfig, s.RollbackConfig);
  assert.deepEqual(d.TaskTemplate?.ContainerSpec, {
    Image: 'x',
    StopGracePeriod: 10e9,
    DNSConfig: {},
    Isolation: 'default',
  });
  assert.deepEqual(d.TaskTemplate?.RestartPolicy, { Condition: 'any', Delay: 5e9, MaxAttempts: 0 });
  assert.deepEqual(d.TaskTemplate?.Resources, {});
  assert.deepEqual(d.TaskTemplate?.Placement, {});
  assert.equal(d.TaskTemplate?.ForceUpdate, 0);
  assert.deepEqual(d.Mode, { Replicated: { Replicas: 1 } });
  assert.equal(sent.UpdateConfig.FailureAction, '', 'input is not changed');
});

test('image names as the daemon stores them', () => {
  assert.equal(familiarImage('nginx'), 'nginx:latest');
  assert.equal(familiarImage('library/nginx'), 'nginx:latest');
  assert.equal(familiarImage('docker.io/library/redis:7'), 'redis:7');
  assert.equal(familiarImage('docker.io/dockersamples/worker'), 'dockersamples/worker:latest');
  assert.equal(familiarImage('127.0.0.1:5000/library/busybox'), '127.0.0.1:5000/library/busybox:latest');
  assert.equal(familiarImage('reg.example:5000/app:1'), 'reg.example:5000/app:1');
  const digest = `busybox@sha256:${'a'.repeat(64)}`;
  assert.equal(familiarImage(digest), digest);
});
