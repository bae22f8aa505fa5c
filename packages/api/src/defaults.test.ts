import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_NODE_CERT_EXPIRY_NS,
  defaultClusterSpec,
  defaultServiceSpec,
  serviceModeName,
  withServiceDefaults,
} from './defaults.js';

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
