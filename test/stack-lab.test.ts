/**
 * `shoal stack` through the real CLI on a real shoald (a lab of one host, one manager; images
 * from the lab's registry): deploy runs the stack's tasks, a re-deploy with one change updates
 * only that service, --prune removes a service no longer in the file, ls/ps/services list the
 * stack, and rm leaves no service, network, secret, config or running container. Then broken
 * stacks: a syntax error, a schema error, `${X:?msg}`, a missing env_file, an unknown network and
 * secret, a missing external object, and errors in two files: each reported with
 * file:line:column, exit status 1, and nothing created. Root only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor, type RunResult } from '@shoal/common';
import { labContainerIds, pidsInCgroupsNamed, pushTestImages, readLabState, TestImages } from '@shoal/testkit';
import { cliMain, labTestRig } from './lab-test-rig.js';

const files = await mkdtemp(join(tmpdir(), 'shoal-stackfiles-'));
const { root, labName, shoal } = await labTestRig({
  rootPrefix: 'shoal-stacklab-',
  labPrefix: 'st',
  cleanup: () => rm(files, { recursive: true, force: true }),
});
const NS_LABEL = 'com.docker.stack.namespace';

/** The lab registry's host:port: plain HTTP, so named insecure for the CLI's digest lookups. */
let registryHost = '';

/** `shoal ARGS` on the lab's only host (its shoald). */
function onHost(args: string[]): Promise<RunResult> {
  return shoal([
    'lab',
    'exec',
    labName,
    'h1',
    '--',
    'env',
    `SHOAL_INSECURE_REGISTRIES=${registryHost}`,
    process.execPath,
    cliMain,
    ...args,
  ]);
}

let lastOutput = '';
async function ok(args: string[]): Promise<string> {
  const r = await onHost(args);
  lastOutput = `${args.join(' ')} -> ${r.stdout}${r.stderr}`;
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  try {
    return await waitFor(fn, { timeoutMs, intervalMs: 500 });
  } catch (err) {
    throw new Error(`${what}: ${String(err)}; last seen: ${lastOutput}`, { cause: err });
  }
}

let labReady: Promise<string> | undefined;
/** The lab (one host, one manager) and the busybox reference in its registry. */
const lab = (): Promise<string> =>
  (labReady ??= (async () => {
    const r = await shoal(['lab', 'up', '--name', labName, '--hosts', '1', '--managers', '1']);
    assert.equal(r.code, 0, r.stderr);
    const state = await readLabState(labName);
    assert.ok(state?.registry, 'the lab has a registry');
    registryHost = new URL(state.registry.url).host;
    const pushed = await pushTestImages(state.registry.url);
    const busybox = pushed.find((p) => p.ref === TestImages.busybox);
    assert.ok(busybox, 'busybox pushed');
    return busybox.remoteRef;
  })());

async function file(name: string, text: string): Promise<string> {
  const path = join(files, name);
  await writeFile(path, text);
  return path;
}

/** Names of the objects of `kind` that carry stack `ns`'s label. */
async function objects(kind: 'service' | 'network' | 'secret' | 'config', ns: string): Promise<string[]> {
  const out = await ok([kind, 'ls', '--filter', `label=${NS_LABEL}=${ns}`, '--format', '{{.Name}}']);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

async function nothingOf(ns: string): Promise<void> {
  for (const kind of ['service', 'network', 'secret', 'config'] as const)
    assert.deepEqual(await objects(kind, ns), [], `no ${kind} of stack ${ns}`);
}

function stackFile(image: string, opts: { dbEnv?: string; withOld?: boolean } = {}): string {
  return `version: "3.8"
services:
  web:
    image: ${image}
    command: sleep 3600
    deploy:
      replicas: 2
    secrets: [db_pw]
    configs:
      - source: app_cfg
        target: /etc/app.conf
  db:
    image: ${image}
    command: sleep 3600
${opts.dbEnv ? `    environment:\n      MODE: ${opts.dbEnv}\n` : ''}${opts.withOld !== false ? `  old:\n    image: ${image}\n    command: sleep 3600\n` : ''}secrets:
  db_pw:
    file: ./db_pw.txt
configs:
  app_cfg:
    file: ./app.conf
`;
}

/** Running tasks of stack `ns` as `NAME` (service.slot) lines. */
async function running(ns: string): Promise<string[]> {
  const r = await onHost([
    'stack',
    'ps',
    '--filter',
    'desired-state=running',
    '--format',
    '{{.Name}} {{.CurrentState}}',
    ns,
  ]);
  lastOutput = `stack ps -> ${r.stdout}${r.stderr}`;
  // no task yet: Docker's "nothing found in stack" and exit status 1
  if (r.code === 1 && r.stderr.includes(`nothing found in stack: ${ns}`)) return [];
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => / Running/.test(l))
    .map((l) => l.split(' ')[0] ?? '')
    .sort();
}

test('stack deploy, re-deploy with one change, --prune, ls/ps/services, rm leaves nothing', async () => {
  const image = await lab();
  await file('db_pw.txt', 's3cret\n');
  await file('app.conf', 'x=1\n');
  const v1 = await file('app.yml', stackFile(image));
  const ns = 'app';

  const dry = await ok(['stack', 'deploy', '--dry-run', '-c', v1, ns]);
  assert.match(dry, /create\s+service app_web/);
  assert.match(dry, /nothing was changed/);
  await nothingOf(ns);

  const out = await ok(['stack', 'deploy', '-c', v1, ns]);
  assert.deepEqual(out.trimEnd().split('\n'), [
    'Creating network app_default',
    'Creating secret app_db_pw',
    'Creating config app_app_cfg',
    'Creating service app_db',
    'Creating service app_old',
    'Creating service app_web',
  ]);
  const up = await until('4 tasks running', async () => {
    const r = await running(ns);
    return r.length === 4 ? r : undefined;
  });
  assert.deepEqual(up, ['app_db.1', 'app_old.1', 'app_web.1', 'app_web.2']);
  assert.equal(await ok(['stack', 'ls', '--format', '{{.Name}} {{.Services}}']), 'app 3\n');
  const services = await ok(['stack', 'services', '--format', '{{.Name}} {{.Mode}} {{.Replicas}}', ns]);
  assert.deepEqual(services.trimEnd().split('\n'), [
    'app_db replicated 1/1',
    'app_old replicated 1/1',
    'app_web replicated 2/2',
  ]);
  assert.match(
    await ok(['stack', 'ps', ns]),
    /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS\n/,
  );
  // the image was pinned to the registry's digest (--resolve-image always, Docker's default)
  const pinned = await ok(['service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', 'app_web']);
  assert.match(pinned, /@sha256:[0-9a-f]{64}\n$/);

  const version = async (s: string): Promise<string> =>
    (await ok(['service', 'inspect', '--format', '{{.Version.Index}}', s])).trim();
  const webVersion = await version('app_web');
  const oldVersion = await version('app_old');
  const v2 = await file('app.yml', stackFile(image, { dbEnv: 'two' }));
  const again = await ok(['stack', 'deploy', '-c', v2, ns]);
  assert.match(again, /^Updating service app_db \(id: [0-9a-z]+\)$/m);
  assert.doesNotMatch(again, /app_web|app_old|Creating/);
  assert.equal(await version('app_web'), webVersion, 'web untouched');
  assert.equal(await version('app_old'), oldVersion, 'old untouched');
  await until('db runs with MODE=two', async () => {
    const env = await ok(['service', 'inspect', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Env}}', 'app_db']);
    const r = await running(ns);
    return env.includes('MODE=two') && r.length === 4 ? true : undefined;
  });

  const v3 = await file('app.yml', stackFile(image, { dbEnv: 'two', withOld: false }));
  const kept = await ok(['stack', 'deploy', '-c', v3, ns]);
  assert.equal(kept, '', 'without --prune nothing changes');
  assert.deepEqual(await objects('service', ns), ['app_db', 'app_old', 'app_web']);
  const pruned = await ok(['stack', 'deploy', '--prune', '-c', v3, ns]);
  assert.equal(pruned, 'Removing service app_old\n');
  assert.deepEqual(await objects('service', ns), ['app_db', 'app_web']);

  const gone = await ok(['stack', 'rm', ns]);
  assert.deepEqual(gone.trimEnd().split('\n'), [
    'Removing service app_db',
    'Removing service app_web',
    'Removing network app_default',
    'Removing secret app_db_pw',
    'Removing config app_app_cfg',
  ]);
  await nothingOf(ns);
  assert.equal(await ok(['stack', 'ls', '--format', '{{.Name}}']), '');
  assert.deepEqual(pidsInCgroupsNamed(labContainerIds(join(root, labName))), [], 'no task container runs');
  const again2 = await onHost(['stack', 'rm', ns]);
  assert.equal(again2.code, 0);
  assert.equal(again2.stderr, `Nothing found in stack: ${ns}\n`);
});

test('broken stacks: every error with file:line:column, exit status 1, nothing created', async () => {
  const image = await lab();
  await ok(['network', 'create', '--driver', 'overlay', 'exists_net']);
  const ns = 'errs';
  const cases: { name: string; files: Record<string, string>; want: RegExp[] }[] = [
    {
      name: 'syntax',
      files: { 'syntax.yml': `services:\n  web:\n    image: ${image}\n   bad: [\n` },
      want: [/syntax\.yml:\d+:\d+: /],
    },
    {
      name: 'schema',
      files: { 'schema.yml': `services:\n  web:\n    image: ${image}\n    deploy:\n      replicas: "two"\n` },
      want: [/schema\.yml:5:17: services\.web\.deploy\.replicas must be a integer/],
    },
    {
      name: 'required variable',
      files: { 'req.yml': `services:\n  web:\n    image: \${STACK_TEST_UNSET:?set the image}\n` },
      want: [/req\.yml:3:12: invalid interpolation format for services\.web\.image: .*set the image/],
    },
    {
      name: 'env_file',
      files: { 'envf.yml': `services:\n  web:\n    image: ${image}\n    env_file: ./missing.env\n` },
      want: [/envf\.yml:4:\d+: .*missing\.env: no such file or directory/],
    },
    {
      name: 'unknown network and secret',
      files: {
        'refs.yml': `services:\n  web:\n    image: ${image}\n    networks: [front]\n    secrets: [nope]\n`,
      },
      want: [
        /refs\.yml:4:\d+: service web: undefined network "front"/,
        /refs\.yml:5:\d+: service web: undefined secret "nope"/,
      ],
    },
    {
      name: 'external missing',
      files: {
        'ext.yml': `services:\n  web:\n    image: ${image}\n    networks: [proxy, ok]\nnetworks:\n  proxy:\n    external: true\n  ok:\n    external: true\n    name: exists_net\n`,
      },
      want: [/ext\.yml:7:\d+: network "proxy" is declared as external, but could not be found/],
    },
    {
      name: 'two files',
      files: {
        'one.yml': `services:\n  web:\n    image: ${image}\n    deploy:\n      mode: replicated\n      replicas: -x\n`,
        'two.yml': `services:\n  web:\n    ports:\n      - "abc"\n`,
      },
      want: [/one\.yml:6:\d+: services\.web\.deploy\.replicas/, /two\.yml:4:\d+: services\.web\.ports\.0/],
    },
  ];
  for (const c of cases) {
    const args = ['stack', 'deploy'];
    for (const [name, text] of Object.entries(c.files)) args.push('-c', await file(name, text));
    const r = await onHost([...args, ns]);
    assert.equal(r.code, 1, `${c.name}: exit ${r.code}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '', `${c.name}: nothing printed on stdout`);
    for (const re of c.want) assert.match(r.stderr, re, `${c.name}`);
    for (const line of r.stderr.trimEnd().split('\n'))
      assert.match(line, /^\/\S+\.yml:\d+:\d+: /, `${c.name}: every line has file:line:column`);
    await nothingOf(ns);
  }
  await ok(['network', 'rm', 'exists_net']);
});

test('a secret and a config made by hand with the stack names: adopted when the data is the same, refused when not', async () => {
  const image = await lab();
  await file('db_pw.txt', 's3cret\n');
  await file('app.conf', 'x=1\n');
  const other = await file('other_pw.txt', 'other\n');
  const stackYml = await file('adopt.yml', stackFile(image, { withOld: false }));
  const ns = 'adopt';

  // Different data: refused as Docker's daemon refuses the secret update; nothing is created.
  await ok(['secret', 'create', 'adopt_db_pw', other]);
  const refused = await onHost(['stack', 'deploy', '-c', stackYml, ns]);
  assert.notEqual(refused.code, 0, `${refused.stdout}${refused.stderr}`);
  assert.match(refused.stderr, /adopt_db_pw: only updates to Labels are allowed/);
  await nothingOf(ns);
  await ok(['secret', 'rm', 'adopt_db_pw']);

  // The same data: the stack takes them over (same IDs), with its label.
  await ok(['secret', 'create', '--label', 'owner=ops', 'adopt_db_pw', join(files, 'db_pw.txt')]);
  await ok(['config', 'create', 'adopt_app_cfg', join(files, 'app.conf')]);
  const id = async (kind: string, name: string): Promise<string> =>
    (await ok([kind, 'inspect', '--format', '{{.ID}}', name])).trim();
  const secretId = await id('secret', 'adopt_db_pw');
  const configId = await id('config', 'adopt_app_cfg');
  const out = await ok(['stack', 'deploy', '-c', stackYml, ns]);
  assert.deepEqual(out.trimEnd().split('\n'), [
    'Creating network adopt_default',
    'Updating secret adopt_db_pw',
    'Updating config adopt_app_cfg',
    'Creating service adopt_db',
    'Creating service adopt_web',
  ]);
  assert.equal(await id('secret', 'adopt_db_pw'), secretId);
  assert.equal(await id('config', 'adopt_app_cfg'), configId);
  assert.equal(
    await ok(['secret', 'inspect', '--format', '{{json .Spec.Labels}}', 'adopt_db_pw']),
    `{"${NS_LABEL}":"adopt"}\n`,
  );
  assert.deepEqual(await objects('secret', ns), ['adopt_db_pw']);
  assert.deepEqual(await objects('config', ns), ['adopt_app_cfg']);
  const web = await ok([
    'service',
    'inspect',
    '--format',
    '{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}',
    'adopt_web',
  ]);
  assert.ok(web.includes(secretId), `the service uses the adopted secret: ${web}`);

  await ok(['stack', 'rm', ns]);
  await nothingOf(ns);
});
