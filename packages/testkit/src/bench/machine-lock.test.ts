/**
 * The machine-wide lock of the benchmarks' Swarm side (machine-lock.ts), between real processes:
 * a second taker waits (and says for whom) until the first releases, fails with BENCH_LOCKED
 * when it may not wait, and gets the lock at once when the holder was killed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const lockModule = new URL('./machine-lock.js', import.meta.url).href;

/**
 * A process that takes the lock (waiting up to `timeoutMs`), prints "held" on stdout, keeps it
 * until its stdin ends, then prints "released". Progress and errors on stderr.
 */
const TAKER = `
const { acquireMachineLock } = await import(process.env.LOCK_MODULE);
try {
  const lock = await acquireMachineLock(process.env.LOCK_PATH, 'the test side', (m) => process.stderr.write(m + '\\n'), Number(process.env.WAIT_MS));
  process.stdout.write('held\\n');
  process.stdin.resume();
  process.stdin.on('end', () => { lock.release(); process.stdout.write('released\\n'); });
} catch (err) {
  process.stderr.write('error ' + err.code + ': ' + err.message + '\\n');
  process.exitCode = 3;
}
`;

interface Taker {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
  /** Resolves true once stdout (or stderr) contains `text`, false if the process exits first. */
  until: (text: string, stream?: 'out' | 'err') => Promise<boolean>;
  exited: Promise<number | null>;
}

function taker(path: string, waitMs: number): Taker {
  const child = spawn(process.execPath, ['--input-type=module', '-e', TAKER], {
    env: { ...process.env, LOCK_MODULE: lockModule, LOCK_PATH: path, WAIT_MS: String(waitMs) },
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const poke = (): void => waiters.forEach((w) => w());
  child.stdout.on('data', (d: Buffer) => void ((out += d.toString()), poke()));
  child.stderr.on('data', (d: Buffer) => void ((err += d.toString()), poke()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const until = (text: string, stream: 'out' | 'err' = 'out'): Promise<boolean> =>
    new Promise((resolve) => {
      const check = (): void => {
        if ((stream === 'out' ? out : err).includes(text)) {
          waiters.delete(check);
          resolve(true);
        }
      };
      waiters.add(check);
      check();
      void exited.then(() => {
        check();
        if (waiters.delete(check)) resolve(false);
      });
    });
  return { child, out: () => out, err: () => err, until, exited };
}

async function withTakers(fn: (path: string, made: Taker[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-machine-lock-'));
  const made: Taker[] = [];
  try {
    await fn(join(dir, 'bench.lock'), made);
  } finally {
    for (const t of made) if (t.child.exitCode === null && t.child.signalCode === null) t.child.kill('SIGKILL');
    await Promise.all(made.map((t) => t.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a second run waits, saying for whom, until the first releases the lock', async () => {
  await withTakers(async (path, made) => {
    const a = taker(path, 60_000);
    made.push(a);
    assert.ok(await a.until('held'), `${a.out()} ${a.err()}`);
    const b = taker(path, 60_000);
    made.push(b);
    // whichever comes first: it says it waits, or (wrongly) it holds the lock too
    await Promise.race([b.until('waiting for another', 'err'), b.until('held')]);
    assert.equal(b.out(), '', 'the second run must not hold the lock while the first does');
    assert.match(b.err(), new RegExp(`waiting for another benchmark run \\(pid ${a.child.pid}, lock `));
    a.child.stdin.end();
    assert.ok(await a.until('released'), `${a.out()} ${a.err()}`);
    assert.ok(await b.until('held'), `${b.out()} ${b.err()}`);
    assert.match(b.err(), /the other run ended, going on/);
    b.child.stdin.end();
    assert.ok(await b.until('released'), `${b.out()} ${b.err()}`);
    assert.equal(await a.exited, 0);
    assert.equal(await b.exited, 0);
  });
});

test('a run that may not wait fails with BENCH_LOCKED naming the holder', async () => {
  await withTakers(async (path, made) => {
    const a = taker(path, 60_000);
    made.push(a);
    assert.ok(await a.until('held'), `${a.out()} ${a.err()}`);
    const b = taker(path, 0);
    made.push(b);
    await Promise.race([b.exited, b.until('held')]);
    assert.equal(b.out(), '', 'the second run must not hold the lock while the first does');
    assert.equal(await b.exited, 3);
    assert.equal(b.out(), '');
    assert.match(
      b.err(),
      new RegExp(`error BENCH_LOCKED: the test side is in use by another benchmark run \\(pid ${a.child.pid}`),
    );
    a.child.stdin.end();
    assert.equal(await a.exited, 0);
  });
});

test('the lock of a killed holder is free at once', async () => {
  await withTakers(async (path, made) => {
    const a = taker(path, 60_000);
    made.push(a);
    assert.ok(await a.until('held'), `${a.out()} ${a.err()}`);
    a.child.kill('SIGKILL');
    await a.exited;
    const b = taker(path, 0);
    made.push(b);
    assert.ok(await b.until('held'), `${b.out()} ${b.err()}`);
    b.child.stdin.end();
    assert.equal(await b.exited, 0);
  });
});
