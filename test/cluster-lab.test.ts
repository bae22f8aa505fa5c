/**
 * Lab clusters on the real shoald, through the real `shoal` CLI: `lab up --managers`, `lab exec
 * hN -- shoal node ...` on each host's socket, `lab stop/start`, `lab down`. Its own lab root
 * and lab names; labs go in t.after, also when a test fails. Must run as root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { errnoCode, run, waitFor, type RunResult } from '@shoal/common';
import { LabNotFoundError, labDown, readLabState } from '@shoal/testkit';

/** Processes whose command line names `dir` (found from /proc, independently of the lab code). */
function pidsNaming(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(`${dir}/`)) out.push(Number(p));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ESRCH') throw err;
    }
  }
  return out;
}

const repo = new URL('../..', import.meta.url).pathname;
const cliMain = join(repo, 'packages/cli/dist/main.js');
const root = await mkdtemp(join(tmpdir(), 'shoal-clusterlab-'));
process.env['SHOAL_LAB_ROOT'] = root;
after(() => rm(root, { recursive: true, force: true }));

function uniq(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

function shoal(args: string[]): Promise<RunResult> {
  return run(process.execPath, [cliMain, ...args], { check: false, env: { ...process.env, SHOAL_LAB_ROOT: root } });
}

/** `shoal ARGS` run inside a lab host (its SHOAL_HOST is that host's shoald). */
function onHost(lab: string, host: string, args: string[]): Promise<RunResult> {
  return shoal(['lab', 'exec', lab, host, '--', process.execPath, cliMain, ...args]);
}

async function up(t: { after: (fn: () => Promise<void>) => void }, lab: string, hosts: number, managers: number) {
  t.after(async () => {
    await labDown(lab).catch((err: unknown) => {
      if (!(err instanceof LabNotFoundError)) throw err;
    });
  });
  const r = await shoal(['lab', 'up', '--name', lab, '--hosts', String(hosts), '--managers', String(managers)]);
  assert.equal(r.code, 0, r.stderr);
}

/** `node ls` as rows of HOSTNAME STATUS AVAILABILITY MANAGER-STATUS ROLE, sorted by hostname. */
async function nodes(lab: string, host = 'h1'): Promise<string[]> {
  const r = await onHost(lab, host, [
    'node',
    'ls',
    '--format',
    '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}',
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.replace(/\n$/, '').split('\n');
}

/** Whether a lab host's namespace has the ingress sandbox (`shoal_ing` with an address of the lab's pool). */
async function hasIngressSandbox(netns: string): Promise<boolean> {
  const r = await run('nsenter', [`--net=/run/netns/${netns}`, '--', 'ip', '-o', '-4', 'addr', 'show', 'shoal_ing'], {
    check: false,
  });
  return r.code === 0 && / inet 198\.19\.(1[2-8][0-9]|19[01])\./.test(r.stdout);
}

/** The overlay and sandbox namespaces of a node (named with its tag: the node ID's first 10 characters). */
function namespacesOfNode(nodeId: string): string[] {
  const tag = nodeId
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 10);
  return readdirSync('/run/netns').filter((n) => n.startsWith(`shoal-ov-${tag}-`) || n.startsWith(`shoal-t-${tag}-`));
}

test('lab of 5 with one manager: node ls, update, promote/demote, rm, bad input changes nothing, stop/start, down', async (t) => {
  const lab = uniq('cl');
  await up(t, lab, 5, 1);
  assert.deepEqual(await nodes(lab), [
    'h1 Ready Active Leader',
    'h2 Ready Active ',
    'h3 Ready Active ',
    'h4 Ready Active ',
    'h5 Ready Active ',
  ]);
  const ls = await onHost(lab, 'h1', ['node', 'ls']);
  assert.match(
    ls.stdout,
    /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION\n\S+ \*\s+h1\s+Ready/,
  );
  // A worker's daemon refuses, as docker's.
  const w = await onHost(lab, 'h4', ['node', 'ls']);
  assert.match(w.stderr, /^Error response from daemon: This node is not a swarm manager\./);
  assert.notEqual(w.code, 0);
  // The overlay pool is the lab's, never 10/8.
  const state = await readLabState(lab);
  assert.equal(state?.cluster?.overlayPool, '198.19.128.0/18');
  // Every node has its ingress sandbox from init/join on, with no service at all.
  const hosts = state?.hosts ?? [];
  assert.equal(hosts.length, 5);
  const ids = new Map<string, string>();
  for (const h of hosts) {
    ids.set(h.name, (await onHost(lab, 'h1', ['node', 'inspect', '-f', '{{.ID}}', h.name])).stdout.trim());
    await waitFor(async () => (await hasIngressSandbox(h.netns)) || undefined, { timeoutMs: 120_000 });
    assert.equal(namespacesOfNode(ids.get(h.name) ?? '').length, 1, `the ingress overlay namespace of ${h.name}`);
  }

  assert.equal(
    (await onHost(lab, 'h1', ['node', 'update', '--availability', 'drain', '--label-add', 'zone=b', 'h3'])).code,
    0,
  );
  assert.equal(
    (await onHost(lab, 'h1', ['node', 'ls', '-f', 'node.label=zone=b', '--format', '{{.Hostname}} {{.Availability}}']))
      .stdout,
    'h3 Drain\n',
  );
  const role = async (h: string): Promise<string> =>
    (await onHost(lab, 'h1', ['node', 'inspect', '-f', '{{.Spec.Role}}', h])).stdout.trim();
  assert.match((await onHost(lab, 'h1', ['node', 'promote', 'h2'])).stdout, /^Node h2 promoted to a manager/);
  assert.equal(await role('h2'), 'manager');
  assert.match((await onHost(lab, 'h1', ['node', 'demote', 'h2'])).stdout, /^Manager h2 demoted/);
  assert.equal(await role('h2'), 'worker');

  // Bad input: one line each, and the cluster is as it was.
  const before = (
    await onHost(lab, 'h1', ['node', 'ls', '--format', '{{.ID}} {{.Hostname}} {{.Availability}} {{.ManagerStatus}}'])
  ).stdout;
  const bad: [string, string[], RegExp][] = [
    ['h1', ['node', 'promote', 'nosuchnode'], /^Error response from daemon: .*nosuchnode/],
    ['h1', ['node', 'rm', 'h5'], /^Error response from daemon: .*(use --force|--force)/],
    ['h1', ['node', 'update', '--availability', 'sleepy', 'h4'], /^shoal: invalid --availability "sleepy"/],
    ['h1', ['swarm', 'init'], /^Error response from daemon: .*already part of a swarm/],
    ['h5', ['swarm', 'join', '--token', 'SWMTKN-1-aa-bb', '198.18.0.1:99999'], /^shoal: invalid remote address/],
    ['h1', ['swarm', 'leave'], /^Error response from daemon: /],
    ['h1', ['node', 'ls', '--frobnicate'], /^shoal: unknown flag: --frobnicate\nSee 'shoal node ls --help'\.\n$/],
  ];
  for (const [host, args, re] of bad) {
    const r = await onHost(lab, host, args);
    assert.match(r.stderr, re, args.join(' '));
    assert.notEqual(r.code, 0, args.join(' '));
  }
  assert.equal(
    (await onHost(lab, 'h1', ['node', 'ls', '--format', '{{.ID}} {{.Hostname}} {{.Availability}} {{.ManagerStatus}}']))
      .stdout,
    before,
  );

  // A crashed worker can be removed with --force; stop/start of a host's shoald.
  assert.equal((await shoal(['lab', 'stop', lab, 'h5', '--signal', 'KILL'])).code, 0);
  assert.equal((await onHost(lab, 'h1', ['node', 'rm', '--force', 'h5'])).stdout, 'h5\n');
  assert.deepEqual(
    (await nodes(lab)).map((l) => l.split(' ')[0]),
    ['h1', 'h2', 'h3', 'h4'],
  );
  assert.equal((await shoal(['lab', 'stop', lab, 'h4'])).code, 0);
  assert.match((await onHost(lab, 'h4', ['node', 'ls'])).stderr, /^Cannot connect to the Shoal daemon at unix:\/\//);
  // a stopped shoald (no task running there) takes its ingress sandbox with it, and brings it back
  const h4 = hosts.find((h) => h.name === 'h4');
  assert.ok(h4);
  assert.equal(await hasIngressSandbox(h4.netns), false, 'ingress sandbox left on a stopped node');
  assert.deepEqual(namespacesOfNode(ids.get('h4') ?? ''), []);
  assert.equal((await shoal(['lab', 'start', lab, 'h4'])).code, 0);
  await waitFor(async () => (await nodes(lab)).includes('h4 Ready Active ') || undefined, { timeoutMs: 60_000 });
  await waitFor(async () => (await hasIngressSandbox(h4.netns)) || undefined, { timeoutMs: 120_000 });

  // down: no shoald left, no files, no namespace of any node.
  await labDown(lab);
  assert.deepEqual(pidsNaming(join(root, lab)), []);
  assert.equal(existsSync(join(root, lab)), false);
  for (const [name, id] of ids) assert.deepEqual(namespacesOfNode(id), [], `namespaces of ${name} after lab down`);
});

/** Waits until `node ls` on `host` shows exactly `want` (reachability settles after joins). */
async function expectNodes(lab: string, want: string[], host = 'h1'): Promise<void> {
  let last: string[] = [];
  try {
    await waitFor(
      async () => {
        last = await nodes(lab, host);
        return JSON.stringify(last) === JSON.stringify(want) || undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  } catch (err) {
    assert.deepEqual(last, want, String(err));
  }
}

test('lab of 5 with 3 managers: 5 Ready nodes, 1 Leader and 2 Reachable managers; any manager answers; demote', async (t) => {
  const lab = uniq('cm');
  await up(t, lab, 5, 3);
  const five = [
    'h1 Ready Active Leader',
    'h2 Ready Active Reachable',
    'h3 Ready Active Reachable',
    'h4 Ready Active ',
    'h5 Ready Active ',
  ];
  await expectNodes(lab, five);
  // A follower answers too (its Control calls go to the leader), with itself marked.
  const h3 = await onHost(lab, 'h3', ['node', 'ls', '--format', '{{.Hostname}}{{if .Self}} *{{end}}']);
  assert.equal(h3.stdout, 'h1\nh2\nh3 *\nh4\nh5\n', h3.stderr);
  const tokens = await onHost(lab, 'h2', ['swarm', 'join-token', '-q', 'worker']);
  assert.match(tokens.stdout, /^SWMTKN-1-\w+-\w+\n$/);

  assert.match((await onHost(lab, 'h1', ['node', 'demote', 'h3'])).stdout, /^Manager h3 demoted in the swarm\.\n$/);
  await expectNodes(lab, [five[0], five[1], 'h3 Ready Active ', five[3], five[4]] as string[]);
});

test('lab of 5 with 3 managers: a promoted worker becomes a Reachable manager', async (t) => {
  const lab = uniq('cp');
  await up(t, lab, 5, 3);
  assert.match((await onHost(lab, 'h1', ['node', 'promote', 'h4'])).stdout, /^Node h4 promoted/);
  await expectNodes(lab, [
    'h1 Ready Active Leader',
    'h2 Ready Active Reachable',
    'h3 Ready Active Reachable',
    'h4 Ready Active Reachable',
    'h5 Ready Active ',
  ]);
});

test('lab of 5 with 3 managers: kill -9 of the leader, a new leader takes writes, the killed one catches up', async (t) => {
  const lab = uniq('ck');
  await up(t, lab, 5, 3);
  await expectNodes(lab, [
    'h1 Ready Active Leader',
    'h2 Ready Active Reachable',
    'h3 Ready Active Reachable',
    'h4 Ready Active ',
    'h5 Ready Active ',
  ]);
  const stop = await shoal(['lab', 'stop', lab, 'h1', '--signal', 'KILL']);
  assert.equal(stop.code, 0, stop.stderr);
  // a new leader among h2/h3, and a write through each survivor
  await waitFor(
    async () => {
      const r = await onHost(lab, 'h2', ['node', 'ls', '--format', '{{.Hostname}} {{.ManagerStatus}}']);
      return (r.code === 0 && /^h[23] Leader$/m.test(r.stdout)) || undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  for (const [host, label] of [
    ['h2', 'via-h2=yes'],
    ['h3', 'via-h3=yes'],
  ] as const) {
    await waitFor(
      async () => (await onHost(lab, host, ['node', 'update', '--label-add', label, 'h4'])).code === 0 || undefined,
      {
        timeoutMs: 30_000,
        intervalMs: 500,
      },
    );
  }
  const start = await shoal(['lab', 'start', lab, 'h1']);
  assert.equal(start.code, 0, start.stderr);
  let labels = '';
  await waitFor(
    async () => {
      const r = await onHost(lab, 'h1', ['node', 'inspect', '--format', '{{json .Spec.Labels}}', 'h4']);
      labels = r.stdout;
      return (r.code === 0 && labels.includes('"via-h2":"yes"') && labels.includes('"via-h3":"yes"')) || undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  ).catch(() => assert.fail(`h1 did not catch up: ${labels}`));
});
