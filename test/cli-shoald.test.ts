/**
 * The real `shoal` CLI (its own process, `packages/cli/dist/main.js`) against real shoald
 * processes on loopback, each with its own temp data root, socket and cluster port: swarm init
 * with and without --advertise-addr, join-token -q, node ls (the node is Leader) with --format,
 * a second init and a bad listen address refused with one clear line and their exit codes and
 * nothing changed, leave refused without --force on the last manager, leave --force.
 * (A failing `swarm init` through the CLI was once only found by hand: this is the check.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, sleep, type RunResult } from '@shoal/common';

const repo = new URL('../..', import.meta.url).pathname;
const cliMain = join(repo, 'packages/cli/dist/main.js');
const shoaldMain = join(repo, 'packages/daemon/dist/main.js');

const procs: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const p of procs) {
    if (p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    }
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A shoald on a temp data root with a unique socket, listening on 127.0.0.1:port; resolves once it serves. */
async function shoald(): Promise<{ socket: string; port: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-cli-e2e-'));
  dirs.push(dir);
  const port = await freePort();
  const socket = join(dir, 'shoal.sock');
  // an empty daemon.json: never the machine's /etc/shoal/daemon.json
  await writeFile(join(dir, 'daemon.json'), '{}\n');
  const p = spawn(
    process.execPath,
    [
      shoaldMain,
      '--data-root',
      join(dir, 'data'),
      '--run-root',
      join(dir, 'run'),
      '--socket',
      socket,
      '--config',
      join(dir, 'daemon.json'),
      '--listen-addr',
      `127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  procs.push(p);
  let log = '';
  p.stderr.on('data', (c: Buffer) => (log += c.toString()));
  for (let i = 0; !log.includes('"msg":"shoald ready"'); i++) {
    if (p.exitCode !== null) throw new Error(`shoald exited ${p.exitCode}: ${log}`);
    if (i > 600) throw new Error(`shoald not ready after 60 s: ${log}`);
    await sleep(100);
  }
  return { socket, port };
}

/** `shoal -H unix://SOCKET ARGS`, as a user runs it. */
function shoal(socket: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(process.execPath, [cliMain, '-H', `unix://${socket}`, ...args], {
    check: false,
    env: { ...process.env, ...env },
  });
}

function ok(r: RunResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout;
}

/** A refusal: one line on stderr matching `re`, nothing on stdout, exit code `code`. */
function refused(r: RunResult, code: number, re: RegExp): void {
  assert.equal(r.code, code, `exit ${r.code}, stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, re);
}

test('shoal swarm init without --advertise-addr, join-token -q, node ls as Leader, second init refused, leave', async () => {
  const { socket, port } = await shoald();

  // a listen address on every interface needs --advertise-addr: refused before anything binds
  const bad = await shoal(socket, ['swarm', 'init', '--listen-addr', `0.0.0.0:${await freePort()}`]);
  refused(bad, 2, /^Error response from daemon: .*--advertise-addr/);
  refused(await shoal(socket, ['node', 'ls']), 5, /not a swarm manager/);

  // the ingress network comes from the pool: one inside 198.18.0.0/15, never 10.0.0.0/8
  const init = ok(await shoal(socket, ['swarm', 'init', '--default-addr-pool', '198.19.128.0/18']), 'swarm init');
  const id = /^Swarm initialized: current node \(([a-z0-9]{25})\) is now a manager\.\n/.exec(init)?.[1];
  assert.ok(id, init);
  // the advertised address comes from the listen address
  const joinLine = /shoal swarm join --token (SWMTKN-1-[0-9a-z]+-[0-9a-z]+) (\S+)\n/.exec(init);
  assert.ok(joinLine, init);
  assert.equal(joinLine[2], `127.0.0.1:${port}`);

  const token = ok(await shoal(socket, ['swarm', 'join-token', '-q', 'worker']), 'join-token -q worker');
  assert.equal(token, `${joinLine[1]}\n`);
  const managerToken = ok(await shoal(socket, ['swarm', 'join-token', '-q', 'manager']), 'join-token -q manager');
  assert.match(managerToken, /^SWMTKN-1-[0-9a-z]+-[0-9a-z]+\n$/);
  assert.notEqual(managerToken, token);

  const ls = ok(await shoal(socket, ['node', 'ls']), 'node ls')
    .trimEnd()
    .split('\n');
  assert.equal(ls.length, 2, ls.join('\n'));
  assert.match(ls[0] ?? '', /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION$/);
  const row = (ls[1] ?? '').split(/\s+/);
  assert.deepEqual(row.slice(0, 6), [id, '*', hostname(), 'Ready', 'Active', 'Leader'], ls[1]);
  assert.equal(
    ok(await shoal(socket, ['node', 'ls', '--format', '{{.Hostname}}']), 'node ls --format'),
    `${hostname()}\n`,
  );
  assert.equal(
    ok(await shoal(socket, ['node', 'ls', '--format', '{{.ID}} {{.ManagerStatus}}']), 'node ls --format'),
    `${id} Leader\n`,
  );
  assert.equal(ok(await shoal(socket, ['node', 'ls', '-q']), 'node ls -q'), `${id}\n`);

  // a second init is refused with a clear error and changes nothing
  const again = await shoal(socket, ['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  refused(again, 5, /^Error response from daemon: This node is already part of a swarm\. Use "shoal swarm leave"/);
  assert.equal(ok(await shoal(socket, ['node', 'ls', '-q']), 'node ls -q'), `${id}\n`);
  assert.equal(ok(await shoal(socket, ['swarm', 'join-token', '-q', 'worker']), 'join-token'), token);

  // the last manager leaves only with --force
  refused(await shoal(socket, ['swarm', 'leave']), 5, /^Error response from daemon: .*--force/);
  assert.equal(ok(await shoal(socket, ['node', 'ls', '-q']), 'node ls -q'), `${id}\n`);
  assert.equal(ok(await shoal(socket, ['swarm', 'leave', '--force']), 'swarm leave --force'), 'Node left the swarm.\n');
  refused(await shoal(socket, ['node', 'ls']), 5, /not a swarm manager/);
  refused(await shoal(socket, ['swarm', 'leave', '--force']), 5, /not part of a swarm/);
});

test('shoal swarm init --advertise-addr (SHOAL_HOST picks the daemon): the join command names that address', async () => {
  const { socket, port } = await shoald();
  const env = { SHOAL_HOST: `unix://${socket}` };
  const cli = (args: string[]): Promise<RunResult> =>
    run(process.execPath, [cliMain, ...args], { check: false, env: { ...process.env, ...env } });

  const init = ok(
    await cli(['swarm', 'init', '--advertise-addr', `127.0.0.1:${port}`, '--default-addr-pool', '198.19.128.0/18']),
    'swarm init --advertise-addr',
  );
  const id = /current node \(([a-z0-9]{25})\) is now a manager/.exec(init)?.[1];
  assert.ok(id, init);
  assert.match(init, new RegExp(`shoal swarm join --token SWMTKN-1-[0-9a-z]+-[0-9a-z]+ 127\\.0\\.0\\.1:${port}\\n`));
  const worker = ok(await cli(['swarm', 'join-token', 'worker']), 'join-token worker');
  assert.match(worker, new RegExp(`shoal swarm join --token SWMTKN-1-\\S+ 127\\.0\\.0\\.1:${port}\\n`));
  assert.equal(
    ok(await cli(['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}']), 'node ls'),
    `${hostname()} Ready Leader\n`,
  );
  const inspect = JSON.parse(ok(await cli(['node', 'inspect', 'self']), 'node inspect self')) as {
    ID: string;
    ManagerStatus?: { Leader?: boolean; Addr?: string };
  }[];
  assert.equal(inspect[0]?.ID, id);
  assert.equal(inspect[0]?.ManagerStatus?.Leader, true);
  assert.equal(inspect[0]?.ManagerStatus?.Addr, `127.0.0.1:${port}`);
  assert.equal(ok(await cli(['swarm', 'leave', '--force']), 'leave --force'), 'Node left the swarm.\n');
  assert.ok(existsSync(socket), 'the daemon keeps serving after leaving');
  refused(await cli(['swarm', 'join-token', '-q', 'worker']), 5, /not a swarm manager/);
});
