// Concurrent engine processes on one data root (issue 7, defect 1): 20 `shoal container run -d`
// started at once, while 60 `ls -a` and `inspect` run beside them. Every run succeeds, all 20
// containers run afterwards, none was killed or marked exited by an observer, and the observers
// only ever fail with "no such container" (for a name not created yet).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { cliEnv, census, openRoot, processAlive, shoal, type CliResult } from './engine-cli-support.js';

test(
  '20 parallel run -d beside 60 parallel ls -a and inspect: all 20 run, none is killed',
  { timeout: 600_000 },
  async (t) => {
    const env = await cliEnv(t);
    const root = await env.root();
    const tag = randomBytes(3).toString('hex');
    const names = Array.from({ length: 20 }, (_, i) => `st-${tag}-${i}`);
    const runs = names.map((n) =>
      shoal(['container', 'run', ...root.flags, '-d', '--name', n, env.image, 'sleep', '1000']),
    );
    // observers in three waves across the creation window
    const looks: Promise<{ args: string[]; r: CliResult }>[] = [];
    for (let i = 0; i < 60; i++) {
      if (i === 20 || i === 40) await sleep(250);
      const args =
        i % 2 === 0
          ? ['container', 'ls', ...root.flags, '-a']
          : ['container', 'inspect', ...root.flags, names[i % names.length] ?? ''];
      looks.push(shoal(args).then((r) => ({ args, r })));
    }
    const ran = await Promise.all(runs);
    const looked = await Promise.all(looks);
    for (const [i, r] of ran.entries()) {
      assert.equal(r.code, 0, `run -d ${names[i]} failed: ${r.stderr}`);
      assert.match(r.stdout.trim(), /^[0-9a-f]{64}$/);
    }
    for (const { args, r } of looked) {
      // `container inspect` answers as docker's does ("Error: No such container: NAME")
      if (r.code !== 0)
        assert.match(r.stderr, /No such container: st-|ENGINE_CONTAINER_NOT_FOUND/, `${args.join(' ')}: ${r.stderr}`);
    }

    const e = await openRoot(root);
    t.after(() => e.close());
    for (const n of names) {
      const rec = await e.inspect(n);
      assert.equal(rec.status, 'running', `${n}: ${JSON.stringify(rec)}`);
      assert.equal(rec.exitCode, undefined, `${n} has an exit code`);
      assert.ok(processAlive(rec.shimPid, rec.shimStart), `${n}: its monitor runs`);
      assert.equal((await e.runc.state(rec.id))?.status, 'running', `${n}: runc says it runs`);
    }
    const ls = await shoal(['container', 'ls', ...root.flags]);
    assert.equal(ls.stdout.split('\n').filter((l) => / Up /.test(l)).length, 20, ls.stdout);
    const c = await census(root);
    assert.equal(c.records.size, 20);
    assert.deepEqual(c.tmp, []);
  },
);
