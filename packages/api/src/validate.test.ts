import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '@shoal/common';
import { defaultServiceSpec } from './defaults.js';
import {
  assertNoProblems,
  configSpecProblems,
  dnsNameProblem,
  isValidDnsName,
  networkSpecProblems,
  objectNameProblem,
  parseConstraint,
  secretSpecProblems,
  serviceSpecProblems,
} from './validate.js';
import type { ServiceSpec } from './gen/shoal/service.js';

test('DNS-valid names for services and networks', () => {
  for (const ok of ['web', 'app_web', 'a', 'A-1', 'x'.repeat(63), 'a__b', '9lives']) assert.ok(isValidDnsName(ok), ok);
  for (const bad of ['', '-web', 'web-', 'we b', 'web.1', '_x', 'x_', 'x'.repeat(64), 'wéb'])
    assert.ok(!isValidDnsName(bad), JSON.stringify(bad));
  assert.match(dnsNameProblem('') ?? '', /must be provided/);
  assert.match(dnsNameProblem('x'.repeat(64)) ?? '', /63/);
});

test('secret and config names allow dots, up to 64', () => {
  for (const ok of ['db.password', 'a', 'db-1_x', 'x'.repeat(64)]) assert.equal(objectNameProblem(ok), undefined, ok);
  for (const bad of ['', '.x', 'x.', 'a b', 'x'.repeat(65)]) assert.notEqual(objectNameProblem(bad), undefined, bad);
});

test('constraints parse, and bad ones name what is wrong', () => {
  assert.deepEqual(parseConstraint('node.role==worker'), { key: 'node.role', operator: '==', value: 'worker' });
  assert.deepEqual(parseConstraint(' node.labels.zone != b c '), {
    key: 'node.labels.zone',
    operator: '!=',
    value: 'b c',
  });
  assert.deepEqual(parseConstraint('engine.labels.disk==ssd'), {
    key: 'engine.labels.disk',
    operator: '==',
    value: 'ssd',
  });
  assert.throws(() => parseConstraint('node.role=worker'), /expected KEY==VALUE/);
  assert.throws(
    () => parseConstraint('node.colour==red'),
    (e: unknown) => e instanceof InvalidArgumentError && /unknown key "node.colour"/.test(e.message),
  );
  assert.throws(() => parseConstraint('node.role=='), /expected/);
});

test('a default service spec is valid', () => {
  assert.deepEqual(serviceSpecProblems(defaultServiceSpec('web', 'busybox')), []);
});

test('service spec problems are all reported, each with its path', () => {
  const spec: ServiceSpec = {
    Name: 'bad name',
    TaskTemplate: {
      ContainerSpec: {
        Image: 'busybox',
        Mounts: [
          { Type: 'bind', Source: 'rel', Target: '/data' },
          { Type: 'volume', Source: 'v', Target: '/data' },
          { Type: 'tmpfs', Source: 'x', Target: 'rel' },
        ],
        Healthcheck: { Test: ['WRONG'], Interval: 10 },
        Secrets: [
          { SecretName: 'a', File: { Name: 't' } },
          { SecretName: 'b', File: { Name: 't' } },
        ],
      },
      RestartPolicy: { Condition: 'always' },
      Placement: { Constraints: ['node.role=manager'] },
    },
    Mode: { Replicated: { Replicas: 1 }, Global: {} },
    UpdateConfig: { Order: 'sideways', MaxFailureRatio: 2 },
    EndpointSpec: { Mode: 'dnsrr', Ports: [{ TargetPort: 80, PublishedPort: 8080 }, { TargetPort: 0 }] },
  };
  const paths = serviceSpecProblems(spec).map((p) => p.path);
  for (const want of [
    'Name',
    'TaskTemplate.ContainerSpec.Mounts[0].Source',
    'TaskTemplate.ContainerSpec.Mounts[1].Target',
    'TaskTemplate.ContainerSpec.Mounts[2].Source',
    'TaskTemplate.ContainerSpec.Mounts[2].Target',
    'TaskTemplate.ContainerSpec.Healthcheck.Test',
    'TaskTemplate.ContainerSpec.Healthcheck.Interval',
    'TaskTemplate.ContainerSpec.Secrets[1].File.Name',
    'TaskTemplate.RestartPolicy.Condition',
    'TaskTemplate.Placement.Constraints[0]',
    'Mode',
    'UpdateConfig.Order',
    'UpdateConfig.MaxFailureRatio',
    'EndpointSpec.Ports[0]',
    'EndpointSpec.Ports[1].TargetPort',
  ])
    assert.ok(paths.includes(want), `missing ${want} in ${paths.join(', ')}`);
  assert.throws(
    () => assertNoProblems('service spec', serviceSpecProblems(spec)),
    (e: unknown) =>
      e instanceof InvalidArgumentError &&
      e.message.includes('dnsrr') &&
      e.message.includes('duplicate mount point "/data"'),
  );
  assert.deepEqual(
    serviceSpecProblems({ Name: 'x' }).map((p) => p.path),
    ['TaskTemplate.ContainerSpec.Image'],
  );
});

test('network, secret and config spec problems', () => {
  assert.deepEqual(networkSpecProblems({ Name: 'app_default' }), []);
  assert.equal(
    networkSpecProblems({ Name: 'n', IPAMOptions: { Configs: [{ Subnet: '198.19.0.0' }] } })[0]?.path,
    'IPAMOptions.Configs[0].Subnet',
  );
  assert.deepEqual(secretSpecProblems({ Name: 'db', Data: new Uint8Array([1]) }), []);
  assert.equal(secretSpecProblems({ Name: 'db' })[0]?.path, 'Data');
  assert.equal(secretSpecProblems({ Name: 'db', Data: new Uint8Array(500 * 1024) })[0]?.path, 'Data');
  assert.deepEqual(configSpecProblems({ Name: 'conf.yml', Data: new Uint8Array(10) }), []);
  assert.equal(configSpecProblems({ Name: 'c', Data: new Uint8Array(1000 * 1024) })[0]?.path, 'Data');
});
