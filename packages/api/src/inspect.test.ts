import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultServiceSpec } from './defaults.js';
import { Service } from './gen/shoal/service.js';
import { Node } from './gen/shoal/node.js';
import { Secret } from './gen/shoal/secret.js';
import { float32, inspectJson } from './inspect.js';

test("service inspect JSON: Docker's omitempty, always-printed fields, no Shoal-only fields", () => {
  const spec = defaultServiceSpec('web', 'busybox');
  spec.TaskTemplate!.ContainerSpec!.PullOptions = { RegistryAuth: 'secret-auth' };
  const wire = Service.decode(
    Service.encode({
      ID: 'abc',
      Version: { Index: 12 },
      CreatedAt: '2026-11-28T23:00:00Z',
      UpdatedAt: '2026-11-28T23:00:01Z',
      Spec: spec,
      SpecVersion: { Index: 12 },
      Endpoint: { Spec: { Mode: 'vip' } },
    }).finish(),
  );
  const json = inspectJson('service', wire);
  assert.deepEqual(Object.keys(json), ['ID', 'Version', 'CreatedAt', 'UpdatedAt', 'Spec', 'Endpoint']);
  const s = json['Spec'] as Record<string, unknown>;
  assert.deepEqual(s['Labels'], {});
  assert.deepEqual(s['Mode'], { Replicated: { Replicas: 1 } });
  assert.deepEqual(s['UpdateConfig'], {
    Parallelism: 1,
    FailureAction: 'pause',
    Monitor: 5e9,
    MaxFailureRatio: 0,
    Order: 'stop-first',
  });
  const tt = s['TaskTemplate'] as Record<string, unknown>;
  assert.deepEqual(tt['ContainerSpec'], { Image: 'busybox', StopGracePeriod: 10e9, DNSConfig: {} });
  assert.deepEqual(tt['Resources'], {}, 'Docker prints an empty Resources as {}');
  assert.equal(tt['ForceUpdate'], 0);
  assert.ok(!JSON.stringify(json).includes('secret-auth'));
  assert.ok(!('Networks' in s), 'empty lists are omitted');
});

test('global mode prints {}, node drops its certificate and attachments, secret data prints base64', () => {
  const svc = Service.decode(Service.encode({ ID: 'g', Spec: { Name: 'g', Mode: { Global: {} } } }).finish());
  assert.deepEqual((inspectJson('service', svc)['Spec'] as Record<string, unknown>)['Mode'], { Global: {} });
  const node = Node.decode(
    Node.encode({
      ID: 'n',
      Spec: { Role: 'worker', Availability: 'active' },
      Certificate: { Role: 'worker', Certificate: new Uint8Array([1]) },
      ManagerStatus: { Leader: true, RaftID: 7 },
      Attachments: [{ Network: { ID: 'ingress' }, Addresses: ['198.19.128.2/24'] }],
    }).finish(),
  );
  const nj = inspectJson('node', node);
  assert.equal(nj['Certificate'], undefined);
  assert.equal(nj['Attachments'], undefined, "the ingress load-balancer attachment is not in Docker's node JSON");
  assert.deepEqual(nj['ManagerStatus'], { Leader: true });
  assert.deepEqual(nj['Spec'], { Labels: {}, Role: 'worker', Availability: 'active' });
  assert.deepEqual(nj['Description'], {});
  const sj = inspectJson(
    'secret',
    Secret.decode(Secret.encode({ ID: 's', Spec: { Name: 'x', Data: new Uint8Array([104, 105]) } }).finish()),
  );
  assert.equal((sj['Spec'] as Record<string, unknown>)['Data'], 'aGk=');
});

test('maps print every entry with their keys sorted (as Go), float32 fields with their shortest digits', () => {
  const svc = Service.decode(
    Service.encode({
      ID: 's',
      Spec: {
        Name: 's',
        Labels: { 'z.last': 'z', 'a.first': '', 'com.docker.stack.namespace': 'st' },
        UpdateConfig: { Parallelism: 1, MaxFailureRatio: 0.3 },
      },
    }).finish(),
  );
  const spec = inspectJson('service', svc)['Spec'] as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(spec['Labels'] ?? {}), ['a.first', 'com.docker.stack.namespace', 'z.last']);
  assert.equal(spec['Labels']?.['a.first'], '', 'an empty label value is printed');
  assert.equal(spec['UpdateConfig']?.['MaxFailureRatio'], 0.3, 'not 0.30000001192092896');
  assert.equal(float32(Math.fround(0.1)), 0.1);
  assert.equal(float32(0.5), 0.5);
});
