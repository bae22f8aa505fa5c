/**
 * Services on a lab cluster of 5 (3 managers, 2 workers), through the real `shoal` CLI on every
 * host's real shoald: replicated placement and scale, global services following drain, secrets
 * only on the node that runs the task, failures bounded by the restart policy, a worker killed
 * with kill -9 (its tasks move, and its old containers stop when it returns), bad input.
 * Images come from the lab's registry. Labs go in t.after, also when a test fails. Root only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { run, waitFor, type RunResult } from '@shoal/common';
import { pushTestImages, readLabState, TestImages } from '@shoal/testkit';
import { cliMain, labTestRig } from './lab-test-rig.js';

// One `after` (registered at the top level): the lab goes down, its mounts included, before its
// root is removed, and no task container may still run.
const rig = await labTestRig({ rootPrefix: 'shoal-svclab-', labPrefix: 'sv' });
const { root, labName } = rig;

function shoal(args: string[], input?: string): Promise<RunResult> {
  return rig.shoal(args, { ...(input === undefined ? {} : { input }) });
}

/** `shoal ARGS` inside a lab host (its SHOAL_HOST is that host's shoald). */
function onHost(lab: string, host: string, args: string[], input?: string): Promise<RunResult> {
  return shoal(['lab', 'exec', lab, host, '--', process.execPath, cliMain, ...args], input);
}

/** The last output read by `ok`, for the message of a wait that timed out. */
let lastOutput = '';

async function ok(lab: string, host: string, args: string[], input?: string): Promise<string> {
  const r = await onHost(lab, host, args, input);
  lastOutput = `${args.join(' ')} -> ${r.stdout}${r.stderr}`;
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Lab {
  name: string;
  image: string;
}

/**
 * One lab of 5 with 3 managers and the test images in its registry, shared by the tests of this
 * file (they run one after the other; each uses its own service names). Down in `after`.
 */
let sharedLab: Promise<Lab> | undefined;
const shared = (): Promise<Lab> => (sharedLab ??= makeLab());

async function makeLab(): Promise<Lab> {
  const name = labName;
  const r = await shoal(['lab', 'up', '--name', name, '--hosts', '5', '--managers', '3']);
  assert.equal(r.code, 0, r.stderr);
  const state = await readLabState(name);
  assert.ok(state?.registry, 'the lab has a registry');
  const pushed = await pushTestImages(state.registry.url);
  const busybox = pushed.find((p) => p.ref === TestImages.busybox);
  assert.ok(busybox, 'busybox pushed');
  return { name, image: busybox.remoteRef };
}

/** Running tasks of a service as `node` per line (sorted). */
async function runningOn(lab: Lab, service: string, via = 'h1'): Promise<string[]> {
  const out = await ok(lab.name, via, [
    'service',
    'ps',
    '--filter',
    'desired-state=running',
    '--format',
    '{{.Node}} {{.CurrentState}}',
    service,
  ]);
  return out
    .split('\n')
    .filter((l) => /^\S+ Running/.test(l))
    .map((l) => l.split(' ')[0] ?? '')
    .sort();
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  try {
    return await waitFor(fn, { timeoutMs, intervalMs: 500 });
  } catch (err) {
    throw new Error(`${what}: ${String(err)}; last seen: ${lastOutput}`, { cause: err });
  }
}

function counts(nodes: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of nodes) c[n] = (c[n] ?? 0) + 1;
  return c;
}

test('services on a lab of 5: 10 replicas spread 2 per node, scale 3 and back, global follows drain', async () => {
  const lab = await shared();
  await ok(lab.name, 'h1', [
    'service',
    'create',
    '-d',
    '--name',
    'web',
    '--replicas',
    '10',
    lab.image,
    'sleep',
    '3600',
  ]);
  const spread = await until('10 running', async () => {
    const on = await runningOn(lab, 'web');
    return on.length === 10 ? on : undefined;
  });
  assert.deepEqual(counts(spread), { h1: 2, h2: 2, h3: 2, h4: 2, h5: 2 });
  // `service ls` shows the replicas as docker does.
  assert.match(await ok(lab.name, 'h2', ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}']), /^web 10\/10$/m);

  await ok(lab.name, 'h1', ['service', 'scale', '-d', 'web=3']);
  await until('3 running', async () => ((await runningOn(lab, 'web')).length === 3 ? true : undefined));
  await ok(lab.name, 'h1', ['service', 'scale', '-d', 'web=10']);
  await until('10 running again', async () => ((await runningOn(lab, 'web')).length === 10 ? true : undefined));

  await ok(lab.name, 'h1', [
    'service',
    'create',
    '-d',
    '--name',
    'agent',
    '--mode',
    'global',
    lab.image,
    'sleep',
    '3600',
  ]);
  await until('global on 5', async () =>
    JSON.stringify(await runningOn(lab, 'agent')) === JSON.stringify(['h1', 'h2', 'h3', 'h4', 'h5']) ? true : undefined,
  );
  await ok(lab.name, 'h1', ['node', 'update', '--availability', 'drain', 'h5']);
  await until('global off the drained node', async () =>
    JSON.stringify(await runningOn(lab, 'agent')) === JSON.stringify(['h1', 'h2', 'h3', 'h4']) ? true : undefined,
  );
  await ok(lab.name, 'h1', ['node', 'update', '--availability', 'active', 'h5']);
  await until('global back on h5', async () => ((await runningOn(lab, 'agent')).includes('h5') ? true : undefined));

  // Placement by role: only workers.
  await ok(lab.name, 'h1', [
    'service',
    'create',
    '-d',
    '--name',
    'onlyworkers',
    '--replicas',
    '4',
    '--constraint',
    'node.role==worker',
    lab.image,
    'sleep',
    '3600',
  ]);
  const w = await until('4 on workers', async () => {
    const on = await runningOn(lab, 'onlyworkers');
    return on.length === 4 ? on : undefined;
  });
  assert.deepEqual(counts(w), { h4: 2, h5: 2 });

  // A reservation that fits nowhere stays pending with its reason.
  await ok(lab.name, 'h1', ['service', 'create', '-d', '--name', 'huge', '--reserve-memory', '100T', lab.image]);
  const why = await until('pending reason', async () => {
    const out = await ok(lab.name, 'h1', [
      'service',
      'ps',
      '--no-trunc',
      '--format',
      '{{.CurrentState}}|{{.Error}}',
      'huge',
    ]);
    return /^Pending.*\|"no suitable node \(.*insufficient memory/m.test(out) ? out : undefined;
  });
  assert.match(why, /5 nodes insufficient memory/);

  // rm: every container of the service goes from every node.
  await ok(lab.name, 'h1', ['service', 'rm', 'web', 'agent', 'onlyworkers', 'huge']);
  for (const h of ['h1', 'h2', 'h3', 'h4', 'h5'])
    await until(`no task containers left on ${h}`, async () => {
      const out = await ok(lab.name, h, ['container', 'ls', '-a', '--format', '{{.Names}}']);
      return /^(web|agent|onlyworkers)\./m.test(out) ? undefined : true;
    });
});

test('secrets on a lab of 5: the right bytes in the task, on no other node, gone after the task; rm in use refused', async () => {
  const lab = await shared();
  const bytes = `s3cr3t-${randomBytes(12).toString('hex')}`;
  await ok(lab.name, 'h1', ['secret', 'create', 'dbpass', '-'], bytes);
  // The secret's data is never printed by inspect.
  assert.doesNotMatch(await ok(lab.name, 'h1', ['secret', 'inspect', 'dbpass']), new RegExp(bytes));
  await ok(lab.name, 'h1', [
    'service',
    'create',
    '-d',
    '--name',
    'db',
    '--secret',
    'dbpass',
    '--constraint',
    'node.hostname==h4',
    lab.image,
    'sh',
    '-c',
    // The digest, not the bytes: the container's log is on disk.
    'sha256sum /run/secrets/dbpass; stat -c %a /run/secrets/dbpass; sleep 3600',
  ]);
  await until('db running on h4', async () => ((await runningOn(lab, 'db')).includes('h4') ? true : undefined));
  const container = (await ok(lab.name, 'h4', ['container', 'ls', '--format', '{{.Names}}']))
    .split('\n')
    .find((n) => n.startsWith('db.1.'));
  assert.ok(container, 'the task container on h4');
  const logs = await until('secret in the container', async () => {
    const out = await ok(lab.name, 'h4', ['container', 'logs', container]);
    return out.includes('/run/secrets/dbpass') ? out : undefined;
  });
  const digest = createHash('sha256').update(bytes).digest('hex');
  assert.equal(logs, `${digest}  /run/secrets/dbpass\n444\n`);

  const state = await readLabState(lab.name);
  const labDir = join(root, lab.name);
  // Files on disk (find -xdev does not enter mounts, so the task's tmpfs is not searched).
  const grep = async (paths: string[]): Promise<string> =>
    (
      await run('sh', ['-c', 'find "$@" -xdev -type f -exec grep -lsF -e "$SECRET" {} + || true', 'grep', ...paths], {
        check: false,
        env: { ...process.env, SECRET: bytes },
      })
    ).stdout;
  // No node's data root or runtime dir holds it on disk (h4's tmpfs is its only copy).
  assert.equal(await grep([labDir, '/run/shoal']), '', 'the secret bytes on some node disk');
  assert.ok(state);

  const inUse = await onHost(lab.name, 'h1', ['secret', 'rm', 'dbpass']);
  assert.notEqual(inUse.code, 0);
  assert.match(inUse.stderr, /in use by.*db/);

  await ok(lab.name, 'h1', ['service', 'rm', 'db']);
  await until('db gone from h4', async () => {
    const out = await ok(lab.name, 'h4', ['container', 'ls', '-a', '--format', '{{.Names}}']);
    return out.includes('db.1.') ? undefined : true;
  });
  // After the task: nowhere at all, tmpfs mounts included.
  const everywhere = await run('grep', ['-rlsF', '-e', bytes, labDir, '/run/shoal'], { check: false });
  assert.equal(everywhere.stdout, '', 'secret bytes left after the task');
  await ok(lab.name, 'h1', ['secret', 'rm', 'dbpass']);
});

test('failures and faults on a lab of 5: bounded restarts, a missing image, kill -9 of a worker', async () => {
  const lab = await shared();
  // A bad command: the restart policy bounds the attempts (1 + 2 restarts), each FAILED with the exit.
  await ok(lab.name, 'h1', [
    'service',
    'create',
    '-d',
    '--name',
    'crash',
    '--restart-condition',
    'on-failure',
    '--restart-max-attempts',
    '2',
    '--restart-delay',
    '100ms',
    lab.image,
    'sh',
    '-c',
    'exit 3',
  ]);
  const failed = await until('three failed attempts', async () => {
    const out = await ok(lab.name, 'h1', [
      'service',
      'ps',
      '--no-trunc',
      '--format',
      '{{.CurrentState}}|{{.Error}}',
      'crash',
    ]);
    const lines = out.split('\n').filter(Boolean);
    return lines.length === 3 && lines.every((l) => /^Failed.*\|"task: non-zero exit \(3\)"$/.test(l))
      ? lines
      : undefined;
  });
  assert.equal(failed.length, 3);

  // A missing image: FAILED/REJECTED with the pull error shown.
  const missing = lab.image.replace(/busybox:[^@]+.*$/, 'nosuchimage:1');
  await ok(lab.name, 'h1', ['service', 'create', '-d', '--name', 'ghost', '--restart-condition', 'none', missing]);
  await until('pull error shown', async () => {
    const out = await ok(lab.name, 'h1', [
      'service',
      'ps',
      '--no-trunc',
      '--format',
      '{{.CurrentState}}|{{.Error}}',
      'ghost',
    ]);
    return /^(Rejected|Failed).*\|".*nosuchimage/m.test(out) ? true : undefined;
  });

  // kill -9 of a worker's shoald: its tasks are replaced elsewhere; when it comes back its old
  // containers are stopped, so no slot runs twice.
  await ok(lab.name, 'h1', ['service', 'create', '-d', '--name', 'web', '--replicas', '5', lab.image, 'sleep', '3600']);
  await until('5 running', async () => ((await runningOn(lab, 'web')).length === 5 ? true : undefined));
  const onH5 = (await runningOn(lab, 'web')).filter((n) => n === 'h5').length;
  assert.ok(onH5 >= 1, 'a task on h5');
  assert.equal((await shoal(['lab', 'stop', lab.name, 'h5', '--signal', 'KILL'])).code, 0);
  const moved = await until('tasks replaced off h5', async () => {
    const on = await runningOn(lab, 'web');
    return on.length === 5 && !on.includes('h5') ? on : undefined;
  });
  assert.equal(moved.length, 5);
  assert.equal((await shoal(['lab', 'start', lab.name, 'h5'])).code, 0);
  await until('old containers on h5 stopped', async () => {
    const out = await onHost(lab.name, 'h5', ['container', 'ls', '--format', '{{.Names}}']);
    return out.code === 0 && !/^web\./m.test(out.stdout) ? true : undefined;
  });
  const slots = (
    await ok(lab.name, 'h1', ['service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Name}}', 'web'])
  )
    .split('\n')
    .filter(Boolean)
    .sort();
  assert.deepEqual(slots, ['web.1', 'web.2', 'web.3', 'web.4', 'web.5']);

  // kill -9 of the leader in the middle of a scale to 30: a new leader completes it, no slot twice.
  await ok(lab.name, 'h1', ['service', 'scale', '-d', 'web=30']);
  assert.equal((await shoal(['lab', 'stop', lab.name, 'h1', '--signal', 'KILL'])).code, 0);
  await until(
    '30 running after the leader was killed',
    async () => {
      const r = await onHost(lab.name, 'h2', [
        'service',
        'ps',
        '--filter',
        'desired-state=running',
        '--format',
        '{{.Name}} {{.Node}} {{.CurrentState}}',
        'web',
      ]);
      lastOutput = r.stdout + r.stderr;
      const running = r.stdout.split('\n').filter((l) => / Running /.test(l) && !/ h1 /.test(l));
      return r.code === 0 && running.length === 30 ? true : undefined;
    },
    180_000,
  );
  const all = (
    await ok(lab.name, 'h2', ['service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Name}}', 'web'])
  )
    .split('\n')
    .filter(Boolean);
  assert.equal(new Set(all).size, all.length, `a slot twice: ${all.join(' ')}`);
  assert.equal(all.length, 30);
  assert.equal((await shoal(['lab', 'start', lab.name, 'h1'])).code, 0);
});

test('services: bad input gets one line and creates nothing', async () => {
  const lab = await shared();
  await ok(lab.name, 'h1', ['service', 'create', '-d', '--name', 'dup', lab.image, 'sleep', '3600']);
  const bad: [string[], RegExp][] = [
    [['service', 'create', '--frobnicate', lab.image], /unknown flag: --frobnicate/],
    [['service', 'create', '--name', 'x1', '--reserve-memory', '12XB', lab.image], /12XB/],
    [['service', 'create', '--name', 'x2', '--constraint', 'node.role=worker', lab.image], /constraint/],
    [['service', 'create', '--name', 'x3', '--secret', 'nosuchsecret', lab.image], /nosuchsecret/],
    [['service', 'create', '--name', 'dup', lab.image], /dup/],
  ];
  for (const [args, re] of bad) {
    const r = await onHost(lab.name, 'h1', args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length <= 2, true, r.stderr);
  }
  const names = (await ok(lab.name, 'h1', ['service', 'ls', '--format', '{{.Name}}'])).split('\n');
  assert.deepEqual(
    names.filter((n) => /^(x\d|dup)$/.test(n)),
    ['dup'],
  );
});
