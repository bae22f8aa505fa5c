// `shoal container run` end to end: a real registry (Debian docker-registry on loopback), the
// image pulled by the engine's image service, a container run by runc under its shim, output
// streamed and the exit code passed through; then a restart of nothing but the CLI (daemonless).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Cgroup, Engine } from '@shoal/engine/internal';
import { startRegistry, pushTestImages, TestImages } from '@shoal/testkit';

const root = new URL('../..', import.meta.url).pathname;

function shoal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [join(root, 'packages/cli/dist/main.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * A data root, run root and cgroup parent of the test's own, a registry, and the `--data-root ...`
 * flags for the CLI; removed in `t.after` (containers, registry, cgroups, then no mount may be left).
 * `before` runs first in that cleanup.
 */
async function engineRig(
  t: { after(fn: () => Promise<void>): void },
  prefix: string,
  before?: () => Promise<void>,
): Promise<{ dir: string; cgroupParent: string; flags: string[]; reg: Awaited<ReturnType<typeof startRegistry>> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const cgroupParent = `/shoal-e2e-${randomBytes(4).toString('hex')}`;
  const reg = await startRegistry({ dir: join(dir, 'registry') });
  const flags = ['--data-root', join(dir, 'data'), '--run-root', join(dir, 'run'), '--cgroup-parent', cgroupParent];
  t.after(async () => {
    await before?.();
    const ls = await shoal(['container', 'ls', ...flags, '-a', '-q']);
    for (const id of ls.stdout.split('\n').filter(Boolean)) await shoal(['container', 'rm', ...flags, '-f', id]);
    await reg.stop();
    await new Cgroup(cgroupParent).remove({ keepParent: true });
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 'no mounts left');
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, cgroupParent, flags, reg };
}

test(
  'shoal container run pulls from the lab registry, streams output, exits with the code',
  { timeout: 120_000 },
  async (t) => {
    const { flags, reg } = await engineRig(t, 'shoal-e2e-');
    const pushed = await pushTestImages(reg.url);
    const busybox = pushed.find((p) => /busybox/.test(p.remoteRef));
    assert.ok(busybox, `a busybox test image among ${pushed.map((p) => p.remoteRef).join(', ')}`);

    const run = await shoal([
      'container',
      'run',
      ...flags,
      '--rm',
      busybox.remoteRef,
      'sh',
      '-c',
      'echo from-registry; echo to-stderr >&2; exit 7',
    ]);
    assert.equal(run.code, 7, run.stderr);
    assert.equal(run.stdout, 'from-registry\n');
    assert.match(run.stderr, /to-stderr/);

    // The image's tools resolve names (static glibc busybox loads the image's libc.so.6 for it):
    // a name from /etc/hosts reaches the container's own httpd.
    const named = await shoal([
      'container',
      'run',
      ...flags,
      '--rm',
      '--network',
      'none',
      '--add-host',
      'shoal-named:127.0.0.1',
      busybox.remoteRef,
      'sh',
      '-c',
      "httpd -p 127.0.0.1:8080 -h /srv && printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 shoal-named 8080",
    ]);
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.stdout, /hello from shoal-test\/busybox/);

    const name = `e2e-${randomBytes(3).toString('hex')}`;
    const d = await shoal([
      'container',
      'run',
      ...flags,
      '-d',
      '--name',
      name,
      '--health-cmd',
      'true',
      '--health-interval',
      '1s',
      busybox.remoteRef,
      'sleep',
      '1000',
    ]);
    assert.equal(d.code, 0, d.stderr);
    const ls = await shoal(['container', 'ls', ...flags]);
    assert.match(ls.stdout, new RegExp(name));
    const stop = await shoal(['container', 'stop', ...flags, '-t', '1', name]);
    assert.equal(stop.code, 0, stop.stderr);
    const inspect = JSON.parse((await shoal(['container', 'inspect', ...flags, name])).stdout) as {
      State: { Status: string; ExitCode: number };
    }[];
    assert.equal(inspect[0]?.State.Status, 'exited');
    assert.equal(inspect[0]?.State.ExitCode, 137);
    assert.equal((await shoal(['container', 'rm', ...flags, name])).code, 0);
  },
);

// `run --rm` in the foreground: the container is removed when it exits, by whichever engine
// process collects its exit (shoald, or another CLI holding the collector role), racing the
// CLI's own wait and removal. The exit code must always be the container's, with no error.
test("shoal container run --rm: always the container's exit code, never an error", { timeout: 300_000 }, async (t) => {
  const opened: Engine[] = [];
  const { dir, cgroupParent, flags, reg } = await engineRig(t, 'shoal-e2e-rm-', async () => {
    for (const e of opened) await e.close();
  });
  // shoald's part: an engine holding the data root's collector role, which collects every exit
  // as it happens and so removes --rm containers, racing each CLI's own wait
  const collector = await Engine.open({
    dataRoot: join(dir, 'data'),
    runRoot: join(dir, 'run'),
    cgroupParent,
    collector: true,
  });
  opened.push(collector);
  assert.ok(collector.collecting, 'the test holds the collector role');
  const pushed = await pushTestImages(reg.url, { only: [TestImages.busybox] });
  const busybox = pushed[0]?.remoteRef ?? '';
  assert.match(busybox, /busybox/);
  // pulled once, so that no run reports a pull on stderr
  const first = await shoal(['container', 'run', ...flags, '--rm', busybox, 'true']);
  assert.equal(first.code, 0, first.stderr);
  const RUNS = 20;
  const BATCH = 5;
  const results: { code: number; stderr: string }[] = [];
  for (let i = 0; i < RUNS; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: BATCH }, () =>
        shoal(['container', 'run', ...flags, '--rm', busybox, 'sh', '-c', 'sleep 1; exit 3']),
      ),
    );
    results.push(...batch.map((r) => ({ code: r.code, stderr: r.stderr })));
  }
  assert.deepEqual(
    results.filter((r) => r.code !== 3 || r.stderr !== ''),
    [],
    `every run exits with 3 and prints nothing on stderr`,
  );
  // `container stop` of a `-d --rm` container: the collector removes it once it exited, racing
  // the stop's own wait; the stop still succeeds, as Docker's
  const detached = await Promise.all(
    Array.from({ length: BATCH }, () => shoal(['container', 'run', ...flags, '-d', '--rm', busybox, 'sleep', '600'])),
  );
  assert.deepEqual(
    detached.filter((r) => r.code !== 0),
    [],
  );
  const ids = detached.map((r) => r.stdout.trim());
  const stops = await Promise.all(ids.map((id) => shoal(['container', 'stop', ...flags, '-t', '1', id])));
  assert.deepEqual(
    stops.filter((r) => r.code !== 0 || r.stderr !== ''),
    [],
    'every stop succeeds and prints nothing on stderr',
  );
  const left = await shoal(['container', 'ls', ...flags, '-a', '-q']);
  assert.equal(left.stdout, '', 'every container was removed');
});
