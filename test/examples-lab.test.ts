/**
 * The stacks of examples/ on a lab cluster of 5 (3 managers, 2 workers), each deployed with the
 * real `shoal stack deploy` on the hosts' real shoald, its images from the lab's registry:
 * - every task runs, and the services reach each other by name over their overlays (asked through
 *   the published ports of every node: webapp-db's web asks db, voting's vote -> redis -> worker
 *   -> db -> result pipeline counts one vote, monitoring's collector finds every node's agent);
 * - a re-deploy with one change (an extra `-c` file giving one service a deploy label) updates
 *   that service only: every other service keeps its Version;
 * - `stack deploy --prune` with a copy of the file that lacks one service removes that service
 *   and its containers;
 * - `stack rm` leaves nothing: no service, network, secret or config of the stack in the
 *   cluster, no container of it in any host's engine, no overlay namespace of its networks.
 * Labs go in `after`, also when a test fails. Root only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor, type RunResult } from '@shoal/common';
import { pushTestImages, readLabState, TestImages } from '@shoal/testkit';
import { cliMain, labTestRig, repo } from './lab-test-rig.js';

const examples = join(repo, 'examples');
// One `after` (registered at the top level): the lab goes down, its mounts included, before its
// root is removed, and no task container may still run.
const rig = await labTestRig({ rootPrefix: 'shoal-exlab-', labPrefix: 'ex' });
const { labName } = rig;

const uniq = (prefix: string): string => `${prefix}-${randomBytes(3).toString('hex')}`;
const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5'];

function shoal(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return rig.shoal(args, { env });
}

/** `shoal ARGS` inside a lab host (its SHOAL_HOST is that host's shoald). */
function onHost(lab: string, host: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return shoal(['lab', 'exec', lab, host, '--', process.execPath, cliMain, ...args], env);
}

/** The last output read by `ok`, for the message of a wait that timed out. */
let lastOutput = '';

async function ok(lab: string, host: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await onHost(lab, host, args, env);
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

interface Lab {
  name: string;
  /** `REGISTRY` of the example files: the lab registry as the hosts reach it. */
  registry: string;
  /** Underlay address of each host. */
  addr: Record<string, string>;
}

let sharedLab: Promise<Lab> | undefined;
const shared = (): Promise<Lab> => (sharedLab ??= makeLab());

async function makeLab(): Promise<Lab> {
  const r = await shoal(['lab', 'up', '--name', labName, '--hosts', '5', '--managers', '3']);
  assert.equal(r.code, 0, r.stderr);
  const state = await readLabState(labName);
  assert.ok(state?.registry, 'the lab has a registry');
  const pushed = await pushTestImages(state.registry.url, { only: [TestImages.busybox] });
  const busybox = pushed.find((p) => p.ref === TestImages.busybox);
  assert.ok(busybox, 'busybox pushed');
  const addr: Record<string, string> = {};
  for (const h of state.hosts) addr[h.name] = h.address;
  return { name: labName, registry: busybox.remoteRef.slice(0, busybox.remoteRef.indexOf('/')), addr };
}

/** One HTTP GET from the root namespace (through the node's published port): status and body. */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    // busybox httpd's CGI headers end in LF only, which Node's strict parser refuses (curl takes them)
    const req = request(url, { timeout: 5000, insecureHTTPParser: true }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => resolve({ status: 0, body: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.end();
  });
}

/** Until `url` answers 200 with a body matching `re`; the body. */
async function answers(url: string, re: RegExp): Promise<string> {
  return until(`${url} answers ${re}`, async () => {
    const r = await get(url);
    lastOutput = `GET ${url} -> ${r.status} ${r.body}`;
    return r.status === 200 && re.test(r.body) ? r.body : undefined;
  });
}

/** `stack services` as `name replicas` lines, sorted. */
async function stackServices(lab: Lab, stack: string): Promise<string[]> {
  const out = await ok(lab.name, 'h2', ['stack', 'services', '--format', '{{.Name}} {{.Replicas}}', stack]);
  return out.split('\n').filter(Boolean).sort();
}

/** Until every service of the stack runs all its replicas (`N/N`), with exactly `names` in it. */
async function allRunning(lab: Lab, stack: string, names: string[]): Promise<string[]> {
  const want = names.map((n) => `${stack}_${n}`).sort();
  return until(`${stack}: ${want.join(', ')} all running`, async () => {
    const lines = await stackServices(lab, stack);
    const got = lines.map((l) => l.split(' ')[0]);
    const full = lines.every((l) => /^\S+ (\d+)\/\1\b/.test(l) && !/ 0\/0\b/.test(l));
    return JSON.stringify(got) === JSON.stringify(want) && full ? lines : undefined;
  });
}

function deploy(lab: Lab, stack: string, files: string[], extra: string[] = []): Promise<string> {
  return ok(lab.name, 'h1', ['stack', 'deploy', ...files.flatMap((f) => ['-c', f]), ...extra, stack], {
    REGISTRY: lab.registry,
  });
}

/** Version.Index of each service of the stack. */
async function versions(lab: Lab, stack: string, names: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of names) {
    const v = await ok(lab.name, 'h1', ['service', 'inspect', '--format', '{{.Version.Index}}', `${stack}_${n}`]);
    out[n] = Number(v.trim());
    assert.ok(Number.isInteger(out[n]) && (out[n] ?? 0) > 0, `${stack}_${n} version: ${v}`);
  }
  return out;
}

/** IDs of the stack's networks, full length. */
async function stackNetworkIds(lab: Lab, stack: string): Promise<string[]> {
  const out = await ok(lab.name, 'h1', [
    'network',
    'ls',
    '--no-trunc',
    '--filter',
    `label=com.docker.stack.namespace=${stack}`,
    '--format',
    '{{.ID}}',
  ]);
  return out.split('\n').filter(Boolean);
}

/** Containers of the stack (names starting `<stack>_`) in the engine of `host`, any state. */
async function containersOn(lab: Lab, host: string, prefix: string): Promise<string[]> {
  const out = await ok(lab.name, host, ['container', 'ls', '-a', '--format', '{{.Names}}']);
  return out.split('\n').filter((n) => n.startsWith(prefix));
}

/** Overlay namespaces (`shoal-ov-<host tag>-<network id, 12>`) of these networks on any host. */
function overlayNamespaces(networkIds: string[]): string[] {
  const ids = new Set(networkIds.map((id) => id.slice(0, 12)));
  return (existsSync('/run/netns') ? readdirSync('/run/netns') : []).filter((n) => {
    const m = /^shoal-ov-[a-z0-9]+-([0-9a-z]{12})$/.exec(n);
    return m?.[1] !== undefined && ids.has(m[1]);
  });
}

/** A copy of the example's directory with `service` cut out of its stack file: the copy's path. */
async function withoutService(dir: string, service: string): Promise<{ file: string; tmp: string }> {
  const tmp = await mkdtemp(join(tmpdir(), 'shoal-exlab-prune-'));
  await cp(dir, tmp, { recursive: true });
  const file = join(tmp, 'docker-stack.yml');
  const lines = (await readFile(file, 'utf8')).split('\n');
  const start = lines.indexOf(`  ${service}:`);
  assert.ok(start > 0, `${service} in ${file}`);
  let end = start + 1;
  while (end < lines.length && !/^( {2})?\S/.test(lines[end] ?? '')) end++;
  lines.splice(start, end - start);
  await writeFile(file, lines.join('\n'));
  return { file, tmp };
}

/**
 * The checks every example goes through after its own: one change re-deployed updates only that
 * service, --prune removes a dropped service, and `stack rm` leaves nothing anywhere.
 */
async function updatePruneRemove(
  lab: Lab,
  stack: string,
  example: string,
  names: string[],
  changed: string,
  pruned: string,
): Promise<void> {
  const file = join(examples, example, 'docker-stack.yml');
  // ---- one change: a deploy label on `changed`, through a second -c file ----
  const before = await versions(lab, stack, names);
  const tmp = await mkdtemp(join(tmpdir(), 'shoal-exlab-override-'));
  try {
    const override = join(tmp, 'override.yml');
    await writeFile(
      override,
      `version: '3.8'\nservices:\n  ${changed}:\n    deploy:\n      labels:\n        shoal.test.rev: '2'\n`,
    );
    await deploy(lab, stack, [file, override]);
    const afterUpdate = await versions(lab, stack, names);
    for (const n of names)
      if (n === changed)
        assert.ok((afterUpdate[n] ?? 0) > (before[n] ?? 0), `${n} updated: ${JSON.stringify(afterUpdate)}`);
      else assert.equal(afterUpdate[n], before[n], `${n} unchanged by a change to ${changed}`);
    const labels = await ok(lab.name, 'h1', [
      'service',
      'inspect',
      '--format',
      '{{json .Spec.Labels}}',
      `${stack}_${changed}`,
    ]);
    assert.match(labels, /"shoal\.test\.rev":"2"/);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  await allRunning(lab, stack, names);

  // ---- --prune with a copy of the file that lacks `pruned` ----
  const copy = await withoutService(join(examples, example), pruned);
  try {
    await deploy(lab, stack, [copy.file], ['--prune']);
  } finally {
    await rm(copy.tmp, { recursive: true, force: true });
  }
  const kept = names.filter((n) => n !== pruned);
  await allRunning(lab, stack, kept);
  for (const h of HOSTS)
    await until(`${stack}_${pruned} containers gone from ${h}`, async () =>
      (await containersOn(lab, h, `${stack}_${pruned}.`)).length === 0 ? true : undefined,
    );

  // ---- stack rm leaves nothing ----
  const networks = await stackNetworkIds(lab, stack);
  assert.ok(networks.length > 0, `${stack} has networks`);
  await ok(lab.name, 'h1', ['stack', 'rm', stack]);
  const named = (out: string): string[] => out.split('\n').filter((l) => l.startsWith(`${stack}_`));
  await until(`${stack}: nothing left in the cluster`, async () => {
    const left = [
      ...named(await ok(lab.name, 'h2', ['service', 'ls', '--format', '{{.Name}}'])),
      ...named(await ok(lab.name, 'h2', ['network', 'ls', '--format', '{{.Name}}'])),
      ...named(await ok(lab.name, 'h2', ['secret', 'ls', '--format', '{{.Name}}'])),
      ...named(await ok(lab.name, 'h2', ['config', 'ls', '--format', '{{.Name}}'])),
    ];
    lastOutput = left.join(' ');
    return left.length === 0 ? true : undefined;
  });
  for (const h of HOSTS)
    await until(`${stack}: no container left on ${h}`, async () =>
      (await containersOn(lab, h, `${stack}_`)).length === 0 ? true : undefined,
    );
  await until(`${stack}: no overlay namespace left`, () => {
    const left = overlayNamespaces(networks);
    lastOutput = left.join(' ');
    return Promise.resolve(left.length === 0 ? true : undefined);
  });
  const r = await onHost(lab.name, 'h1', ['stack', 'services', stack]);
  assert.equal(r.stdout.trim(), '', 'stack services after rm');
}

test('examples/webapp-db on a lab of 5: web asks db by name on every node; update, prune, rm', async () => {
  const lab = await shared();
  const stack = uniq('wdb').replace('-', '');
  await deploy(lab, stack, [join(examples, 'webapp-db', 'docker-stack.yml')]);
  const lines = await allRunning(lab, stack, ['web', 'db']);
  assert.deepEqual(lines, [`${stack}_db 1/1`, `${stack}_web 2/2`]);
  // The secret, scoped to the stack, and its digest as db reports it.
  assert.match(
    await ok(lab.name, 'h1', ['secret', 'ls', '--format', '{{.Name}}']),
    new RegExp(`^${stack}_db_password$`, 'm'),
  );
  const pw = await readFile(join(examples, 'webapp-db', 'db_password.txt'));
  const sum = createHash('sha256').update(pw).digest('hex').slice(0, 12);
  for (const h of HOSTS) {
    const body = await answers(`http://${lab.addr[h]}:8080/cgi-bin/db`, /db ok/);
    assert.equal(body.trim(), `db ok: password sha256 ${sum}`, `through ${h}`);
  }
  await updatePruneRemove(lab, stack, 'webapp-db', ['web', 'db'], 'web', 'db');
});

test('examples/voting on a lab of 5: a vote travels vote -> redis -> worker -> db -> result by name; update, prune, rm', async () => {
  const lab = await shared();
  const stack = uniq('vote').replace('-', '');
  const names = ['vote', 'redis', 'worker', 'db', 'result'];
  await deploy(lab, stack, [join(examples, 'voting', 'docker-stack.yml')]);
  await allRunning(lab, stack, names);
  // both networks, scoped to the stack
  const nets = (await ok(lab.name, 'h1', ['network', 'ls', '--format', '{{.Name}}'])).split('\n');
  assert.deepEqual(nets.filter((n) => n.startsWith(`${stack}_`)).sort(), [`${stack}_backend`, `${stack}_frontend`]);
  await answers(`http://${lab.addr['h4']}:5001/cgi-bin/result`, /^votes: 0$/m);
  assert.equal((await answers(`http://${lab.addr['h3']}:5000/cgi-bin/vote`, /voted/)).trim(), 'voted');
  await answers(`http://${lab.addr['h5']}:5001/cgi-bin/result`, /^votes: 1$/m);
  await updatePruneRemove(lab, stack, 'voting', names, 'result', 'worker');
});

test('examples/monitoring on a lab of 5: the global agent on every node, the collector finds them all; update, prune, rm', async () => {
  const lab = await shared();
  const stack = uniq('mon').replace('-', '');
  await deploy(lab, stack, [join(examples, 'monitoring', 'docker-stack.yml')]);
  const lines = await allRunning(lab, stack, ['agent', 'collector']);
  assert.deepEqual(lines, [`${stack}_agent 5/5`, `${stack}_collector 1/1`]);
  const metrics = await answers(`http://${lab.addr['h5']}:9090/metrics`, /^(node_up\{[^\n]*\} 1\n){5}$/);
  const hosts = [...metrics.matchAll(/^node_up\{host="agent-(h\d)"\} 1$/gm)].map((m) => m[1]).sort();
  assert.deepEqual(hosts, HOSTS, metrics);
  await updatePruneRemove(lab, stack, 'monitoring', ['agent', 'collector'], 'agent', 'collector');
});
