/**
 * `shoal service logs` on a lab of 3 (h1 and h2 managers, h3 a worker) with real shoald processes and real
 * containers from the lab registry: a service of 3 replicas (one per node) prints known lines;
 * `service logs` shows every task's lines with docker's prefixes (stdout and stderr apart),
 * `--tail`, `-t`, `--no-task-ids`, `--follow` picks up new lines, a task ID selects one task, the
 * same from the follower's socket (forwarded to the leader), and
 * with one worker's shoald killed (kill -9) the logs of the other nodes still come, with a
 * warning naming the dead node, and the command ends. Every CLI run has a kill timeout, so a
 * hang fails the test instead of stalling it. Labs go in t.after. Root only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, waitFor, type RunResult } from '@shoal/common';
import { LabNotFoundError, labDown, pushTestImages, readLabState, TestImages } from '@shoal/testkit';

const repo = new URL('../..', import.meta.url).pathname;
const cliMain = join(repo, 'packages/cli/dist/main.js');
const root = await mkdtemp(join(tmpdir(), 'shoal-logslab-'));
process.env['SHOAL_LAB_ROOT'] = root;
after(() => rm(root, { recursive: true, force: true }));

/** A CLI run longer than this is killed (and then fails its assertions): nothing may hang. */
const HANG_MS = 60_000;

function shoal(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, [cliMain, ...args], {
    check: false,
    timeout: HANG_MS,
    env: { ...process.env, SHOAL_LAB_ROOT: root, ...env },
  });
}

test('service logs on a lab of 3: prefixes, tail, timestamps, follow, and a dead node skipped with a warning', async (t) => {
  const lab = `lg-${randomBytes(3).toString('hex')}`;
  t.after(async () => {
    await labDown(lab).catch((err: unknown) => {
      if (!(err instanceof LabNotFoundError)) throw err;
    });
  });
  const up = await shoal(['lab', 'up', '--name', lab, '--hosts', '3', '--managers', '2']);
  assert.equal(up.code, 0, up.stderr);
  const state = await readLabState(lab);
  assert.ok(state?.registry, 'the lab has a registry');
  const image = (await pushTestImages(state.registry.url)).find((p) => p.ref === TestImages.busybox)?.remoteRef;
  assert.ok(image, 'busybox pushed');
  const h1 = state.hosts.find((h) => h.name === 'h1');
  assert.ok(h1);
  // The CLI talks to h1's shoald (the manager) over its unix socket.
  const onH1 = { SHOAL_HOST: `unix://${join(h1.runDir, 'shoal.sock')}` };
  const cli = async (args: string[]): Promise<RunResult> => shoal(args, onH1);
  let last = '';
  const until = async <T>(what: string, fn: () => Promise<T | undefined>): Promise<T> => {
    try {
      return await waitFor(fn, { timeoutMs: 90_000, intervalMs: 500 });
    } catch (err) {
      throw new Error(`${what}: ${String(err)}; last seen: ${last}`, { cause: err });
    }
  };

  // Three lines on stdout, one on stderr, then a tick a second.
  const script =
    'for i in 1 2 3; do echo "hello-$SLOT-$i"; done; echo "oops-$SLOT" >&2; ' +
    'i=0; while true; do i=$((i+1)); echo "tick-$SLOT-$i"; sleep 1; done';
  const created = await cli([
    'service',
    'create',
    '-d',
    '--name',
    'web',
    '--replicas',
    '3',
    '--env',
    'SLOT={{.Task.Slot}}',
    image,
    'sh',
    '-c',
    script,
  ]);
  assert.equal(created.code, 0, created.stderr);
  // One task per node (spread), each running.
  const tasks = await until('3 running tasks', async () => {
    const r = await cli([
      'service',
      'ps',
      '--no-trunc',
      '--filter',
      'desired-state=running',
      '--format',
      '{{.ID}} {{.Name}} {{.Node}} {{.CurrentState}}',
      'web',
    ]);
    last = r.stdout + r.stderr;
    const rows = r.stdout
      .split('\n')
      .filter((l) => / Running/.test(l))
      .map((l) => {
        const [id = '', name = '', node = ''] = l.split(' ');
        return { id, slot: name.split('.')[1] ?? '', node };
      });
    return rows.length === 3 ? rows : undefined;
  });
  assert.deepEqual(tasks.map((x) => x.node).sort(), ['h1', 'h2', 'h3']);
  const prefix = (x: { id: string; slot: string; node: string }): string =>
    `web.${x.slot}.${x.id.slice(0, 12)}@${x.node}    | `;

  // Every task's lines with docker's prefix, stdout and stderr apart; the command ends by itself.
  const all = await until('every task logged its lines', async () => {
    const r = await cli(['service', 'logs', 'web']);
    last = r.stdout + r.stderr;
    return r.code === 0 && tasks.every((x) => r.stderr.includes(`${prefix(x)}oops-${x.slot}\n`)) ? r : undefined;
  });
  for (const x of tasks) {
    for (const i of [1, 2, 3]) assert.ok(all.stdout.includes(`${prefix(x)}hello-${x.slot}-${i}\n`), all.stdout);
    assert.ok(!all.stdout.includes(`oops-${x.slot}`), 'stderr lines are not on stdout');
  }
  assert.ok(!/warning/.test(all.stderr), all.stderr);

  // --tail 2: the last two entries of each task, nothing more.
  const tail = await cli(['service', 'logs', '--tail', '2', 'web']);
  assert.equal(tail.code, 0, tail.stderr);
  for (const x of tasks) {
    const lines = (tail.stdout + tail.stderr).split('\n').filter((l) => l.startsWith(prefix(x)));
    assert.equal(lines.length, 2, `${x.slot}: ${tail.stdout}${tail.stderr}`);
    assert.ok(
      lines.every((l) => /\| tick-\d+-\d+$/.test(l)),
      lines.join('\n'),
    );
  }
  // --tail 0: nothing.
  const none = await cli(['service', 'logs', '--tail', '0', 'web']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, '');

  // -t: the line's time first; --no-task-ids: `web.<slot>@<node>`.
  const ts = await cli(['service', 'logs', '-t', '--no-task-ids', 'web']);
  assert.equal(ts.code, 0, ts.stderr);
  for (const x of tasks) {
    assert.match(
      ts.stdout,
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z web\\.${x.slot}@${x.node}    \\| hello-${x.slot}-1$`,
        'm',
      ),
    );
  }

  // A task ID: that task's lines only.
  const one = await cli(['service', 'logs', tasks[0]!.id]);
  assert.equal(one.code, 0, one.stderr);
  assert.ok(one.stdout.includes(`${prefix(tasks[0]!)}hello-${tasks[0]!.slot}-1\n`), one.stdout);
  for (const x of tasks.slice(1)) assert.ok(!one.stdout.includes(`@${x.node}    |`), one.stdout);

  // On the other manager (h2): its LogBroker forwards the subscription to the leader.
  const h2 = state.hosts.find((h) => h.name === 'h2');
  assert.ok(h2);
  const viaH2 = await shoal(['service', 'logs', 'web'], { SHOAL_HOST: `unix://${join(h2.runDir, 'shoal.sock')}` });
  assert.equal(viaH2.code, 0, viaH2.stderr);
  for (const x of tasks) assert.ok(viaH2.stdout.includes(`${prefix(x)}hello-${x.slot}-1\n`), viaH2.stdout);

  // Bad input: one line, exit code of its kind.
  const badTail = await cli(['service', 'logs', '--tail', 'lots', 'web']);
  assert.notEqual(badTail.code, 0);
  assert.match(badTail.stderr, /--tail/);
  const nosuch = await cli(['service', 'logs', 'nosuchservice']);
  assert.notEqual(nosuch.code, 0);
  assert.match(nosuch.stderr, /no such task or service: nosuchservice/);

  // --follow --tail 0: only new lines, from every node, until stopped.
  const follow = spawn(process.execPath, [cliMain, 'service', 'logs', '-f', '--tail', '0', 'web'], {
    env: { ...process.env, ...onH1 },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (follow.exitCode === null) follow.kill('SIGKILL');
  });
  let followed = '';
  follow.stdout.on('data', (b: Buffer) => (followed += b.toString()));
  follow.stderr.on('data', (b: Buffer) => (followed += b.toString()));
  await until('follow shows new ticks of every task', () => {
    last = followed;
    return Promise.resolve(tasks.every((x) => followed.includes(`${prefix(x)}tick-${x.slot}-`)) ? true : undefined);
  });
  assert.ok(!followed.includes('hello-'), 'old lines are not shown with --tail 0');
  assert.equal(follow.exitCode, null, 'follow keeps running');
  const exited = new Promise((resolve) => follow.once('exit', resolve));
  follow.kill('SIGTERM');
  await exited;

  // kill -9 of h3's shoald: the others' logs still come, a warning names h3, and it ends.
  assert.equal((await shoal(['lab', 'stop', lab, 'h3', '--signal', 'KILL'])).code, 0);
  const down = await cli(['service', 'logs', 'web']);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, /^warning: node h3 \(\w+\): .*its logs are skipped$/m);
  for (const x of tasks.filter((y) => y.node !== 'h3'))
    assert.ok(down.stdout.includes(`${prefix(x)}hello-${x.slot}-1\n`), down.stdout);
  // Followed logs too: the warning, then the live nodes' new lines.
  const follow2 = spawn(process.execPath, [cliMain, 'service', 'logs', '-f', '--tail', '0', 'web'], {
    env: { ...process.env, ...onH1 },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (follow2.exitCode === null) follow2.kill('SIGKILL');
  });
  let followed2 = '';
  follow2.stdout.on('data', (b: Buffer) => (followed2 += b.toString()));
  follow2.stderr.on('data', (b: Buffer) => (followed2 += b.toString()));
  await until('follow with a dead node', () => {
    last = followed2;
    return Promise.resolve(
      /warning: node h3 /.test(followed2) &&
        tasks.filter((y) => y.node !== 'h3').every((x) => followed2.includes(`${prefix(x)}tick-${x.slot}-`))
        ? true
        : undefined,
    );
  });
  const exited2 = new Promise((resolve) => follow2.once('exit', resolve));
  follow2.kill('SIGTERM');
  await exited2;
});
