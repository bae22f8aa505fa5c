/**
 * `npm run bench:engine`: container start latency of Shoal's engine against raw `runc run -d` on
 * equivalent bundles (the same overlay rootfs and the same config.json, made before timing) and
 * against `docker run -d` (Debian's docker.io, a private containerd + dockerd started and stopped
 * here, skipped when not installed). N containers (default 50) from one busybox image, serially
 * and CONC (default 4) at a time; medians per container and ratios. Then the resident memory of
 * one container's monitor and of the engine process. The last line is one JSON object.
 *
 * Then PAR (default 20) containers created and started at once from one process (Shoal: one
 * engine, PAR concurrent `Engine.run`; raw runc: PAR concurrent `runc run -d` on prepared bundles;
 * docker: PAR concurrent `docker run -d`), wall time until all run, median of PAR_ROUNDS rounds.
 *
 * Environment: BENCH_N, BENCH_CONC, BENCH_PAR, BENCH_PAR_ROUNDS, BENCH_DOCKER=0 to skip docker.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine } from '../engine.js';
import { busyboxImage, removeCgroupParent } from '../container/test-support.js';
import { mergeProcess } from '../container/config.js';
import { ociBundleBuilder } from '../runtime/oci-bundle.js';
import { Runc } from '../runtime/runc.js';
import { residentKb } from '../monitor/shim.js';
import type { ContainerRecord } from '../container/types.js';
import type { ResolvedImage } from '../image/types.js';
import type { ImageResolver } from '../engine.js';
import {
  CMD,
  CONC,
  PAR,
  PAR_ROUNDS,
  RUNC,
  exec,
  median,
  pssKb,
  r1,
  r2,
  say,
  timed,
  type Series,
} from './bench-util.js';
import { benchConmon } from './engine-conmon.js';
import { benchDocker } from './engine-docker.js';

const N = Number(process.env['BENCH_N'] ?? 50);
// ---- Shoal and raw runc, interleaved -----------------------------------------------------------

interface Side {
  /** Starts container i (timed by the caller). */
  start(i: number): Promise<void>;
  /** Makes what `start(i)` needs outside the timed part (raw runc: the bundle). */
  prepare(i: number): Promise<void>;
  teardown(): Promise<void>;
}

function shoalSide(engine: Engine): Side & { ids: string[] } {
  const ids: string[] = [];
  return {
    ids,
    prepare: () => Promise.resolve(),
    async start() {
      ids.push(await engine.run({ image: 'busybox', cmd: CMD }));
    },
    async teardown() {
      await timed(ids.length, CONC, (i) => engine.remove(ids[i] ?? '', { force: true }));
      ids.length = 0;
    },
  };
}

function runcSide(root: string, image: ResolvedImage, cgParent: string): Side {
  const builder = ociBundleBuilder({ dataRoot: join(root, 'runc-data'), cgroupParent: cgParent });
  const runc = new Runc(RUNC, join(root, 'runc-root'));
  const proc = mergeProcess({ image: 'busybox', cmd: CMD }, image.config, 'bench');
  const recs = new Map<number, ContainerRecord>();
  let round = 0;
  return {
    async prepare(i) {
      const id = `bench-${round}-${i}`;
      const bundle = join(root, 'runc-bundles', id);
      const stateDir = join(root, 'runc-data', 'containers', id);
      await mkdir(bundle, { recursive: true });
      await mkdir(stateDir, { recursive: true });
      const req = {
        id,
        bundle,
        stateDir,
        layerDirs: image.layerDirs,
        imageConfig: image.config,
        process: proc,
        options: { image: 'busybox', cmd: CMD },
        hostname: id,
        cgroupsPath: `${cgParent}/${id}`,
      };
      await builder.prepare(req);
      recs.set(i, {
        id,
        bundle,
        rootfs: join(bundle, 'rootfs'),
        cgroupsPath: req.cgroupsPath,
        logPath: join(stateDir, 'container.log'),
      } as ContainerRecord);
    },
    async start(i) {
      const rec = recs.get(i);
      if (!rec) throw new Error(`bundle ${i} not prepared`);
      const fd = openSync(rec.logPath, 'a');
      try {
        await exec(
          RUNC,
          ['--root', runc.root, 'run', '-d', '--bundle', rec.bundle, '--pid-file', `${rec.bundle}/pid`, rec.id],
          { stdio: ['ignore', fd, fd] },
        );
      } finally {
        closeSync(fd);
      }
    },
    async teardown() {
      const all = [...recs.values()];
      await timed(all.length, CONC, async (i) => {
        const rec = all[i];
        if (!rec) return;
        await runc.kill(rec.id, 'SIGKILL');
        for (let k = 0; k < 100; k++) {
          const st = await runc.state(rec.id);
          if (!st || st.status === 'stopped') break;
          await new Promise((r) => setTimeout(r, 10));
        }
        await runc.delete(rec.id, true);
        await builder.release(rec);
      });
      recs.clear();
      round++;
    },
  };
}

interface Pair {
  shoal: Series;
  runc: Series;
  shimRssKb: number;
  shimPssKb: number;
  engineRssKb: number;
  removeMs: number;
}

async function benchShoalAndRunc(root: string, images: ImageResolver): Promise<Pair> {
  const tag = randomBytes(3).toString('hex');
  const engine = await Engine.open({
    dataRoot: join(root, 'shoal-data'),
    runRoot: join(root, 'shoal-run'),
    images,
    cgroupParent: `/shoal-bench-${tag}`,
  });
  const sh = shoalSide(engine);
  const rc = runcSide(root, await images.resolve('busybox'), `/shoal-bench-runc-${tag}`);
  try {
    // warm-up
    for (let i = 0; i < 3; i++) {
      await rc.prepare(i);
      await rc.start(i);
      await sh.start(i);
    }
    await sh.teardown();
    await rc.teardown();
    // serial, alternating one Shoal start and one runc start so both see the same machine
    for (let i = 0; i < N; i++) await rc.prepare(i);
    const sSer: number[] = [];
    const rSer: number[] = [];
    for (let i = 0; i < N; i++) {
      let t = performance.now();
      await sh.start(i);
      sSer.push(performance.now() - t);
      t = performance.now();
      await rc.start(i);
      rSer.push(performance.now() - t);
    }
    const one = await engine.inspect(sh.ids[0] ?? '');
    const shimRssKb = residentKb(one.shimPid ?? 0) ?? NaN;
    const shimPssKb = pssKb(one.shimPid ?? 0) ?? NaN;
    const engineRssKb = Math.round(process.memoryUsage().rss / 1024);
    const ids = [...sh.ids];
    const rm1 = await timed(ids.length, CONC, (i) => engine.remove(ids[i] ?? '', { force: true }));
    sh.ids.length = 0;
    await rc.teardown();
    // CONC at a time: blocks of 10 containers, Shoal and runc alternating
    const sCon: number[] = [];
    const rCon: number[] = [];
    let sWall = 0;
    let rWall = 0;
    for (let i = 0; i < N; i++) await rc.prepare(i);
    for (let b = 0; b < N; b += 10) {
      const n = Math.min(10, N - b);
      const s = await timed(n, CONC, (i) => sh.start(b + i));
      const r = await timed(n, CONC, (i) => rc.start(b + i));
      sCon.push(...s.lat);
      rCon.push(...r.lat);
      sWall += s.wall;
      rWall += r.wall;
    }
    await sh.teardown();
    await rc.teardown();
    // PAR at once from this process, Shoal and runc alternating round by round
    const sPar: number[] = [];
    const rPar: number[] = [];
    for (let r = 0; r < PAR_ROUNDS; r++) {
      for (let i = 0; i < PAR; i++) await rc.prepare(i);
      sPar.push((await timed(PAR, PAR, (i) => sh.start(i))).wall);
      rPar.push((await timed(PAR, PAR, (i) => rc.start(i))).wall);
      await sh.teardown();
      await rc.teardown();
    }
    return {
      shoal: { serial: sSer, conc: sCon, concWallMs: sWall, parWallMs: sPar },
      runc: { serial: rSer, conc: rCon, concWallMs: rWall, parWallMs: rPar },
      shimRssKb,
      shimPssKb,
      engineRssKb,
      removeMs: median(rm1.lat),
    };
  } finally {
    // after a failure: clean up what is left, reporting (not hiding) what cannot be
    const report = (err: unknown): void => say(`cleanup: ${String(err)}`);
    await sh.teardown().catch(report);
    await rc.teardown().catch(report);
    for (const c of await engine.list({ all: true })) await engine.remove(c.id, { force: true }).catch(report);
    await engine.close();
    await removeCgroupParent(`/shoal-bench-${tag}`);
    await removeCgroupParent(`/shoal-bench-runc-${tag}`);
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync('/tmp/shoal-bench-');
  try {
    const images = busyboxImage(root);
    const layer = join(root, 'layer');
    say(
      `engine benchmark: ${N} busybox containers (${CMD.join(' ')}), serial and ${CONC} at a time; start = create+start until running`,
    );
    const pair = await benchShoalAndRunc(root, images);
    const shoal = {
      ...pair.shoal,
      shimRssKb: pair.shimRssKb,
      shimPssKb: pair.shimPssKb,
      engineRssKb: pair.engineRssKb,
      removeMs: pair.removeMs,
    };
    const runc = pair.runc;
    say(
      `shoal  serial median ${r1(median(shoal.serial))} ms   x${CONC} median ${r1(median(shoal.conc))} ms (wall ${Math.round(shoal.concWallMs)} ms)`,
    );
    say(
      `runc   serial median ${r1(median(runc.serial))} ms   x${CONC} median ${r1(median(runc.conc))} ms (wall ${Math.round(runc.concWallMs)} ms)   [runc run -d on prepared bundles]`,
    );
    const conmon = await benchConmon(root, images);
    const docker = await benchDocker(root, layer);
    if ('skipped' in docker) say(`docker skipped: ${docker.skipped}`);
    else
      say(
        `docker serial median ${r1(median(docker.serial))} ms   x${CONC} median ${r1(median(docker.conc))} ms (wall ${Math.round(docker.concWallMs)} ms)`,
      );
    const ratio = (a: number[], b: number[] | undefined): number | null => (b ? r2(median(a) / median(b)) : null);
    const dk = 'skipped' in docker ? undefined : docker;
    say(
      `ratios: shoal/runc serial ${ratio(shoal.serial, runc.serial)}  x${CONC} ${ratio(shoal.conc, runc.conc)};  shoal/docker serial ${ratio(shoal.serial, dk?.serial) ?? 'n/a'}  x${CONC} ${ratio(shoal.conc, dk?.conc) ?? 'n/a'}`,
    );
    say(
      `memory: shoal-shim RSS ${r2(shoal.shimRssKb / 1024)} MB (PSS ${r2(shoal.shimPssKb / 1024)} MB)   engine process RSS ${r1(shoal.engineRssKb / 1024)} MB   docker containerd-shim RSS ${dk ? r2(dk.shimRssKb / 1024) : 'n/a'} MB`,
    );
    if ('skipped' in conmon) say(`conmon skipped: ${conmon.skipped}`);
    else say(`monitor alternative: conmon RSS ${r2(conmon.rssKb / 1024)} MB (PSS ${r2(conmon.pssKb / 1024)} MB)`);
    say(`shoal remove (kill+delete+umount) median ${r1(shoal.removeMs)} ms`);
    const par = (x: { parWallMs: number[] } | undefined): number | null => (x ? Math.round(median(x.parWallMs)) : null);
    say(
      `${PAR} at once from one process, wall (median of ${PAR_ROUNDS}): shoal ${par(shoal)} ms   runc ${par(runc)} ms   docker ${par(dk) ?? 'n/a'} ms`,
    );
    const figures = {
      n: N,
      concurrency: CONC,
      shoal_start_ms: r1(median(shoal.serial)),
      runc_start_ms: r1(median(runc.serial)),
      docker_start_ms: dk ? r1(median(dk.serial)) : null,
      shoal_start_ms_conc: r1(median(shoal.conc)),
      runc_start_ms_conc: r1(median(runc.conc)),
      docker_start_ms_conc: dk ? r1(median(dk.conc)) : null,
      shoal_wall_ms_conc: Math.round(shoal.concWallMs),
      runc_wall_ms_conc: Math.round(runc.concWallMs),
      docker_wall_ms_conc: dk ? Math.round(dk.concWallMs) : null,
      start_ratio_vs_runc: ratio(shoal.serial, runc.serial),
      start_ratio_vs_runc_conc: ratio(shoal.conc, runc.conc),
      start_ratio_vs_docker: ratio(shoal.serial, dk?.serial),
      start_ratio_vs_docker_conc: ratio(shoal.conc, dk?.conc),
      monitor_rss_mb: r2(shoal.shimRssKb / 1024),
      monitor_pss_mb: r2(shoal.shimPssKb / 1024),
      engine_rss_mb: r1(shoal.engineRssKb / 1024),
      docker_shim_rss_mb: dk ? r2(dk.shimRssKb / 1024) : null,
      conmon_rss_mb: 'skipped' in conmon ? null : r2(conmon.rssKb / 1024),
      conmon_pss_mb: 'skipped' in conmon ? null : r2(conmon.pssKb / 1024),
      shoal_remove_ms: r1(shoal.removeMs),
      parallel: PAR,
      shoal_parallel_wall_ms: par(shoal),
      runc_parallel_wall_ms: par(runc),
      docker_parallel_wall_ms: par(dk),
      parallel20_ratio_vs_docker: dk ? r2(median(shoal.parWallMs) / median(dk.parWallMs)) : null,
      parallel_ratio_vs_runc: r2(median(shoal.parWallMs) / median(runc.parWallMs)),
    };
    say(JSON.stringify(figures));
  } finally {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
      const mp = line.split(' ')[4];
      if (mp?.startsWith(root)) spawnSync('umount', ['-l', mp]);
    }
    await rm(root, { recursive: true, force: true });
  }
}

await main();
