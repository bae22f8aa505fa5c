// The CLI's generic behaviour, in child processes: one-line usage errors with a hint, a reader
// that goes away, options after a container name belonging to its command, and the
// --insecure-registry flag of `container run`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const main = new URL('./main.js', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function shoal(args: string[], opts: { env?: NodeJS.ProcessEnv; closeStdout?: boolean } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [main, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    // The reader goes away before the CLI writes (as `| head -1` after its first line).
    if (opts.closeStdout) c.stdout.destroy();
    else c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('error', reject);
    c.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function tempRoot(t: { after(fn: () => Promise<void>): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-cli-prog-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('an unknown flag prints one line and a hint, not the usage', async () => {
  const r = await shoal(['container', 'run', '--foo', 'busybox']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "shoal: unknown flag: --foo\nSee 'shoal container run --help'.\n");
  assert.equal(r.stdout, '');
  const img = await shoal(['image', 'pull']);
  assert.equal(img.stderr, "shoal: missing required argument 'ref'\nSee 'shoal image pull --help'.\n");
});

test('a reader that goes away ends the CLI quietly (EPIPE, no stack trace)', async (t) => {
  const dir = tempRoot(t);
  const r = await shoal(['image', 'ls', '--data-root', join(dir, 'data')], { closeStdout: true });
  assert.equal(r.stderr, '', 'nothing on stderr');
  assert.equal(r.code, 141, 'exit status of a process ended by SIGPIPE');
});

test(
  'options after the container name belong to the command: exec NAME sh -c ...',
  { skip: isRoot ? false : 'needs root (engine state dirs)' },
  async (t) => {
    const dir = tempRoot(t);
    const env = { SHOAL_DATA_ROOT: join(dir, 'data'), SHOAL_RUN_ROOT: join(dir, 'run') };
    const r = await shoal(['container', 'exec', 'nosuch', 'sh', '-c', 'echo hi'], { env });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'shoal: no such container: nosuch [ENGINE_CONTAINER_NOT_FOUND]\n');
  },
);

test(
  'container run takes --insecure-registry for the pull it makes',
  { skip: isRoot ? false : 'needs root (engine state dirs)' },
  async (t) => {
    const dir = tempRoot(t);
    const r = await shoal([
      'container',
      'run',
      '--data-root',
      join(dir, 'data'),
      '--run-root',
      join(dir, 'run'),
      '--insecure-registry',
      '127.0.0.1:9',
      '127.0.0.1:9/shoal-test/busybox:1',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /registry 127\.0\.0\.1:9 unreachable.*\[ENGINE_REGISTRY_UNREACHABLE\]\n$/);
  },
);
