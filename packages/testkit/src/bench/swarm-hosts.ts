/**
 * Docker Swarm (Debian docker.io 20.10) on the lab's layout, for the yardstick side of
 * `npm run bench -- cluster`: each host is a network namespace `sbw-hN` whose `eth0` is a veth
 * to the bridge `sbw-br0` in the root namespace, running its own containerd and dockerd (own
 * config, data root, exec root, sockets and cgroup parent, hostname `sbw-hN` in a private UTS
 * namespace). Processes enter the namespace with `nsenter --net` (not `ip netns exec`, which
 * mounts a fresh /sys and hides the cgroup v1 mounts dockerd needs).
 *
 * Addresses: everything is in 198.18.0.0/24, the block lab underlays never take, and nothing
 * in the labs' overlay pool 198.19.128.0/18 or in 10/8, 172.16/12, 192.168/16:
 * - underlay `eth0` 198.18.0.13N/26 (the bridge itself has no address: the root namespace
 *   never routes to the hosts, and the block does not clash with `swarm-multi.sh`'s bridge);
 * - docker0 `--bip 198.18.0.1/25` (room for the 20-30 task containers a host runs in
 *   `npm run bench -- services`), docker_gwbridge from `default-address-pools`
 *   198.18.0.224/27 in /28s, overlays (ingress) from `swarm init --default-addr-pool`
 *   198.18.0.208/28; all of them only inside each host's namespace.
 * - with `registry` (the services benchmark), the bridge gets 198.18.0.129/26 in the root
 *   namespace and a registry (Debian's docker-registry, `startRegistry`) listens there on port
 *   5000; every dockerd has it in `insecure-registries`.
 *
 * The names are fixed, so one run at a time on the machine: `up()` first takes the machine-wide
 * lock SWARM_LOCK (machine-lock.ts; a second run waits for it, saying so, or fails with a clear
 * error), and `down()` releases it. A `down()` without the lock (e.g. Ctrl-C while waiting for it)
 * removes nothing when another run holds it.
 *
 * `down()` removes everything, also after a crash of a previous run: processes (recorded
 * pids, checked against their command lines, then anything naming our directories, then what
 * is left in the cgroups `/sbw-hN`: the task containers), mounts
 * under our directories, namespaces, links, the FORWARD rule, cgroups and the directories.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, type Dirent } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, isProcessAlive, run, sleep } from '@shoal/common';
import { startRegistry } from '../registry/registry-server.js';
import { DockerApi } from './docker-api.js';
import { SWARM_LOCK, acquireMachineLock, lockHolder, tryMachineLock, type LockHandle } from './machine-lock.js';

export const SWARM_RUN = '/run/shoal-bench-swarm';
export const SWARM_DATA = '/var/lib/shoal-bench-swarm';
const BRIDGE = 'sbw-br0';
const COMMENT = 'shoal-bench-swarm';
const PREFIX = '198.18.0';
/** Inside each host's namespace only (see the module comment). */
export const SWARM_BIP = '198.18.0.1/25';
export const SWARM_GW_POOL = { base: '198.18.0.224/27', size: 28 };
export const SWARM_OVERLAY_POOL = '198.18.0.208/28';
export const SWARM_OVERLAY_MASK = 28;
/** The registry of the services benchmark, on the bridge in the root namespace. */
export const SWARM_REGISTRY_CIDR = `${PREFIX}.129/26`;
export const SWARM_REGISTRY = `${PREFIX}.129:5000`;

export interface SwarmHost {
  index: number;
  name: string;
  netns: string;
  veth: string;
  address: string;
  role: 'manager' | 'worker';
  data: string;
  run: string;
  socket: string;
  api: DockerApi;
  containerd?: number;
  dockerd?: number;
}

function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined;
    throw err;
  }
}

/** Pids whose command line names one of our directories. */
function ourProcesses(): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const c = cmdline(Number(p));
    if (c && (c.includes(`${SWARM_DATA}/`) || c.includes(`${SWARM_RUN}/`))) out.push(Number(p));
  }
  return out;
}

async function ip(args: string[], check = true): Promise<boolean> {
  return (await run('ip', args, { check })).code === 0;
}

async function killAndWait(pids: number[], signal: NodeJS.Signals, ms: number): Promise<number[]> {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') throw err; // gone already
    }
  }
  const until = Date.now() + ms;
  while (pids.some(isProcessAlive) && Date.now() < until) await sleep(50);
  return pids.filter(isProcessAlive);
}

export class SwarmHosts {
  readonly hosts: SwarmHost[] = [];
  /** The machine-wide lock, held from up() to down(). */
  private lock: LockHandle | undefined;

  constructor(
    managers: number,
    workers: number,
    private readonly progress: (msg: string) => void,
    /** Also a registry on the bridge (see the module comment). */
    private readonly registry = false,
  ) {
    for (let i = 1; i <= managers + workers; i++) {
      const run = join(SWARM_RUN, `h${i}`);
      const socket = join(run, 'docker.sock');
      this.hosts.push({
        index: i,
        name: `sbw-h${i}`,
        netns: `sbw-h${i}`,
        veth: `sbw-v${i}`,
        address: `${PREFIX}.${130 + i}`,
        role: i <= managers ? 'manager' : 'worker',
        data: join(SWARM_DATA, `h${i}`),
        run,
        socket,
        api: new DockerApi(socket),
      });
    }
    if (this.hosts.length > 9) throw new Error('the Swarm side has room for at most 9 hosts');
  }

  /** Network, namespaces and both daemons on every host (all of it removed again by down()). */
  async up(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error('the Swarm side needs root');
    for (const bin of ['dockerd', 'containerd', 'nsenter', 'unshare'])
      if ((await run('sh', ['-c', `command -v ${bin}`], { check: false })).code !== 0)
        throw new Error(`${bin} not found (Debian docker.io provides dockerd and containerd)`);
    // before anything is removed or made: another run's hosts have the same names
    this.lock ??= await acquireMachineLock(SWARM_LOCK, 'the Swarm side', this.progress);
    await this.removeAll(); // a previous run that died leaves nothing behind for this one
    await mkdir(SWARM_RUN, { recursive: true });
    await mkdir(SWARM_DATA, { recursive: true });
    await ip(['link', 'add', BRIDGE, 'type', 'bridge']);
    await ip(['link', 'set', BRIDGE, 'up']);
    if (this.registry) {
      await ip(['addr', 'add', SWARM_REGISTRY_CIDR, 'dev', BRIDGE]);
      // detached: its config path under SWARM_DATA on its command line is how down() finds it
      await startRegistry({ dir: join(SWARM_DATA, 'registry'), addr: SWARM_REGISTRY, detached: true });
    }
    if ((await run('iptables', ['-w', '-S', 'FORWARD'], { check: false })).code === 0)
      await run('iptables', ruleArgs('-I'));
    for (const h of this.hosts) {
      await ip(['netns', 'add', h.netns]);
      await ip(['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
      await ip(['link', 'set', h.veth, 'master', BRIDGE, 'up']);
      await ip(['-n', h.netns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', h.netns, 'addr', 'add', `${h.address}/26`, 'dev', 'eth0']);
      await ip(['-n', h.netns, 'link', 'set', 'eth0', 'up']);
      await this.writeConfigs(h);
    }
    for (const h of this.hosts) await this.startContainerd(h);
    for (const h of this.hosts) this.spawnDockerd(h);
    for (const h of this.hosts) await this.waitDockerd(h);
  }

  private async writeConfigs(h: SwarmHost): Promise<void> {
    await mkdir(h.run, { recursive: true });
    await mkdir(h.data, { recursive: true });
    const toml = [
      'version = 2',
      `root = "${h.data}/containerd"`,
      `state = "${h.run}/containerd"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${h.run}/containerd.sock"`,
      '[ttrpc]',
      `  address = "${h.run}/containerd.sock.ttrpc"`,
      '[debug]',
      '  address = ""',
      '  level = "warn"',
      '[metrics]',
      '  address = ""',
      '[plugins]',
      '  [plugins."io.containerd.internal.v1.opt"]',
      `    path = "${h.data}/containerd-opt"`,
      '',
    ].join('\n');
    await writeFile(join(h.data, 'containerd.toml'), toml);
    await writeFile(
      join(h.data, 'daemon.json'),
      JSON.stringify({
        'default-address-pools': [SWARM_GW_POOL],
        ...(this.registry ? { 'insecure-registries': [SWARM_REGISTRY] } : {}),
      }) + '\n',
    );
  }

  private spawnIn(h: SwarmHost, log: string, argv: string[]): number {
    const out = openSync(join(h.run, log), 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${h.netns}`, ...argv], {
      detached: true,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    child.unref();
    if (child.pid === undefined) throw new Error(`${argv[0]} on ${h.name} did not start`);
    return child.pid; // nsenter, unshare and sh exec: this is the daemon's own pid
  }

  private async startContainerd(h: SwarmHost): Promise<void> {
    h.containerd = this.spawnIn(h, 'containerd.log', ['containerd', '--config', join(h.data, 'containerd.toml')]);
    const sock = join(h.run, 'containerd.sock');
    const until = Date.now() + 30_000;
    for (;;) {
      if (existsSync(sock) && (await run('ctr', ['--address', sock, 'version'], { check: false })).code === 0) return;
      if (!isProcessAlive(h.containerd))
        throw new Error(`containerd on ${h.name} exited: ${this.tail(h, 'containerd')}`);
      if (Date.now() > until) throw new Error(`containerd on ${h.name} did not answer: ${this.tail(h, 'containerd')}`);
      await sleep(100);
    }
  }

  private spawnDockerd(h: SwarmHost): void {
    h.dockerd = this.spawnIn(h, 'dockerd.log', [
      'unshare',
      '--uts',
      'sh',
      '-c',
      'echo "$0" > /proc/sys/kernel/hostname && exec "$@"',
      h.name,
      'dockerd',
      '--config-file',
      join(h.data, 'daemon.json'),
      '--data-root',
      join(h.data, 'docker'),
      '--exec-root',
      join(h.run, 'exec'),
      '--pidfile',
      join(h.run, 'dockerd.pid'),
      '-H',
      `unix://${h.socket}`,
      '--containerd',
      join(h.run, 'containerd.sock'),
      '--cgroup-parent',
      `/${h.name}`,
      '--bip',
      SWARM_BIP,
      '--log-level',
      'warn',
    ]);
  }

  private async waitDockerd(h: SwarmHost): Promise<void> {
    const until = Date.now() + 60_000;
    for (;;) {
      if (existsSync(h.socket)) {
        try {
          await h.api.info(2000);
          return;
        } catch (err) {
          if (Date.now() > until) throw err;
        }
      }
      if (h.dockerd === undefined || !isProcessAlive(h.dockerd))
        throw new Error(`dockerd on ${h.name} exited: ${this.tail(h, 'dockerd')}`);
      if (Date.now() > until) throw new Error(`dockerd on ${h.name} did not answer: ${this.tail(h, 'dockerd')}`);
      await sleep(100);
    }
  }

  private tail(h: SwarmHost, which: string): string {
    const f = join(h.run, `${which}.log`);
    return existsSync(f) ? readFileSync(f, 'utf8').trimEnd().split('\n').slice(-3).join(' | ') : '(no log)';
  }

  /** Starts a host's containerd and dockerd again (after kill()) and waits until dockerd answers. */
  async restart(h: SwarmHost): Promise<void> {
    await this.startContainerd(h);
    this.spawnDockerd(h);
    await this.waitDockerd(h);
  }

  /** `kill -9` of a host's dockerd and containerd, as a crash of the machine's engine. */
  kill(h: SwarmHost): void {
    for (const pid of [h.dockerd, h.containerd])
      if (pid !== undefined && this.ours(pid, h)) process.kill(pid, 'SIGKILL');
  }

  /** Waits until the killed daemons are gone. */
  async waitGone(h: SwarmHost): Promise<void> {
    const pids = [h.dockerd, h.containerd].filter((p): p is number => p !== undefined);
    while (pids.some(isProcessAlive)) await sleep(20);
    h.dockerd = undefined;
    h.containerd = undefined;
  }

  private ours(pid: number, h: SwarmHost): boolean {
    return cmdline(pid)?.includes(`${h.data}/`) ?? false;
  }

  /** Pids of a host's dockerd and containerd (undefined while one is down). */
  pids(h: SwarmHost): { dockerd?: number; containerd?: number } {
    const ok = (p: number | undefined): number | undefined =>
      p !== undefined && isProcessAlive(p) && this.ours(p, h) ? p : undefined;
    return { dockerd: ok(h.dockerd), containerd: ok(h.containerd) };
  }

  /**
   * Removes everything a run (this one or a dead one) made and releases the machine-wide lock;
   * returns what could not be removed. Safe to call at any point and more than once; while
   * another run holds the lock it removes nothing.
   */
  async down(): Promise<string[]> {
    for (const h of this.hosts) h.api.close();
    this.lock ??= await tryMachineLock(SWARM_LOCK);
    if (!this.lock) {
      this.progress(`swarm: another run (${lockHolder(SWARM_LOCK)}) holds ${SWARM_LOCK}: left its hosts alone`);
      return [];
    }
    try {
      return await this.removeAll();
    } finally {
      this.lock.release();
      this.lock = undefined;
    }
  }

  /** Removes everything a run made (the lock held); returns what could not be removed. */
  private async removeAll(): Promise<string[]> {
    // dockerd first (it stops its own work), then containerd, then anything else naming our dirs
    const byKind = (kind: string): number[] => ourProcesses().filter((p) => cmdline(p)?.startsWith(`${kind} `));
    for (const kind of ['dockerd', 'containerd']) {
      const left = await killAndWait(byKind(kind), 'SIGTERM', 10_000);
      await killAndWait(left, 'SIGKILL', 5000);
    }
    await killAndWait(ourProcesses(), 'SIGKILL', 5000);
    // task containers whose shim died with its containerd (kill -9 of a host's daemons)
    await killAndWait(cgroupProcesses(), 'SIGKILL', 5000);
    for (let pass = 0; pass < 3; pass++) {
      const mounts = (await run('findmnt', ['-rn', '-o', 'TARGET'], { check: false })).stdout
        .split('\n')
        .filter((m) => m.startsWith(`${SWARM_RUN}/`) || m.startsWith(`${SWARM_DATA}/`))
        .sort()
        .reverse();
      if (mounts.length === 0) break;
      for (const m of mounts)
        if ((await run('umount', [m], { check: false })).code !== 0) await run('umount', ['-l', m], { check: false });
    }
    for (let i = 1; i <= 9; i++) {
      if (existsSync(`/run/netns/sbw-h${i}`)) await ip(['netns', 'del', `sbw-h${i}`], false);
      await ip(['link', 'del', `sbw-v${i}`], false);
    }
    await ip(['link', 'del', BRIDGE], false);
    while ((await run('iptables', ruleArgs('-C'), { check: false })).code === 0) await run('iptables', ruleArgs('-D'));
    for (const ctl of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : [])
      for (let i = 1; i <= 9; i++) {
        const d = `/sys/fs/cgroup/${ctl}/sbw-h${i}`;
        if (existsSync(d))
          await run('find', [d, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';'], { check: false });
      }
    const mountsLeft = (await run('findmnt', ['-rn', '-o', 'TARGET'], { check: false })).stdout
      .split('\n')
      .some((m) => m.startsWith(`${SWARM_RUN}/`) || m.startsWith(`${SWARM_DATA}/`));
    if (!mountsLeft) {
      await run('rm', ['-rf', '--one-file-system', SWARM_RUN, SWARM_DATA], { check: false });
    }
    const left: string[] = [];
    for (const p of [...ourProcesses(), ...cgroupProcesses()]) left.push(`process ${p}: ${cmdline(p)?.slice(0, 80)}`);
    if (mountsLeft) left.push(`mounts under ${SWARM_RUN} or ${SWARM_DATA}`);
    for (let i = 1; i <= 9; i++) if (existsSync(`/run/netns/sbw-h${i}`)) left.push(`netns sbw-h${i}`);
    const links = (await run('ip', ['-br', 'link'], { check: false })).stdout;
    for (const l of links.split('\n').filter((l) => l.startsWith('sbw-'))) left.push(`link ${l.split(/\s+/)[0]}`);
    if (existsSync(SWARM_RUN) || existsSync(SWARM_DATA)) left.push(`directory ${SWARM_RUN} or ${SWARM_DATA}`);
    if (left.length > 0) this.progress(`swarm: left behind: ${left.join('; ')}`);
    return left;
  }
}

/** Pids in the cgroups of our hosts (`/sys/fs/cgroup/<controller>/sbw-hN/...`). */
function cgroupProcesses(): number[] {
  const out = new Set<number>();
  const walk = (dir: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name === 'cgroup.procs')
        for (const l of readFileSync(join(dir, e.name), 'utf8').split('\n')) if (/^\d+$/.test(l)) out.add(Number(l));
    }
  };
  if (existsSync('/sys/fs/cgroup'))
    for (const ctl of readdirSync('/sys/fs/cgroup'))
      for (let i = 1; i <= 9; i++) walk(`/sys/fs/cgroup/${ctl}/sbw-h${i}`);
  return [...out];
}

function ruleArgs(op: '-I' | '-C' | '-D'): string[] {
  const rule = ['-i', BRIDGE, '-o', BRIDGE, '-m', 'comment', '--comment', COMMENT, '-j', 'ACCEPT'];
  return ['-w', op, 'FORWARD', ...(op === '-I' ? ['1'] : []), ...rule];
}
