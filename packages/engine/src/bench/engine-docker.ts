/** The engine benchmark's docker part: a private containerd + dockerd, started and stopped here. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { removeCgroupParent } from '../container/test-support.js';
import { residentKb } from '../monitor/shim.js';
import { CMD, CONC, PAR, PAR_ROUNDS, exec, timed, type Series } from './bench-util.js';

const N = Number(process.env['BENCH_N'] ?? 50);

// ---- docker ------------------------------------------------------------------------------------

export async function benchDocker(
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
    // PAR concurrent `docker run -d`, as PAR clients would start them
    const parWallMs: number[] = [];
    for (let r = 0; r < PAR_ROUNDS; r++) {
      parWallMs.push((await timed(PAR, PAR, run)).wall);
      await rmAll();
    }
    return { serial: serial.lat, conc: conc.lat, concWallMs: conc.wall, parWallMs, shimRssKb };
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
    await removeCgroupParent('/shoal-bench-docker');
    if (!cgroupsBefore) await removeCgroupParent('/docker');
  }
}
