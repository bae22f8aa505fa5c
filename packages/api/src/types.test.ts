// The wire types keep Docker's field names, int64 values as numbers, and presence of optional
// scalars, through a binary round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Node } from './gen/shoal/node.js';
import { ServiceSpec } from './gen/shoal/service.js';
import { Task } from './gen/shoal/task.js';
import { SecretSpec } from './gen/shoal/secret.js';
import { ClusterSpec } from './gen/shoal/cluster.js';

const spec: ServiceSpec = {
  Name: 'web',
  Labels: { 'com.docker.stack.namespace': 'app' },
  TaskTemplate: {
    ContainerSpec: {
      Image: 'registry.lab:5000/httpd:1',
      Command: ['/bin/httpd'],
      Args: ['-f', '-p', '80'],
      Env: ['A=1'],
      Init: true,
      StopGracePeriod: 20_000_000_000,
      Mounts: [{ Type: 'tmpfs', Target: '/run/x', TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 } }],
      Healthcheck: { Test: ['CMD', 'true'], Interval: 1_000_000_000, Retries: 3 },
      Secrets: [{ SecretName: 'db', SecretID: 's1', File: { Name: 'db', UID: '0', GID: '0', Mode: 0o444 } }],
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      CapabilityAdd: ['CAP_NET_ADMIN'],
      Sysctls: { 'net.core.somaxconn': '1024' },
    },
    Resources: { Limits: { MemoryBytes: 8 * 1024 ** 3, NanoCPUs: 1_500_000_000 }, Reservations: { MemoryBytes: 1 } },
    RestartPolicy: { Condition: 'on-failure', Delay: 5_000_000_000, MaxAttempts: 0 },
    Placement: { Constraints: ['node.role==worker'], MaxReplicas: 2 },
    Networks: [{ Target: 'app_default', Aliases: ['web'] }],
  },
  Mode: { Replicated: { Replicas: 0 } },
  UpdateConfig: { Parallelism: 1, FailureAction: 'pause', Order: 'stop-first', MaxFailureRatio: 0.25 },
  EndpointSpec: {
    Mode: 'vip',
    Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }],
  },
};

test('a ServiceSpec survives encode/decode with Docker field names and int64 as number', () => {
  const back = ServiceSpec.decode(ServiceSpec.encode(spec).finish());
  assert.equal(back.Name, 'web');
  assert.equal(back.TaskTemplate?.Resources?.Limits?.MemoryBytes, 8 * 1024 ** 3);
  assert.equal(typeof back.TaskTemplate?.ContainerSpec?.StopGracePeriod, 'number');
  assert.equal(back.TaskTemplate?.ContainerSpec?.StopGracePeriod, 20_000_000_000);
  assert.deepEqual(back.TaskTemplate?.ContainerSpec?.Mounts?.[0]?.TmpfsOptions, { SizeBytes: 67108864, Mode: 0o1777 });
  assert.equal(back.TaskTemplate?.ContainerSpec?.Init, true);
  // decoding fills unset scalars with their zero value (see inspectJson for Docker's omitempty)
  assert.deepEqual(back.EndpointSpec?.Ports?.[0], { Name: '', ...spec.EndpointSpec?.Ports?.[0] });
  assert.equal(back.UpdateConfig?.MaxFailureRatio, 0.25);
  assert.deepEqual(back.Labels, spec.Labels);
  // JSON keys are Docker's, e.g. TaskTemplate.ContainerSpec.Image
  const json = JSON.parse(JSON.stringify(back)) as { TaskTemplate: { ContainerSpec: { Image: string } } };
  assert.equal(json.TaskTemplate.ContainerSpec.Image, 'registry.lab:5000/httpd:1');
});

test('optional scalars keep presence: Replicas 0 is not unset, unset Init stays unset', () => {
  const back = ServiceSpec.decode(ServiceSpec.encode(spec).finish());
  assert.equal(back.Mode?.Replicated?.Replicas, 0);
  const bare = ServiceSpec.decode(
    ServiceSpec.encode({ Name: 'x', Mode: { Replicated: {}, Global: undefined } }).finish(),
  );
  assert.equal(bare.Mode?.Replicated?.Replicas, undefined);
  assert.equal(bare.Mode?.Global, undefined);
  assert.equal(bare.TaskTemplate, undefined);
  const g = ServiceSpec.decode(ServiceSpec.encode({ Mode: { Global: {} } }).finish());
  assert.deepEqual(g.Mode?.Global, {});
});

test('Node, Task and SecretSpec round trip', () => {
  const node: Node = {
    ID: 'n1',
    Version: { Index: 2 ** 40 },
    CreatedAt: '2026-11-28T23:00:00.123456789Z',
    Spec: { Role: 'manager', Availability: 'drain', Labels: { zone: 'a' } },
    Description: {
      Hostname: 'h1',
      Platform: { OS: 'linux', Architecture: 'x86_64' },
      Engine: { EngineVersion: '0.1.0' },
    },
    Status: { State: 'ready', Addr: '198.18.0.2' },
    ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '198.18.0.2:2377' },
  };
  const n = Node.decode(Node.encode(node).finish());
  assert.equal(n.Version?.Index, 2 ** 40);
  assert.equal(n.Spec?.Availability, 'drain');
  assert.equal(n.ManagerStatus?.Leader, true);
  assert.equal(n.Description?.Platform?.Architecture, 'x86_64');
  const t = Task.decode(
    Task.encode({
      ID: 't',
      Slot: 3,
      Status: { State: 'running', ContainerStatus: { PID: 42, ExitCode: 0 } },
      DesiredState: 'running',
    }).finish(),
  );
  assert.equal(t.Slot, 3);
  assert.equal(t.Status?.ContainerStatus?.PID, 42);
  const s = SecretSpec.decode(SecretSpec.encode({ Name: 'db', Data: new TextEncoder().encode('pw') }).finish());
  assert.equal(new TextDecoder().decode(s.Data), 'pw');
});

test('durations beyond 2^53 ns (a one-year certificate expiry) decode instead of throwing', () => {
  const year = 365 * 24 * 3600 * 1e9;
  assert.ok(year > Number.MAX_SAFE_INTEGER);
  const back = ClusterSpec.decode(ClusterSpec.encode({ CAConfig: { NodeCertExpiry: year } }).finish());
  assert.equal(back.CAConfig?.NodeCertExpiry, year);
});
