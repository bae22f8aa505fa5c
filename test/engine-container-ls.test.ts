// `shoal container ls|ps` and `container inspect` as docker's `ps` and `inspect`, on real
// containers: busybox pulled from a real registry, run by runc under the engine's monitor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cliEnv, shoal, type CliResult } from './engine-cli-support.js';

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout;
}

test('container ls: docker ps columns, --format, -q, -a, -n, --filter; inspect -f', { timeout: 300_000 }, async (t) => {
  const env = await cliEnv(t);
  const root = await env.root();
  const tag = randomBytes(3).toString('hex');
  const up = `up-${tag}`;
  const done = `done-${tag}`;
  const ctr = (...args: string[]): Promise<CliResult> =>
    shoal(['container', args[0] ?? '', ...root.flags, ...args.slice(1)]);

  const upId = ok(await ctr('run', '-d', '--name', up, '-l', 'tier=web', env.image, 'sleep', '1000'), 'run up').trim();
  const doneRun = await ctr('run', '--name', done, '-l', 'tier=batch', env.image, 'sh', '-c', 'exit 3');
  assert.equal(doneRun.code, 3, doneRun.stderr);

  // the default table: docker's header and a running row
  const table = ok(await ctr('ls'), 'ls').split('\n');
  assert.match(table[0] ?? '', /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
  assert.equal(table.filter(Boolean).length, 2, 'only the running one without -a');
  assert.match(
    table[1] ?? '',
    // the test image's Entrypoint is /bin/shoal-entry: the command is cut to 20 characters
    new RegExp(`^${upId.slice(0, 12)}\\s+\\S+\\s+"/bin/shoal-entry sl…"\\s+\\S.* ago\\s+Up \\S.*\\s+${up}$`),
  );

  const format = ok(await ctr('ls', '--format', '{{.Names}} {{.Status}}'), 'ls --format');
  assert.match(format, new RegExp(`^${up} Up [^\\n]+\\n$`));
  const all = ok(await ctr('ls', '-a', '--format', '{{.Names}} {{.Status}}'), 'ls -a --format').split('\n');
  assert.match(all[0] ?? '', new RegExp(`^${done} Exited \\(3\\) .+ ago$`), 'newest first');
  assert.match(all[1] ?? '', new RegExp(`^${up} Up `));

  assert.equal(ok(await ctr('ls', '-q'), 'ls -q'), `${upId.slice(0, 12)}\n`);
  assert.equal(ok(await ctr('ls', '-q', '--no-trunc'), 'ls -q --no-trunc'), `${upId}\n`);
  assert.equal(ok(await ctr('ps', '-n', '1', '--format', '{{.Names}}'), 'ps -n 1'), `${done}\n`);
  assert.equal(ok(await ctr('ps', '-l', '--format', '{{.State}}'), 'ps -l'), 'exited\n');

  const names = async (...filters: string[]): Promise<string> =>
    ok(await ctr('ls', '-a', '--format', '{{.Names}}', ...filters.flatMap((f) => ['--filter', f])), filters.join(' '));
  assert.equal(await names(`name=${up}`), `${up}\n`);
  assert.equal(ok(await ctr('ls', '--filter', 'status=exited', '--format', '{{.Names}}'), 'status'), `${done}\n`);
  assert.equal(await names('exited=3'), `${done}\n`);
  assert.equal(await names('label=tier=web'), `${up}\n`);
  assert.equal(await names(`ancestor=${env.image}`, `since=${up}`), `${done}\n`);
  assert.equal(
    ok(await ctr('ls', '-a', '--format', '{{.Label "tier"}}', '--filter', `id=${upId.slice(0, 8)}`), 'label'),
    'web\n',
  );
  const json = JSON.parse(ok(await ctr('ls', '--format', 'json'), 'json')) as Record<string, string>;
  assert.equal(json['Names'], up);
  assert.equal(json['State'], 'running');
  assert.equal(json['Command'], '"/bin/shoal-entry sl…"');
  const full = JSON.parse(ok(await ctr('ls', '--no-trunc', '--format', 'json'), 'json')) as Record<string, string>;
  assert.equal(full['Command'], '"/bin/shoal-entry sleep 1000"');
  assert.equal(full['ID'], upId);

  // bad input: docker's words, exit 1 or 2, nothing listed
  const bad = await ctr('ls', '--filter', 'colour=red');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid filter 'colour'/);
  assert.equal(bad.stdout, '');
  const badStatus = await ctr('ls', '--filter', 'status=asleep');
  assert.match(badStatus.stderr, /invalid filter 'status=asleep'/);
  const size = await ctr('ls', '-s');
  assert.notEqual(size.code, 0);
  assert.match(size.stderr, /--size is not supported/);

  // inspect: docker's shape and -f
  assert.equal(ok(await ctr('inspect', '-f', '{{.State.ExitCode}}', done), 'inspect -f'), '3\n');
  assert.equal(ok(await ctr('inspect', '--format', '{{.Name}} {{.State.Running}}', up), 'inspect'), `/${up} true\n`);
  const [rec] = JSON.parse(ok(await ctr('inspect', up), 'inspect')) as {
    Id: string;
    State: { Status: string; Pid: number };
    Path: string;
    Args: string[];
    Config: { Entrypoint: string[]; Cmd: string[]; Labels: Record<string, string> };
  }[];
  assert.equal(rec?.Id, upId);
  assert.equal(rec?.State.Status, 'running');
  assert.ok((rec?.State.Pid ?? 0) > 0);
  assert.deepEqual([rec?.Path, rec?.Args], ['/bin/shoal-entry', ['sleep', '1000']]);
  assert.deepEqual(rec?.Config.Entrypoint, ['/bin/shoal-entry']);
  assert.deepEqual(rec?.Config.Cmd, ['sleep', '1000']);
  assert.equal(rec?.Config.Labels['tier'], 'web');
  const missing = await ctr('inspect', '-f', '{{.Name}}', up, `nope-${tag}`);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, `/${up}\n`);
  assert.match(missing.stderr, new RegExp(`No such container: nope-${tag}`));
});
