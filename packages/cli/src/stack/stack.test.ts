/**
 * The client side of `shoal stack` without a daemon: `stack config` YAML that loads back to the
 * same configuration, Go durations, Docker's deploy lines in Docker's order, the dry-run plan,
 * `stack ls` rows, and `--resolve-image` modes (the registry lookup is a stub here; the lab test
 * resolves against a real registry).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Service, ServiceSpec } from '@shoal/api';
import { LABEL_IMAGE, LABEL_NAMESPACE, loadCompose } from '@shoal/compose';
import { configYaml, goDuration } from './config-yaml.js';
import { deployLines, planLines } from './deploy.js';
import { stackRows } from './command.js';
import { parseResolveImage, resolveImages } from './resolve-image.js';

test('goDuration prints as Go does', () => {
  assert.equal(goDuration(0), '0s');
  assert.equal(goDuration(90e9), '1m30s');
  assert.equal(goDuration(1.5e9), '1.5s');
  assert.equal(goDuration(300e6), '300ms');
  assert.equal(goDuration(3.6e12 + 1e9), '1h0m1s');
  assert.equal(goDuration(1500), '1.5µs');
});

test('stack config: merged, interpolated YAML that loads back to the same config', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-stack-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'pw.txt'), 'x');
  await writeFile(
    join(dir, 'a.yml'),
    `version: "3.8"
services:
  web:
    image: \${IMG:-busybox:1}
    command: sleep 3600
    environment: { A: "1", B: "yes", C: "0755" }
    deploy:
      replicas: 2
      restart_policy: { delay: 90s, condition: on-failure }
    secrets: [pw]
    healthcheck: { test: ["CMD", "true"], interval: 30s }
secrets:
  pw: { file: ./pw.txt }
networks:
  front: { driver: overlay, attachable: true }
`,
  );
  await writeFile(
    join(dir, 'b.yml'),
    `version: "3.8"\nservices:\n  web:\n    networks: [front]\n    deploy: { replicas: 3 }\n`,
  );
  const env = { IMG: 'busybox:2' };
  const first = loadCompose({ files: [join(dir, 'a.yml'), join(dir, 'b.yml')], env });
  const yaml = configYaml(first.config);
  assert.match(yaml, /^version: "3\.8"\nservices:\n {2}web:\n/);
  assert.match(yaml, /image: busybox:2\n/, 'interpolated');
  assert.match(yaml, /replicas: 3\n/, 'merged');
  assert.match(yaml, /delay: 1m30s\n/);
  assert.match(yaml, /B: "yes"\n/);
  assert.match(yaml, /C: "0755"\n/);
  await writeFile(join(dir, 'out.yml'), yaml);
  const again = loadCompose({ files: [join(dir, 'out.yml')], env: {} });
  assert.deepEqual(again.config.services, first.config.services);
  assert.deepEqual(again.config.networks, first.config.networks);
  assert.deepEqual(again.config.secrets, first.config.secrets);
});

test('deploy lines in Docker order; the dry-run plan with its diff', () => {
  const res = {
    Changes: [
      { Kind: 'service', Name: 'app_web', ID: 'w1', Action: 'update', Diff: ['Mode.Replicated.Replicas: 1 -> 3'] },
      { Kind: 'service', Name: 'app_db', ID: 'd1', Action: 'create' },
      { Kind: 'service', Name: 'app_old', ID: 'o1', Action: 'remove' },
      { Kind: 'secret', Name: 'app_pw', ID: 's1', Action: 'update' },
      { Kind: 'network', Name: 'app_default', ID: 'n1', Action: 'create' },
      { Kind: 'config', Name: 'app_cfg', ID: 'c1', Action: 'unchanged' },
    ],
  };
  assert.deepEqual(deployLines(res), [
    'Removing service app_old',
    'Creating network app_default',
    'Updating secret app_pw',
    'Creating service app_db',
    'Updating service app_web (id: w1)',
  ]);
  const plan = planLines(res);
  assert.ok(plan.includes('update    service app_web'));
  assert.ok(plan.includes('            Mode.Replicated.Replicas: 1 -> 3'));
  assert.equal(plan.at(-1), 'Dry run: 2 to create, 2 to update, 1 to remove, 1 unchanged; nothing was changed');
});

test('stack ls: services counted per namespace label, names in natural order', () => {
  const svc = (ns: string | undefined): Service => ({
    Spec: { Labels: ns === undefined ? {} : { [LABEL_NAMESPACE]: ns } },
  });
  assert.deepEqual(stackRows([svc('s10'), svc('s2'), svc('s2'), svc(undefined)]), [
    { Name: 's2', Services: 2 },
    { Name: 's10', Services: 1 },
  ]);
});

test('--resolve-image always|changed|never', async () => {
  assert.throws(() => parseResolveImage('sometimes'), /Invalid option sometimes for flag --resolve-image/);
  const digest = `sha256:${'a'.repeat(64)}`;
  const lookups: string[] = [];
  const lookup = (image: string): Promise<string> => {
    lookups.push(image);
    if (image.startsWith('down.example')) return Promise.reject(new Error('unreachable'));
    return Promise.resolve(digest);
  };
  const spec = (name: string, image: string): ServiceSpec => ({
    Name: name,
    Labels: { [LABEL_IMAGE]: image },
    TaskTemplate: { ContainerSpec: { Image: image } },
  });
  const running: Service[] = [
    {
      Spec: {
        Name: 'app_same',
        Labels: { [LABEL_IMAGE]: 'busybox:1' },
        TaskTemplate: { ContainerSpec: { Image: `busybox:1@sha256:${'b'.repeat(64)}` } },
      },
    },
  ];
  const specs = (): ServiceSpec[] => [
    spec('app_new', 'busybox:1'),
    spec('app_same', 'busybox:1'),
    spec('app_down', 'down.example/x:1'),
  ];
  const images = (s: ServiceSpec[]): string[] => s.map((x) => x.TaskTemplate?.ContainerSpec?.Image ?? '');

  const always = specs();
  const warned = await resolveImages(always, running, 'always', lookup);
  assert.deepEqual(images(always), [`busybox:1@${digest}`, `busybox:1@${digest}`, 'down.example/x:1']);
  assert.equal(warned.length, 1);
  assert.match(warned[0] ?? '', /^image down\.example\/x:1 could not be accessed on a registry to record its digest/);

  lookups.length = 0;
  const changed = specs();
  await resolveImages(changed, running, 'changed', lookup);
  assert.deepEqual(images(changed), [`busybox:1@${digest}`, `busybox:1@sha256:${'b'.repeat(64)}`, 'down.example/x:1']);
  assert.deepEqual(lookups, ['busybox:1', 'down.example/x:1'], 'the unchanged service asks no registry');

  lookups.length = 0;
  const never = specs();
  await resolveImages(never, running, 'never', lookup);
  assert.deepEqual(images(never), ['busybox:1', `busybox:1@sha256:${'b'.repeat(64)}`, 'down.example/x:1']);
  assert.deepEqual(lookups, []);
});
