/**
 * `npm run bench:engine`: container start latency of Shoal's engine against raw `runc run -d` on
 * equivalent bundles (the same overlay rootfs and the same config.json, made before timing) and
 * against `docker run -d` (Debian's docker.io, a private containerd + dockerd started and stopped
 * here, skipped when not installed). N containers (default 50) from one busybox image, serially
 * and CONC (default 4) at a time; medians per container and ratios. Then the resident memory of
 * one container's monitor and of the engine process. The last line is one JSON object.
 *
 * Environment: BENCH_N, BENCH_CONC, BENCH_DOCKER=0 to skip docker.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
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

const N = Number(process.env['BENCH_N'] ?? 50);
const CONC = Number(process.env['BENCH_CONC'] ?? 4);
const RUNC = '/usr/sbin/runc';
const CMD = ['sleep', '3600'];

const say = (s: string): void => void process.stdout.write(`${s}\n`);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;

interface Series {
  serial: number[];
  conc: number[];
  concWallMs: number;
}

/** Runs `fn(i)` for i < n, `conc` at a time, timing each call. */
async function timed(
  n: number,
  conc: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ lat: number[]; wall: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        await fn(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  return { lat, wall: performance.now() - t0 };
}

function exec(
  cmd: string,
  args: string[],
  opts: { stdio?: ('ignore' | 'pipe' | number)[]; env?: NodeJS.ProcessEnv } = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: opts.stdio ?? ['ignore', 'ignore', 'pipe'], env: opts.env });
    let err = '';
    c.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    c.on('error', reject);
    c.on('close', (code) =>
      code === 0 ? resolve(0) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`)),
    );
  });
}

function pssKb(pid: number): number | undefined {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

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
  const proc = mergeProcess({ image: 'busybox', cmd: CMD }, image.config);
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
        await runc.kill(rec.id, 'SIGKILL').catch(() => undefined);
        for (let k = 0; k < 100; k++) {
          const st = await runc.state(rec.id).catch(() => undefined);
          if (!st || st.status === 'stopped') break;
          await new Promise((r) => setTimeout(r, 10));
        }
        await runc.delete(rec.id, true).catch(() => undefined);
        await builder.release(rec).catch(() => undefined);
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
    return {
      shoal: { serial: sSer, conc: sCon, concWallMs: sWall },
      runc: { serial: rSer, conc: rCon, concWallMs: rWall },
      shimRssKb,
      shimPssKb,
      engineRssKb,
      removeMs: median(rm1.lat),
    };
  } finally {
    await sh.teardown().catch(() => undefined);
    await rc.teardown().catch(() => undefined);
    for (const c of await engine.list({ all: true })) await engine.remove(c.id, { force: true }).catch(() => undefined);
    await engine.close();
    removeCgroupParent(`/shoal-bench-${tag}`);
    removeCgroupParent(`/shoal-bench-runc-${tag}`);
  }
}

// ---- conmon (Debian's, the alternative monitor) ------------------------------------------------

/** Resident memory of conmon monitoring one running container on the same kind of bundle. */
async function benchConmon(
  root: string,
  images: ImageResolver,
): Promise<{ rssKb: number; pssKb: number } | { skipped: string }> {
  if (!existsSync('/usr/bin/conmon')) return { skipped: 'conmon is not installed' };
  const tag = randomBytes(3).toString('hex');
  const cgParent = `/shoal-bench-conmon-${tag}`;
  const builder = ociBundleBuilder({ dataRoot: join(root, 'conmon-data'), cgroupParent: cgParent });
  const image = await images.resolve('busybox');
  const id = `conmon-${tag}`;
  const d = join(root, 'conmon');
  const bundle = join(d, 'bundle');
  const stateDir = join(root, 'conmon-data', 'containers', id);
  const runcRoot = join(d, 'runc');
  await mkdir(bundle, { recursive: true });
  await mkdir(stateDir, { recursive: true });
  await mkdir(join(d, 'exit'), { recursive: true });
  await mkdir(join(d, 'sock'), { recursive: true });
  await mkdir(runcRoot, { recursive: true });
  const proc = mergeProcess({ image: 'busybox', cmd: CMD }, image.config);
  const req = {
    id,
    bundle,
    stateDir,
    layerDirs: image.layerDirs,
    process: proc,
    options: { image: 'busybox', cmd: CMD },
    hostname: id,
    cgroupsPath: `${cgParent}/${id}`,
  };
  await builder.prepare(req);
  const rec = { id, bundle, rootfs: join(bundle, 'rootfs'), cgroupsPath: req.cgroupsPath } as ContainerRecord;
  try {
    await exec('/usr/bin/conmon', [
      '--cid',
      id,
      '--cuuid',
      id,
      '-n',
      id,
      '-r',
      RUNC,
      '-b',
      bundle,
      '-p',
      join(d, 'pid'),
      '-l',
      `k8s-file:${join(d, 'ctr.log')}`,
      '--exit-dir',
      join(d, 'exit'),
      '--socket-dir-path',
      join(d, 'sock'),
      '--runtime-arg',
      `--root=${runcRoot}`,
      '--conmon-pidfile',
      join(d, 'conmon.pid'),
      '--log-level',
      'error',
    ]);
    // conmon returns before runc has created the container (no sync pipe given): wait for it
    for (let i = 0; i < 250 && !existsSync(join(d, 'pid')); i++) await new Promise((r) => setTimeout(r, 20));
    await exec(RUNC, ['--root', runcRoot, 'start', id]);
    await new Promise((r) => setTimeout(r, 200));
    const pid = Number(readFileSync(join(d, 'conmon.pid'), 'utf8').trim());
    return { rssKb: residentKb(pid) ?? NaN, pssKb: pssKb(pid) ?? NaN };
  } catch (err) {
    return { skipped: `conmon failed: ${String(err)}` };
  } finally {
    await exec(RUNC, ['--root', runcRoot, 'kill', id, 'KILL']).catch(() => undefined);
    for (let i = 0; i < 100 && !existsSync(join(d, 'exit', id)); i++) await new Promise((r) => setTimeout(r, 20));
    await exec(RUNC, ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
    await builder.release(rec).catch(() => undefined);
    removeCgroupParent(cgParent);
  }
}

// ---- docker ------------------------------------------------------------------------------------

async function benchDocker(
  root: string,
  layer: string,
): Promise<(Series & { shimRssKb: number }) | { skipped: string }> {
  if (process.env['BENCH_DOCKER'] === '0') return { skipped: 'BENCH_DOCKER=0' };
  if (!existsSync('/usr/sbin/dockerd') || !existsSync('/usr/bin/containerd'))
    return { skipped: "Debian's docker.io is not installed" };
  const dockerBin = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const d = join(root, 'docker');
  await mkdir(d, { recursive: true });
  const sock = join(d, 'containerd.sock');
  const cfg = join(d, 'containerd.toml');
  writeFileSync(
    cfg,
    [
      'version = 2',
      `root = "${d}/containerd-root"`,
      `state = "${d}/containerd-state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  writeFileSync(join(d, 'daemon.json'), '{}\n');
  const host = `unix://${d}/docker.sock`;
  const env = { ...process.env, DOCKER_HOST: host, DOCKER_API_VERSION: '1.41', DOCKER_CONFIG: join(d, 'cli') };
  const cgroupsBefore = existsSync('/sys/fs/cgroup/memory/docker');
  const procs: ChildProcess[] = [];
  const log = openSync(join(d, 'daemons.log'), 'a');
  const docker = (args: string[], stdio?: ('ignore' | 'pipe' | number)[]): Promise<number> =>
    exec(dockerBin, args, { env, stdio });
  try {
    procs.push(spawn('/usr/bin/containerd', ['--config', cfg], { stdio: ['ignore', log, log] }));
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    procs.push(
      spawn(
        '/usr/sbin/dockerd',
        [
          '--containerd',
          sock,
          '--data-root',
          `${d}/data`,
          '--exec-root',
          `${d}/exec`,
          '--pidfile',
          `${d}/docker.pid`,
          '-H',
          host,
          '--iptables=false',
          '--ip6tables=false',
          '--ip-forward=false',
          '--ip-masq=false',
          '--bridge=none',
          '--config-file',
          `${d}/daemon.json`,
          '--log-level',
          'error',
          '--cgroup-parent',
          '/shoal-bench-docker',
        ],
        { stdio: ['ignore', log, log] },
      ),
    );
    let up = false;
    for (let i = 0; i < 200 && !up; i++) {
      up = await docker(['version']).then(
        () => true,
        () => false,
      );
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    if (!up) return { skipped: `dockerd did not come up (see ${d}/daemons.log)` };
    // the same busybox layer as the others, imported as an image
    const tar = spawn('tar', ['-C', layer, '-c', '.'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const imp = spawn(dockerBin, ['import', '-', 'shoalbench/busybox:1'], {
      env,
      stdio: [tar.stdout, 'ignore', 'inherit'],
    });
    await new Promise((r) => imp.on('close', r));
    const run = (): Promise<number> => docker(['run', '-d', '--network', 'none', 'shoalbench/busybox:1', ...CMD]);
    const rmAll = async (): Promise<void> => {
      const r = spawnSync(dockerBin, ['ps', '-aq'], { env, encoding: 'utf8' });
      const ids = r.stdout.split('\n').filter(Boolean);
      if (ids.length) await docker(['rm', '-f', ...ids]);
    };
    await run();
    await rmAll();
    const serial = await timed(N, 1, run);
    let shimRssKb = NaN;
    const shims = spawnSync('pgrep', ['-f', `containerd-shim-runc-v2.*${sock}`], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean);
    if (shims[0]) shimRssKb = residentKb(Number(shims[0])) ?? NaN;
    await rmAll();
    const conc = await timed(N, CONC, run);
    await rmAll();
    return { serial: serial.lat, conc: conc.lat, concWallMs: conc.wall, shimRssKb };
  } finally {
    spawnSync(
      dockerBin,
      [
        'rm',
        '-f',
        ...spawnSync(dockerBin, ['ps', '-aq'], { env, encoding: 'utf8' }).stdout.split('\n').filter(Boolean),
      ],
      { env },
    );
    for (const p of procs.reverse()) {
      p.kill('SIGTERM');
      const done = await Promise.race([
        new Promise((r) => p.once('exit', () => r(true))),
        new Promise((r) => setTimeout(() => r(false), 10_000)),
      ]);
      if (!done) p.kill('SIGKILL');
    }
    closeSync(log);
    // leftover shims of our containerd, mounts under our dir, our cgroups
    const left = spawnSync('pgrep', ['-f', sock], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    for (const pid of left) spawnSync('kill', ['-9', pid]);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m.startsWith(d));
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
    removeCgroupParent('/shoal-bench-docker');
    if (!cgroupsBefore) removeCgroupParent('/docker');
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
