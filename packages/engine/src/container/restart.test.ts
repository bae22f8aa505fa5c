import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { waitFor } from '@shoal/common';
import { testEngine, logText } from './test-support.js';
import { shimAlive } from '../monitor/shim.js';

/** Runs an ESM script in another node process (async: this process's engine keeps running). */
function nodeScript(
  script: string,
): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('error', reject);
    c.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

test(
  'engine restart: containers keep running, are adopted, logs/stop/exit codes stay right',
  { timeout: 60_000 },
  async (t) => {
    const te = await testEngine();
    t.after(() => te.cleanup());
    // The first engine lives in another process that is killed with SIGKILL after starting two containers.
    const index = new URL('../index.js', import.meta.url).href;
    const script = `
    import { Engine } from ${JSON.stringify(index)};
    const layer = ${JSON.stringify(te.root + '/layer')};
    const images = { resolve: async () => ({ id: 'sha256:' + '0'.repeat(64), ref: 'test/busybox:latest', config: { Env: ['PATH=/bin'] }, layerDirs: [layer] }) };
    const e = await Engine.open({ ...${JSON.stringify({ ...te.opts, images: undefined })}, images });
    const long = await e.run({ image: 'b', name: 'long', cmd: ['sh', '-c', "trap 'echo bye; exit 5' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"] });
    const short = await e.run({ image: 'b', name: 'short', cmd: ['sh', '-c', 'echo short-lived; sleep 0.5; exit 4'] });
    process.stdout.write(JSON.stringify({ long, short }) + '\\n');
    process.kill(process.pid, 'SIGKILL');
  `;
    const child = await nodeScript(script);
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const { long, short } = JSON.parse(child.stdout.trim()) as { long: string; short: string };
    // no engine runs now; the short one exits meanwhile
    await new Promise((r) => setTimeout(r, 1200));

    const engine = await te.reopen();
    const l = await engine.inspect('long');
    assert.equal(l.status, 'running');
    assert.ok(shimAlive(l.shimPid, l.shimStart), 'monitor survived the engine');
    const s = await engine.inspect('short');
    assert.equal(s.status, 'exited');
    assert.equal(s.exitCode, 4);
    assert.equal((await logText(engine, short)).stdout, 'short-lived\n');

    // output written while no engine ran is there, and following picks up new lines
    const seen: string[] = [];
    const ac = new AbortController();
    for await (const e of engine.logs(long, { follow: true, signal: ac.signal })) {
      seen.push(e.line.toString());
      if (seen.length >= 15) ac.abort();
    }
    assert.deepEqual(seen.slice(0, 3), ['tick 0', 'tick 1', 'tick 2']);
    const exit = await engine.stop(long, { timeoutMs: 5000 });
    assert.deepEqual(exit, { exitCode: 5, oomKilled: false, signal: 0 });
    const out = (await logText(engine, long)).stdout.trim().split('\n');
    assert.equal(out.at(-1), 'bye');
    assert.ok(out.length >= 15);
    await engine.remove(long);
    await engine.remove(short);
  },
);

test(
  'monitor killed: the container keeps running, is flagged, and can still be stopped',
  { timeout: 60_000 },
  async (t) => {
    const te = await testEngine();
    t.after(() => te.cleanup());
    const { engine } = te;
    const id = await engine.run({ image: 'busybox', cmd: ['sleep', '1000'] });
    const before = await engine.inspect(id);
    process.kill(before.shimPid ?? 0, 'SIGKILL');
    for (let i = 0; i < 100 && shimAlive(before.shimPid, before.shimStart); i++)
      await new Promise((r) => setTimeout(r, 20));
    const after = await engine.inspect(id);
    assert.equal(after.status, 'running');
    assert.equal(after.monitorLost, true);
    const exit = await engine.stop(id, { timeoutMs: 500 });
    assert.equal(exit?.exitCode, 255, 'exit status unknown without the monitor');
    assert.equal((await engine.inspect(id)).status, 'exited');
    assert.equal(await engine.runc.state(id), undefined);
    await engine.remove(id);
  },
);

test(
  'two engine processes on one data root: exits collected once, records stay consistent',
  { timeout: 60_000 },
  async (t) => {
    const te = await testEngine();
    t.after(() => te.cleanup());
    const { engine } = te;
    // this engine checks health every 50 ms (each probe rewrites the record under the lock)
    const ids = await Promise.all(
      [1, 2, 3].map((i) =>
        engine.run({
          image: 'busybox',
          name: `c${i}`,
          cmd: ['sh', '-c', `trap 'exit ${i}' TERM; while true; do sleep 0.05; done`],
          healthcheck: { test: ['CMD', 'true'], intervalMs: 50, timeoutMs: 2000 },
        }),
      ),
    );
    for (const id of ids) {
      await waitFor(async () => ((await engine.inspect(id)).health?.status === 'healthy' ? true : undefined), {
        timeoutMs: 20_000,
        what: 'healthy',
      });
    }
    // a second engine in another process stops them, like `shoal container stop` next to shoald
    const index = new URL('../index.js', import.meta.url).href;
    const script = `
    import { Engine } from ${JSON.stringify(index)};
    const e = await Engine.open({ ...${JSON.stringify({ ...te.opts, images: undefined })}, collector: false });
    const exits = await Promise.all(['c1', 'c2', 'c3'].map((n) => e.stop(n, { timeoutMs: 5000 })));
    process.stdout.write(JSON.stringify(exits));
  `;
    const child = await nodeScript(script);
    assert.equal(child.status, 0, child.stderr);
    const exits = JSON.parse(child.stdout) as { exitCode: number }[];
    assert.deepEqual(
      exits.map((x) => x.exitCode),
      [1, 2, 3],
    );
    for (const [i, id] of ids.entries()) {
      const rec = await engine.inspect(id);
      assert.equal(rec.status, 'exited');
      assert.equal(rec.exitCode, i + 1);
      assert.equal(
        rec.health?.status,
        'healthy',
        JSON.stringify({
          f: rec.finishedAt,
          s: rec.health?.failingStreak,
          l: rec.health?.log.map((x) => [x.start, x.exitCode, x.output.slice(0, 300)]),
        }),
      );
      assert.equal(await engine.runc.state(id), undefined);
      await engine.remove(id);
    }
  },
);
