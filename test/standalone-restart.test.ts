// Restart policies of standalone containers (`shoal container run --restart ...`), carried out by
// a real shoald process (the engine's collector with the restart supervisor) on the data root the
// daemonless CLI uses; containers under runc, busybox pulled from a real registry. The "reboot"
// case kills shoald with SIGKILL, then the containers' processes, then starts shoald again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '@shoal/engine';
import { cliEnv, removeEverything, shoal, type CliResult, type CliRoot } from './engine-cli-support.js';

const SHOALD = new URL('../../packages/daemon/dist/main.js', import.meta.url).pathname;

interface Rec {
  id: string;
  status: string;
  exitCode?: number;
  restartCount?: number;
  manuallyStopped?: boolean;
  restartPolicy?: { name: string; maximumRetryCount?: number };
  pid?: number;
  shimPid?: number;
}

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout;
}

/** A shoald on `dataRoot`/`runRoot`; resolves once it logged "shoald ready". */
async function startShoald(dir: string, stderr: string[]): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      SHOALD,
      '--data-root',
      join(dir, 'data'),
      '--run-root',
      join(dir, 'run'),
      '--socket',
      join(dir, 'shoal.sock'),
      '--config',
      join(dir, 'no-daemon.json'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (b: Buffer) => {
      buf += b.toString();
      stderr.push(b.toString());
      if (buf.includes('"shoald ready"')) resolve();
    });
    child.once('exit', (code, sig) => reject(new Error(`shoald exited (${code ?? sig}) before ready: ${buf}`)));
  });
  return child;
}

async function stopShoald(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await gone;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Setup {
  root: CliRoot;
  dir: string;
  image: string;
  logs: string[];
  shoald: ChildProcess | undefined;
  inspect(ref: string): Promise<Rec>;
  run(...args: string[]): Promise<string>;
}

/** A shoald data root whose engine root is the CLI's data root, with the image pulled into it. */
async function setup(t: { after(fn: () => Promise<void>): void }, name: string): Promise<Setup> {
  const env = await cliEnv(t);
  const dir = join(env.dir, `shoald-${name}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'no-daemon.json'), '{}'); // not the host's /etc/shoal/daemon.json
  const root: CliRoot = {
    dataRoot: join(dir, 'data', 'engine'),
    runRoot: join(dir, 'run', 'engine'),
    cgroupParent: `/shoal-restart-${randomBytes(4).toString('hex')}`,
    flags: [],
  };
  root.flags = ['--data-root', root.dataRoot, '--run-root', root.runRoot, '--cgroup-parent', root.cgroupParent];
  const s: Setup = {
    root,
    dir,
    image: env.image,
    logs: [],
    shoald: undefined,
    async inspect(ref) {
      // the engine's own record: monitor pids and restart bookkeeping are not in Docker's inspect
      const e = await Engine.open({
        dataRoot: root.dataRoot,
        runRoot: root.runRoot,
        cgroupParent: root.cgroupParent,
        recover: false,
      });
      try {
        return await e.inspect(ref);
      } finally {
        await e.close();
      }
    },
    async run(...args) {
      return ok(await shoal(['container', 'run', '-d', ...root.flags, ...args]), `run ${args.join(' ')}`).trim();
    },
  };
  // registered after cliEnv's: runs first (node:test runs t.after hooks in reverse order)
  t.after(async () => {
    await stopShoald(s.shoald);
    await removeEverything(root);
  });
  ok(await shoal(['image', 'pull', '-q', '--data-root', root.dataRoot, env.image]), 'pull');
  s.shoald = await startShoald(dir, s.logs);
  return s;
}

test('restart policies under shoald: on-failure:N, always, a user stop', { timeout: 240_000 }, async (t) => {
  const s = await setup(t, 'policies');

  // on-failure:2: two restarts, then it stays exited with RestartCount 2
  const onf = await s.run('--restart', 'on-failure:2', s.image, 'sh', '-c', 'echo ran; exit 3');
  const done = await until('on-failure:2 to give up', async () => {
    const r = await s.inspect(onf);
    return r.status === 'exited' && r.restartCount === 2 ? r : undefined;
  });
  assert.equal(done.exitCode, 3);
  assert.deepEqual(done.restartPolicy, { name: 'on-failure', maximumRetryCount: 2 });
  await sleep(3000); // the next backoff would be 400 ms: nothing more happens
  const after = await s.inspect(onf);
  assert.equal(after.status, 'exited');
  assert.equal(after.restartCount, 2);
  const ran = ok(await shoal(['container', 'logs', ...s.root.flags, onf]), 'logs');
  assert.equal(ran.split('\n').filter((l) => l === 'ran').length, 3, `three runs: ${ran}`);

  // on-failure and a clean exit: no restart
  const clean = await s.run('--restart', 'on-failure', s.image, 'true');
  await until('the clean exit', async () => ((await s.inspect(clean)).status === 'exited' ? true : undefined));
  await sleep(2000);
  assert.equal((await s.inspect(clean)).restartCount ?? 0, 0);

  // always: restarted after exit 0, again and again
  const alw = await s.run('--restart', 'always', s.image, 'sh', '-c', 'echo up; sleep 0.2; exit 0');
  await until('always to restart twice', async () => ((await s.inspect(alw)).restartCount! >= 2 ? true : undefined));

  // a user's stop is respected while shoald runs
  const long = await s.run('--restart', 'always', s.image, 'sleep', '1000');
  ok(await shoal(['container', 'stop', '-t', '1', ...s.root.flags, long]), 'stop');
  const stopped = await s.inspect(long);
  assert.equal(stopped.status, 'exited');
  assert.equal(stopped.manuallyStopped, true);
  await sleep(3000);
  const still = await s.inspect(long);
  assert.equal(still.status, 'exited', 'a stopped always container stays stopped while shoald runs');
  assert.equal(still.restartCount ?? 0, 0);
  // `start` by the user brings it back and clears the mark
  ok(await shoal(['container', 'start', ...s.root.flags, long]), 'start');
  const again = await s.inspect(long);
  assert.equal(again.status, 'running');
  assert.equal(again.manuallyStopped, false);

  // bad policies: one line, nothing made
  for (const [args, re] of [
    [['--restart', 'sometimes'], /unknown policy "sometimes"/],
    [['--restart', 'always:3'], /maximum retry count can only be used with 'on-failure'/],
    [['--restart', 'on-failure:x'], /maximum retry count must be an integer/],
    [['--restart', 'always', '--rm'], /^shoal: Conflicting options: --restart and --rm( \[INVALID_ARGUMENT\])?$/m],
  ] as [string[], RegExp][]) {
    const before = ok(await shoal(['container', 'ls', '-a', '-q', ...s.root.flags]), 'ls');
    const res = await shoal(['container', 'run', '-d', ...s.root.flags, ...args, s.image, 'true']);
    assert.notEqual(res.code, 0, args.join(' '));
    assert.match(res.stderr, re);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.equal(ok(await shoal(['container', 'ls', '-a', '-q', ...s.root.flags]), 'ls'), before);
  }
});

test('restart policies across a shoald crash and dead containers ("reboot")', { timeout: 240_000 }, async (t) => {
  const s = await setup(t, 'reboot');
  const always = await s.run('--restart', 'always', s.image, 'sleep', '1000');
  const unless = await s.run('--restart', 'unless-stopped', s.image, 'sleep', '1000');
  const unlessStopped = await s.run('--restart', 'unless-stopped', s.image, 'sleep', '1000');
  const alwaysStopped = await s.run('--restart', 'always', s.image, 'sleep', '1000');
  const no = await s.run('--restart', 'no', s.image, 'sleep', '1000');
  for (const id of [unlessStopped, alwaysStopped])
    ok(await shoal(['container', 'stop', '-t', '1', ...s.root.flags, id]), 'stop');

  await stopShoald(s.shoald, 'SIGKILL');
  // the host "reboots": every container process dies while no shoald runs
  for (const id of [always, unless, no]) {
    const r = await s.inspect(id);
    assert.equal(r.status, 'running');
    for (const pid of [r.shimPid, r.pid]) if (pid) process.kill(pid, 'SIGKILL');
  }
  // without shoald nothing restarts
  await until('the kills to show', async () => {
    for (const id of [always, unless, no]) if ((await s.inspect(id)).status !== 'exited') return undefined;
    return true;
  });
  await sleep(2000);
  for (const id of [always, unless, no]) assert.equal((await s.inspect(id)).status, 'exited');

  s.shoald = await startShoald(s.dir, s.logs);
  for (const id of [always, unless, alwaysStopped]) {
    await until(`${id.slice(0, 12)} to come back`, async () =>
      (await s.inspect(id)).status === 'running' ? true : undefined,
    );
  }
  await sleep(3000);
  assert.equal((await s.inspect(unlessStopped)).status, 'exited', 'a stopped unless-stopped container stays stopped');
  assert.equal((await s.inspect(no)).status, 'exited', 'restart no stays exited');
  for (const id of [always, unless, alwaysStopped]) {
    const r = await s.inspect(id);
    assert.equal(r.status, 'running');
    // the container really runs again: exec in it
    ok(await shoal(['container', 'exec', ...s.root.flags, id, 'true']), 'exec');
  }
});
