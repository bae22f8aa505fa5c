/**
 * `shoal container ...`: a docker-like local CLI on the embedded engine, daemonless (as podman):
 * every call opens the engine on the data root, acts and exits. Container state is in files the
 * engine updates under an flock, so this CLI and a running shoald never corrupt each other's
 * state; containers are watched by their own monitor (shoal-shim), not by this process.
 * Health checks run only while an engine process runs (shoald, or `container run` without -d).
 */
import type { Command } from 'commander';
import { InvalidArgumentError, hasCode } from '@shoal/common';
import {
  DEFAULT_ENGINE_ROOT,
  Engine,
  type BindMount,
  type ContainerCreateOptions,
  type ContainerRecord,
  type HealthcheckConfig,
  type ImageResolver,
  type TmpfsMount,
} from '@shoal/engine';

interface GlobalOpts {
  dataRoot?: string;
  runRoot?: string;
  cgroupParent?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** `30s`, `1m30s`, `500ms`, `2h`, or plain seconds → milliseconds. */
export function parseDuration(s: string, what: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let used = 0;
  for (const m of s.matchAll(re)) {
    const n = Number(m[1]);
    total += n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    used += m[0].length;
  }
  if (used !== s.length || used === 0) throw new InvalidArgumentError(`${what}: invalid duration ${JSON.stringify(s)}`);
  return total;
}

/** `64m`, `1g`, `512k`, `100b` or bytes → bytes. */
export function parseBytes(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(s.trim());
  if (!m) throw new InvalidArgumentError(`${what}: invalid size ${JSON.stringify(s)}`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
    (m[2] ?? '').toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'
  ];
  return Math.round(Number(m[1]) * mult);
}

function parseVolume(v: string): BindMount {
  const parts = v.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw new InvalidArgumentError(`--volume ${v}: expected /host/path:/container/path[:ro|rw]`);
  }
  if (parts[2] && parts[2] !== 'ro' && parts[2] !== 'rw')
    throw new InvalidArgumentError(`--volume ${v}: mode must be ro or rw`);
  return { source: parts[0], target: parts[1], readOnly: parts[2] === 'ro' };
}

function parseTmpfs(v: string): TmpfsMount {
  const [target, opts] = [v.split(':')[0] ?? '', v.split(':').slice(1).join(':')];
  return { target, options: opts ? opts.split(',') : [] };
}

let images: ImageResolver | undefined;

/**
 * Sets where `container run/create` get images from. Default: the engine's image service on the
 * same data root. Tests and embedders pass their own.
 */
export function useImages(resolver: ImageResolver | undefined): void {
  images = resolver;
}

/**
 * Opens the engine. `collector`: `run` in the foreground collects exits and runs health checks
 * (unless shoald holds that role). `recover: false` for commands that only look (ls, inspect,
 * logs, stats): they change nothing, not even what crashed processes left.
 */
function openEngine(o: GlobalOpts, collector = false, recover = true): Promise<Engine> {
  return Engine.open({
    dataRoot: o.dataRoot ?? process.env['SHOAL_DATA_ROOT'] ?? DEFAULT_ENGINE_ROOT,
    runRoot: o.runRoot ?? process.env['SHOAL_RUN_ROOT'] ?? '/run/shoal/engine',
    collector,
    recover,
    ...(o.cgroupParent ? { cgroupParent: o.cgroupParent } : {}),
    ...(images ? { images } : {}),
  });
}

function withRoots(cmd: Command): Command {
  return cmd
    .option(
      '--data-root <dir>',
      `engine state: images and containers (default $SHOAL_DATA_ROOT or ${DEFAULT_ENGINE_ROOT})`,
    )
    .option('--run-root <dir>', 'runtime directory on tmpfs (default /run/shoal/engine)')
    .option('--cgroup-parent <path>', 'parent cgroup of the containers (default /shoal)');
}

interface RunFlags extends GlobalOpts {
  detach?: boolean;
  name?: string;
  env: string[];
  rm?: boolean;
  volume: string[];
  tmpfs: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  readOnly?: boolean;
  entrypoint?: string;
  workdir?: string;
  user?: string;
  hostname?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthcheck?: boolean;
  stopSignal?: string;
  stopTimeout?: string;
  label: string[];
}

function createOptions(image: string, cmd: string[], f: RunFlags): ContainerCreateOptions {
  const o: ContainerCreateOptions = { image };
  if (cmd.length) o.cmd = cmd;
  if (f.name) o.name = f.name;
  if (f.env.length) o.env = f.env;
  if (f.rm) o.autoRemove = true;
  if (f.volume.length) o.binds = f.volume.map(parseVolume);
  if (f.tmpfs.length) o.tmpfs = f.tmpfs.map(parseTmpfs);
  if (f.memory) o.memoryBytes = parseBytes(f.memory, '--memory');
  if (f.cpus) {
    o.cpus = Number(f.cpus);
    if (!(o.cpus > 0)) throw new InvalidArgumentError(`--cpus ${f.cpus}: must be a number > 0`);
  }
  if (f.pidsLimit) o.pidsLimit = Number(f.pidsLimit);
  if (f.readOnly) o.readOnly = true;
  if (f.entrypoint !== undefined) o.entrypoint = f.entrypoint ? [f.entrypoint] : [];
  if (f.workdir) o.workdir = f.workdir;
  if (f.user) o.user = f.user;
  if (f.hostname) o.hostname = f.hostname;
  if (f.stopSignal) o.stopSignal = f.stopSignal;
  if (f.stopTimeout) o.stopTimeoutMs = Number(f.stopTimeout) * 1000;
  if (f.label.length)
    o.labels = Object.fromEntries(f.label.map((l) => [l.split('=')[0] ?? l, l.split('=').slice(1).join('=')]));
  if (f.healthcheck === false) o.healthcheck = { test: ['NONE'] };
  else if (f.healthCmd) {
    const hc: HealthcheckConfig = { test: ['CMD-SHELL', f.healthCmd] };
    if (f.healthInterval) hc.intervalMs = parseDuration(f.healthInterval, '--health-interval');
    if (f.healthTimeout) hc.timeoutMs = parseDuration(f.healthTimeout, '--health-timeout');
    if (f.healthRetries) hc.retries = Number(f.healthRetries);
    if (f.healthStartPeriod) hc.startPeriodMs = parseDuration(f.healthStartPeriod, '--health-start-period');
    o.healthcheck = hc;
  }
  return o;
}

function runFlags(cmd: Command): Command {
  return withRoots(cmd)
    .option('--name <name>', 'container name')
    .option('-e, --env <KEY=value>', 'environment variable (repeatable)', collect, [])
    .option('-l, --label <k=v>', 'label (repeatable)', collect, [])
    .option('-v, --volume <src:dst[:ro]>', 'bind mount (repeatable)', collect, [])
    .option('--tmpfs <path[:opts]>', 'tmpfs mount (repeatable)', collect, [])
    .option('-m, --memory <size>', 'memory limit (e.g. 64m)')
    .option('--cpus <n>', 'CPU limit (e.g. 0.5)')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--entrypoint <prog>', 'override the image entrypoint')
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <uid[:gid]>', 'user')
    .option('-h, --hostname <name>', 'hostname')
    .option('--health-cmd <cmd>', 'health check command (run with /bin/sh -c)')
    .option('--health-interval <d>', 'time between checks (e.g. 30s)')
    .option('--health-timeout <d>', 'time a check may take')
    .option('--health-retries <n>', 'failures in a row before unhealthy')
    .option('--health-start-period <d>', 'grace period at start')
    .option('--no-healthcheck', 'disable the image health check')
    .option('--stop-signal <sig>', 'signal for stop (default SIGTERM)')
    .option('--stop-timeout <secs>', 'grace period of stop before SIGKILL')
    .option('--rm', 'remove the container when it exits')
    .argument('<image>', 'image reference')
    .argument('[cmd...]', 'command and arguments')
    .passThroughOptions();
}

function printRecordLine(r: {
  id: string;
  name: string;
  image: string;
  status: string;
  command: string;
  health?: string;
  exitCode?: number;
}): string {
  const status =
    r.status === 'exited' ? `exited (${r.exitCode ?? '?'})` : r.health ? `${r.status} (${r.health})` : r.status;
  const cmd = r.command.length > 24 ? `${r.command.slice(0, 21)}...` : r.command;
  return [
    r.id.slice(0, 12),
    r.image.padEnd(24).slice(0, 24),
    JSON.stringify(cmd).padEnd(26),
    status.padEnd(20),
    r.name,
  ].join('  ');
}

async function streamLogs(
  engine: Engine,
  id: string,
  opts: { follow?: boolean; tail?: number; since?: string; timestamps?: boolean },
): Promise<void> {
  for await (const e of engine.logs(id, { follow: opts.follow, tail: opts.tail, since: opts.since })) {
    const out = e.stream === 'stderr' ? process.stderr : process.stdout;
    const text = Buffer.concat([
      opts.timestamps ? Buffer.from(`${e.time} `) : Buffer.alloc(0),
      e.line,
      Buffer.from(e.partial ? '' : '\n'),
    ]);
    if (!out.write(text)) await new Promise((r) => out.once('drain', r));
  }
}

/** Like `docker run`: pull the image when the local store lacks it (only with the local image service). */
async function pullIfMissing(engine: Engine, ref: string): Promise<void> {
  if (images) return;
  try {
    await engine.images().resolve(ref);
  } catch (err) {
    if (!hasCode(err, 'ENGINE_IMAGE_NOT_FOUND')) throw err;
    process.stderr.write(`Unable to find image '${ref}' locally; pulling\n`);
    await engine.localImages().pull(ref);
  }
}

export function registerContainer(program: Command): void {
  const c = program
    .command('container')
    .description('Run and manage containers on this host (no cluster needed)')
    .enablePositionalOptions();

  runFlags(
    c.command('run').description('Create and start a container; without -d stream its output and exit with its code'),
  )
    .option('-d, --detach', 'run in the background and print the id')
    .action(async (image: string, cmd: string[], f: RunFlags) => {
      const opts = createOptions(image, cmd, f);
      const engine = await openEngine(f, !f.detach);
      try {
        await pullIfMissing(engine, image);
        const id = await engine.run(opts);
        if (f.detach) {
          process.stdout.write(`${id}\n`);
          return;
        }
        const forward = (sig: NodeJS.Signals): void => void engine.kill(id, sig).catch(() => undefined);
        process.on('SIGINT', forward);
        process.on('SIGTERM', forward);
        try {
          await streamLogs(engine, id, { follow: true });
          const exit = await engine.wait(id);
          process.exitCode = exit.exitCode;
          if (exit.oomKilled) process.stderr.write(`shoal: container ${id.slice(0, 12)} was OOM-killed\n`);
        } finally {
          process.off('SIGINT', forward);
          process.off('SIGTERM', forward);
        }
        if (f.rm) await engine.remove(id, { force: true }).catch(() => undefined);
      } finally {
        await engine.close();
      }
    });

  runFlags(c.command('create').description('Create a container without starting it')).action(
    async (image: string, cmd: string[], f: RunFlags) => {
      const engine = await openEngine(f);
      await pullIfMissing(engine, image);
      process.stdout.write(`${await engine.create(createOptions(image, cmd, f))}\n`);
      await engine.close();
    },
  );

  withRoots(c.command('start').description('Start created containers').argument('<container...>')).action(
    async (refs: string[], f: GlobalOpts) => {
      const engine = await openEngine(f);
      for (const r of refs) {
        await engine.start(r);
        process.stdout.write(`${r}\n`);
      }
    },
  );

  withRoots(c.command('ls').alias('ps').description('List containers'))
    .option('-a, --all', 'also stopped containers')
    .option('-q, --quiet', 'only ids')
    .action(async (f: GlobalOpts & { all?: boolean; quiet?: boolean }) => {
      const engine = await openEngine(f, false, false);
      const list = await engine.list({ all: f.all });
      if (f.quiet) {
        for (const r of list) process.stdout.write(`${r.id.slice(0, 12)}\n`);
        return;
      }
      process.stdout.write(
        `${['CONTAINER ID', 'IMAGE'.padEnd(24), 'COMMAND'.padEnd(26), 'STATUS'.padEnd(20), 'NAME'].join('  ')}\n`,
      );
      for (const r of list) process.stdout.write(`${printRecordLine(r)}\n`);
    });

  withRoots(c.command('logs').description("Show a container's output").argument('<container>'))
    .option('-f, --follow', 'follow until the container exits')
    .option('-n, --tail <n>', 'only the last n lines')
    .option('--since <time>', 'only lines since a time (RFC3339 or unix seconds) or a duration ago (10m)')
    .option('-t, --timestamps', 'show timestamps')
    .action(
      async (
        ref: string,
        f: GlobalOpts & { follow?: boolean; tail?: string; since?: string; timestamps?: boolean },
      ) => {
        const engine = await openEngine(f, false, false);
        let since = f.since;
        if (since && /^\d+(\.\d+)?(ms|s|m|h)+/.test(since) && !/^\d+(\.\d+)?$/.test(since)) {
          since = new Date(Date.now() - parseDuration(since, '--since')).toISOString();
        }
        const tail = f.tail === undefined || f.tail === 'all' ? undefined : Number(f.tail);
        await streamLogs(engine, ref, { follow: f.follow, tail, since, timestamps: f.timestamps });
      },
    );

  withRoots(
    c
      .command('stop')
      .description('Stop containers (stop signal, grace period, then SIGKILL)')
      .argument('<container...>'),
  )
    .option('-t, --time <secs>', 'grace period in seconds')
    .option('-s, --signal <sig>', 'signal to send first')
    .action(async (refs: string[], f: GlobalOpts & { time?: string; signal?: string }) => {
      const engine = await openEngine(f);
      await Promise.all(
        refs.map(async (r) => {
          await engine.stop(r, {
            timeoutMs: f.time === undefined ? undefined : Number(f.time) * 1000,
            signal: f.signal,
          });
          process.stdout.write(`${r}\n`);
        }),
      );
    });

  withRoots(c.command('kill').description('Send a signal to containers').argument('<container...>'))
    .option('-s, --signal <sig>', 'signal (default SIGKILL)', 'SIGKILL')
    .action(async (refs: string[], f: GlobalOpts & { signal: string }) => {
      const engine = await openEngine(f);
      for (const r of refs) {
        await engine.kill(r, f.signal);
        process.stdout.write(`${r}\n`);
      }
    });

  withRoots(c.command('rm').description('Remove containers').argument('<container...>'))
    .option('-f, --force', 'kill running containers first')
    .action(async (refs: string[], f: GlobalOpts & { force?: boolean }) => {
      const engine = await openEngine(f);
      for (const r of refs) {
        await engine.remove(r, { force: f.force });
        process.stdout.write(`${r}\n`);
      }
    });

  withRoots(
    c.command('wait').description('Wait for containers to exit and print their exit codes').argument('<container...>'),
  ).action(async (refs: string[], f: GlobalOpts) => {
    const engine = await openEngine(f);
    for (const r of refs) process.stdout.write(`${(await engine.wait(r)).exitCode}\n`);
  });

  withRoots(c.command('inspect').description('Show containers as JSON').argument('<container...>')).action(
    async (refs: string[], f: GlobalOpts) => {
      const engine = await openEngine(f, false, false);
      const out: ContainerRecord[] = [];
      for (const r of refs) out.push(await engine.inspect(r));
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    },
  );

  withRoots(c.command('stats').description('CPU and memory of running containers').argument('<container...>')).action(
    async (refs: string[], f: GlobalOpts) => {
      const engine = await openEngine(f, false, false);
      for (const r of refs) process.stdout.write(`${JSON.stringify({ container: r, ...(await engine.stats(r)) })}\n`);
    },
  );

  withRoots(
    c.command('exec').description('Run a command in a running container').argument('<container>').argument('<cmd...>'),
  )
    .option('-e, --env <KEY=value>', 'environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <uid[:gid]>', 'user')
    .passThroughOptions()
    .action(async (ref: string, cmd: string[], f: GlobalOpts & { env: string[]; workdir?: string; user?: string }) => {
      const engine = await openEngine(f);
      const r = await engine.exec(ref, cmd, { inheritStdio: true, env: f.env, cwd: f.workdir, user: f.user });
      process.exitCode = r.exitCode;
    });
}
