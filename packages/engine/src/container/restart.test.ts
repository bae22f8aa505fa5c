import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { testEngine, logText } from './test-support.js';
import { shimAlive } from '../monitor/shim.js';

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
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
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
