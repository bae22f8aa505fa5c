import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Engine } from '@shoal/engine';
import { Cgroup } from '@shoal/engine/internal';
import { ignoreCodes } from '../ignore.js';

/** A one-layer busybox image on disk. */
function makeLayer(root: string): string {
  const layer = join(root, 'layer');
  for (const d of ['bin', 'etc', 'tmp']) mkdirSync(join(layer, d), { recursive: true });
  copyFileSync('/bin/busybox', join(layer, 'bin', 'busybox'));
  for (const a of ['sh', 'echo', 'cat', 'sleep', 'true']) symlinkSync('busybox', join(layer, 'bin', a));
  writeFileSync(join(layer, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(layer, 'etc', 'group'), 'root:x:0:\n');
  return layer;
}

interface Ctx {
  root: string;
  layer: string;
  flags: string[];
  cgroupParent: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs `shoal container <args...>` in a child process with a local image service. */
function shoal(ctx: Ctx, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new URL('../program.js', import.meta.url).href;
  const container = new URL('./container.js', import.meta.url).href;
  const script = `
    import { main } from ${JSON.stringify(program)};
    import { useImages } from ${JSON.stringify(container)};
    const image = { id: 'sha256:' + '1'.repeat(64), ref: 'test/busybox:latest', config: { Cmd: ['sh'], Env: ['PATH=/bin'] }, layerDirs: [${JSON.stringify(ctx.layer)}] };
    useImages({ resolve: async () => image });
    process.exitCode = await main(JSON.parse(process.argv[1]));
  `;
  // the global flags go right after the verb (before IMAGE for run)
  const [verb, ...rest] = args;
  const argv = ['container', verb ?? '', ...ctx.flags, ...rest];
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(argv)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...ctx.env },
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function setup(t: { after(fn: () => Promise<void>): void }): Ctx {
  const root = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
  const cgroupParent = `/shoal-clitest-${randomBytes(4).toString('hex')}`;
  const ctx: Ctx = {
    root,
    layer: makeLayer(root),
    cgroupParent,
    flags: ['--data-root', join(root, 'data'), '--run-root', join(root, 'run'), '--cgroup-parent', cgroupParent],
  };
  t.after(async () => {
    const e = await Engine.open({
      dataRoot: join(root, 'data'),
      runRoot: join(root, 'run'),
      cgroupParent,
      background: false,
      images: { resolve: () => Promise.reject(new Error('unused')) },
    });
    for (const c of await e.list({ all: true }))
      await e.remove(c.id, { force: true }).catch(ignoreCodes('ENGINE_CONTAINER_NOT_FOUND'));
    await e.close();
    await new Cgroup(cgroupParent).remove({ keepParent: true });
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8').includes(root);
    if (!mounted) await rm(root, { recursive: true, force: true });
    assert.ok(!mounted, 'no mounts left');
  });
  return ctx;
}

test(
  'container run streams output and exits with the container exit code; --rm removes it',
  { timeout: 180_000 },
  async (t) => {
    const ctx = setup(t);
    const r = await shoal(ctx, ['run', '--rm', 'busybox', 'sh', '-c', 'echo hello; echo oops >&2; exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.stderr, 'oops\n');
    const ls = await shoal(ctx, ['ls', '-a', '-q']);
    assert.equal(ls.stdout, '');
  },
);

test('container run -d, ls, exec, logs, stop, inspect, rm; errors are clear', { timeout: 180_000 }, async (t) => {
  const ctx = setup(t);
  const name = `web-${randomBytes(3).toString('hex')}`;
  const run = await shoal(ctx, [
    'run',
    '-d',
    '--name',
    name,
    '-e',
    'GREETING=hi there',
    '--memory',
    '32m',
    'busybox',
    'sh',
    '-c',
    'echo "$GREETING"; exec sleep 1000',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const ls = await shoal(ctx, ['ls']);
  assert.match(ls.stdout, new RegExp(`${id.slice(0, 12)}.*Up .*${name}`));
  const ex = await shoal(ctx, ['exec', name, 'cat', '/etc/passwd']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.equal(ex.stdout, 'root:x:0:0:root:/root:/bin/sh\n');
  const exFail = await shoal(ctx, ['exec', name, 'sh', '-c', 'exit 4']);
  assert.equal(exFail.code, 4, 'exec passes the exit code through');
  // Roots from the environment, so nothing precedes the name: `-c` and the rest go to sh.
  const env = { SHOAL_DATA_ROOT: join(ctx.root, 'data'), SHOAL_RUN_ROOT: join(ctx.root, 'run') };
  const exArgs = await shoal({ ...ctx, flags: [], env }, ['exec', name, 'sh', '-c', 'echo "[$1]"', 'x', '-e']);
  assert.equal(exArgs.code, 0, exArgs.stderr);
  assert.equal(exArgs.stdout, '[-e]\n');
  const dup = await shoal(ctx, ['run', '-d', '--name', name, 'busybox', 'true']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /already in use.*\[ENGINE_NAME_IN_USE\]/);
  const stop = await shoal(ctx, ['stop', '-t', '1', name]);
  assert.equal(stop.code, 0, stop.stderr);
  const logs = await shoal(ctx, ['logs', name]);
  assert.equal(logs.stdout, 'hi there\n');
  const inspect = JSON.parse((await shoal(ctx, ['inspect', name])).stdout) as {
    State: { Status: string; ExitCode: number };
    HostConfig: { Memory: number };
  }[];
  assert.equal(inspect[0]?.State.Status, 'exited');
  assert.equal(inspect[0]?.State.ExitCode, 137, 'sleep ignores SIGTERM as pid 1: killed after the grace period');
  assert.equal(inspect[0]?.HostConfig.Memory, 32 * 1024 * 1024);
  assert.equal((await shoal(ctx, ['rm', name])).code, 0);
  const gone = await shoal(ctx, ['rm', name]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /no such container.*\[ENGINE_CONTAINER_NOT_FOUND\]/);
  const bad = await shoal(ctx, ['run', '--memory', '12x', 'busybox', 'true']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--memory: invalid size "12x"/);
});
