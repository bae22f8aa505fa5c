// kill -9 of the CLI at random points of `container run -d` and `container rm -f` (issue 7,
// defect 6). After every killed run the name is free again or held by a container that runs.
// After all rounds, recovery (an engine opened as shoald opens it) leaves every record running
// and adoptable or gone, and nothing else: no mount, cgroup, bundle, runc state, temp file or name
// without its container. Rounds: SHOAL_KILL_FUZZ_ROUNDS (default 15; the issue asks for 50, run
// locally with SHOAL_KILL_FUZZ_ROUNDS=50). The seed is random unless SHOAL_KILL_FUZZ_SEED is set,
// and every failure message carries it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@shoal/common';
import { cliEnv, census, openRoot, processAlive, shoal, spawnShoal, type CliResult } from './engine-cli-support.js';

const ROUNDS = Number(process.env['SHOAL_KILL_FUZZ_ROUNDS'] ?? 15);
const SEED = Number(process.env['SHOAL_KILL_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded PRNG in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

async function timedRun(args: string[]): Promise<{ ms: number; r: CliResult }> {
  const t0 = performance.now();
  const r = await shoal(args);
  return { ms: performance.now() - t0, r };
}

test(`kill -9 of the CLI during run -d and rm: ${ROUNDS} rounds, seed ${SEED}`, { timeout: 900_000 }, async (t) => {
  const seedNote = `(seed ${SEED}: rerun with SHOAL_KILL_FUZZ_SEED=${SEED} SHOAL_KILL_FUZZ_ROUNDS=${ROUNDS})`;
  t.diagnostic(`kill fuzz seed ${SEED}, ${ROUNDS} rounds`);
  const rnd = prng(SEED);
  const env = await cliEnv(t);
  const root = await env.root();
  const tag = randomBytes(3).toString('hex');
  const run = (name: string): string[] => [
    'container',
    'run',
    ...root.flags,
    '-d',
    '--name',
    name,
    env.image,
    'sleep',
    '1000',
  ];

  // calibration (medians of three): CLI start-up (ls), a whole run -d and a whole rm -f
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1] ?? 0;
  const lsT: number[] = [];
  const runT: number[] = [];
  const rmT: number[] = [];
  for (let i = 0; i < 3; i++) {
    lsT.push((await timedRun(['container', 'ls', ...root.flags])).ms);
    const r = await timedRun(run(`kf-${tag}-cal`));
    assert.equal(r.r.code, 0, r.r.stderr);
    runT.push(r.ms);
    const d = await timedRun(['container', 'rm', ...root.flags, '-f', `kf-${tag}-cal`]);
    assert.equal(d.r.code, 0, d.r.stderr);
    rmT.push(d.ms);
  }
  const ls = { ms: median(lsT) };
  const r0 = { ms: median(runT) };
  const rm0 = { ms: median(rmT) };
  t.diagnostic(
    `calibration: ls ${Math.round(ls.ms)} ms, run -d ${Math.round(r0.ms)} ms, rm -f ${Math.round(rm0.ms)} ms`,
  );

  const running: string[] = [];
  const idOf = new Map<string, string>();
  let killedRuns = 0;
  let killedRms = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const doRm = running.length > 0 && rnd() < 0.4;
    const name = doRm ? (running.splice(Math.floor(rnd() * running.length), 1)[0] ?? '') : `kf-${tag}-${round}`;
    const args = doRm ? ['container', 'rm', ...root.flags, '-f', name] : run(name);
    // half of the kills land at a random time after the CLI started; the other half at a random
    // time after the engine first touched the container (a record appeared, or the record changed)
    const work = Math.max(250, (doRm ? rm0.ms : r0.ms) - ls.ms);
    const watched = doRm ? join(root.dataRoot, 'containers', idOf.get(name) ?? '') : join(root.dataRoot, 'containers');
    const byEvent = rnd() < 0.5;
    const delay = byEvent ? rnd() * work * 1.2 : ls.ms * 0.6 + rnd() * (ls.ms * 0.4 + work * 1.2);
    const { child, done } = spawnShoal(args);
    let timer: NodeJS.Timeout | undefined;
    let watcher: FSWatcher | undefined;
    if (byEvent) {
      watcher = watch(watched, () => {
        watcher?.close();
        timer = setTimeout(() => child.kill('SIGKILL'), delay);
      });
    } else timer = setTimeout(() => child.kill('SIGKILL'), delay);
    const res = await done;
    watcher?.close();
    clearTimeout(timer);
    const killed = res.signal === 'SIGKILL';
    if (killed) {
      if (doRm) killedRms++;
      else killedRuns++;
    } else {
      assert.equal(res.code, 0, `round ${round}: ${args.join(' ')}: ${res.stderr} ${seedNote}`);
    }
    if (doRm) continue;
    // the name is free again, or held by a container that runs (or is still being made by its shim)
    const again = await shoal(run(name));
    if (again.code === 0) {
      idOf.set(name, again.stdout.trim());
      running.push(name);
      continue;
    }
    assert.match(again.stderr, /ENGINE_NAME_IN_USE/, `round ${round} (killed ${killed}): ${again.stderr} ${seedNote}`);
    const status = await waitFor(
      async () => {
        const r = await shoal(['container', 'inspect', ...root.flags, name]);
        assert.equal(r.code, 0, `round ${round}: inspect ${name}: ${r.stderr} ${seedNote}`);
        const rec = (JSON.parse(r.stdout) as { State: { Status: string }; Id: string }[])[0];
        idOf.set(name, rec?.Id ?? '');
        return rec?.State.Status === 'created' ? undefined : rec?.State.Status;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `${name} to leave "created" ${seedNote}` },
    );
    assert.equal(status, 'running', `round ${round}: ${name} holds its name but is ${status} ${seedNote}`);
    running.push(name);
  }
  t.diagnostic(`killed ${killedRuns} run -d and ${killedRms} rm -f`);

  // recovery, as shoald does it when it starts; then every record runs (and is adopted) or is gone
  const e = await openRoot(root, { collector: true });
  t.after(() => e.close());
  const live = await waitFor(
    async () => {
      const recs = await Promise.all([...(await census(root)).records.keys()].map((id) => e.inspect(id)));
      return recs.every((r) => r.status === 'running' && processAlive(r.shimPid, r.shimStart)) ? recs : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `every record running or gone ${seedNote}` },
  );
  const c = await census(root);
  const ids = new Set(live.map((r) => r.id));
  assert.deepEqual(c.tmp, [], `temp files ${seedNote}`);
  assert.deepEqual(
    [...c.names].sort(),
    live.map((r) => [r.name, r.id]).sort(),
    `names are held exactly by the live containers ${seedNote}`,
  );
  assert.deepEqual(
    c.mounts.sort(),
    live.map((r) => r.rootfs).sort(),
    `mounts: one rootfs per live container ${seedNote}`,
  );
  assert.deepEqual([...c.cgroups].sort(), [...ids].sort(), `cgroups ${seedNote}`);
  assert.deepEqual([...c.bundles].sort(), [...ids].sort(), `bundles ${seedNote}`);
  assert.deepEqual([...c.runc].sort(), [...ids].sort(), `runc state ${seedNote}`);
  for (const r of live) assert.equal((await e.runc.state(r.id))?.status, 'running', `${r.name} ${seedNote}`);

  // adoptable: stopped and removed through the CLI, and then nothing at all is left
  for (const r of live) {
    const stop = await shoal(['container', 'stop', ...root.flags, '-t', '1', r.name]);
    assert.equal(stop.code, 0, `stop ${r.name}: ${stop.stderr} ${seedNote}`);
    const rm = await shoal(['container', 'rm', ...root.flags, r.name]);
    assert.equal(rm.code, 0, `rm ${r.name}: ${rm.stderr} ${seedNote}`);
  }
  const empty = await census(root);
  assert.deepEqual(
    {
      ...empty,
      records: [...empty.records],
      names: [...empty.names],
      cgroups: [...empty.cgroups],
      bundles: [...empty.bundles],
      runc: [...empty.runc],
    },
    { records: [], names: [], tmp: [], mounts: [], cgroups: [], bundles: [], runc: [] },
    `nothing left after removing everything ${seedNote}`,
  );
});
