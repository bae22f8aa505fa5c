/**
 * shoald on lab hosts: one daemon per host, inside the host's network and UTS namespaces, with
 * its own data root, run root, socket and daemon.json under the host's directory, listening and
 * advertising on the host's underlay address and trusting the lab's registry. `labCluster`
 * makes a swarm of them through each host's socket (the API the CLI uses): init on h1, managers
 * next, workers last, with the join tokens.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { ControlClient, SwarmClient, unary, type SwarmInfo } from '@shoal/api';
import { isProcessAlive, sleep } from '@shoal/common';
import { LabClusterError, LabNotRootError } from '../errors.js';
import { withLock } from './lab-lock.js';
import { cmdline, isRoot } from './lab-system.js';
import { hostCommand } from './lab-exec.js';
import { LAB_GATEWAY_SUBNET, LAB_OVERLAY_POOL } from './lab-names.js';
import { labLockPath, readLabState, requireHost, requireLab, writeLabState, type LabHostState } from './lab-state.js';

/** The cluster port every lab shoald listens on (its host's underlay address). */
export const LAB_CLUSTER_PORT = 2377;

/** Where a host's shoald keeps its socket, config and log. */
export function shoaldPaths(h: LabHostState): { socket: string; config: string; log: string } {
  const base = dirname(h.dataDir);
  return { socket: join(h.runDir, 'shoal.sock'), config: join(base, 'daemon.json'), log: join(base, 'shoald.log') };
}

/** `SHOAL_HOST` for a host's shoald. */
export function hostSocketUrl(h: LabHostState): string {
  return `unix://${shoaldPaths(h).socket}`;
}

/** The shoald program: $SHOALD_BIN, else the workspace's @shoal/daemon. */
export function shoaldBin(): string {
  const env = process.env['SHOALD_BIN'];
  if (env) return env;
  return join(dirname(createRequire(import.meta.url).resolve('@shoal/daemon')), 'main.js');
}

/**
 * Node's flags for shoald, as its `#!` line has them (docs/daemon.md, Memory): a young generation
 * of 1 MB semi-spaces instead of Node's default, about 10 MB less RSS for an idle daemon.
 */
export const SHOALD_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

function shoaldArgs(h: LabHostState, registry: string | undefined): string[] {
  const p = shoaldPaths(h);
  return [
    ...SHOALD_NODE_FLAGS,
    shoaldBin(),
    '--data-root',
    h.dataDir,
    '--run-root',
    h.runDir,
    '--socket',
    p.socket,
    '--config',
    p.config,
    '--listen-addr',
    `${h.address}:${LAB_CLUSTER_PORT}`,
    '--advertise-addr',
    h.address,
    '--gwbridge-subnet',
    LAB_GATEWAY_SUBNET,
    ...(registry ? ['--insecure-registry', registry] : []),
  ];
}

/** The pid of the host's running shoald, if one runs (recorded pid, command line checked). */
export function runningShoald(h: LabHostState): number | undefined {
  const pid = h.shoald?.pid;
  if (pid === undefined || !isProcessAlive(pid)) return undefined;
  return cmdline(pid)?.includes(`--data-root ${h.dataDir} `) ? pid : undefined;
}

async function swarmInfo(socket: string): Promise<SwarmInfo> {
  const c = new SwarmClient(`unix://${socket}`, credentials.createInsecure());
  try {
    return await unary(c.info.bind(c), {}, { deadline: Date.now() + 5000 });
  } finally {
    c.close();
  }
}

/** Waits until the daemon answers on its socket; fails with its log's last lines if it exits. */
async function waitServing(h: LabHostState, pid: number, timeoutMs = 60_000): Promise<void> {
  const { socket, log } = shoaldPaths(h);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isProcessAlive(pid)) throw new LabClusterError(`shoald on ${h.name} exited: ${tail(log)}`);
    if (existsSync(socket)) {
      try {
        await swarmInfo(socket);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
    if (Date.now() > deadline)
      throw new LabClusterError(`shoald on ${h.name} did not serve within ${timeoutMs} ms: ${tail(log)}`);
    await sleep(100);
  }
}

function tail(path: string): string {
  if (!existsSync(path)) return '(no log)';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-3).join(' | ');
}

/** Starts a host's shoald (unless it runs) in the host's namespaces, detached, and waits until it serves. */
async function startHostShoald(lab: string, h: LabHostState, registry: string | undefined): Promise<number> {
  const running = runningShoald(h);
  if (running !== undefined) return running;
  const p = shoaldPaths(h);
  if (!existsSync(p.config)) await writeFile(p.config, '{}\n');
  const out = openSync(p.log, 'a');
  const [file = 'nsenter', ...args] = hostCommand(h, [process.execPath, ...shoaldArgs(h, registry)]);
  const child = spawn(file, args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, SHOAL_LAB: lab, SHOAL_LAB_HOST: h.name },
  });
  closeSync(out);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new LabClusterError(`shoald on ${h.name} did not start`);
  // nsenter execs the program, so the pid is shoald's own.
  h.shoald = { pid };
  await waitServing(h, pid);
  return pid;
}

/** Starts shoald on the given hosts (default all) and records their pids. */
export async function labStartShoald(lab: string, hosts?: readonly string[]): Promise<void> {
  if (!isRoot()) throw new LabNotRootError('start');
  await withLock(labLockPath(lab), lab, async () => {
    const s = await requireLab(lab);
    const targets = hosts ? hosts.map((n) => requireHost(s, n)) : s.hosts;
    for (const h of targets) {
      await startHostShoald(lab, h, s.registry?.addr);
      await writeLabState(s);
    }
  });
}

/** Stops a host's shoald with `signal` (TERM: a clean stop; KILL: a crash) and waits until it is gone. */
export async function labStopShoald(lab: string, host: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<boolean> {
  if (!isRoot()) throw new LabNotRootError('stop');
  return withLock(labLockPath(lab), lab, async () => {
    const s = await requireLab(lab);
    const h = requireHost(s, host);
    const pid = runningShoald(h);
    if (pid === undefined) return false;
    process.kill(pid, signal);
    const deadline = Date.now() + 30_000;
    while (isProcessAlive(pid)) {
      if (Date.now() > deadline) process.kill(pid, 'SIGKILL');
      await sleep(50);
    }
    delete h.shoald;
    await writeLabState(s);
    return true;
  });
}

export interface LabClusterOptions {
  name: string;
  /** How many of h1..hN are managers (h1 inits; default 1). */
  managers?: number;
}

/**
 * Makes a swarm of a lab's hosts: starts every host's shoald, inits on h1 (overlay pool
 * LAB_OVERLAY_POOL), joins h2..hM as managers and the rest as workers with the join tokens.
 * Hosts already in the swarm are left as they are.
 */
export async function labCluster(opts: LabClusterOptions): Promise<void> {
  const s0 = await requireLab(opts.name);
  const managers = opts.managers ?? 1;
  if (!Number.isInteger(managers) || managers < 1 || managers > s0.hosts.length)
    throw new LabClusterError(
      `invalid manager count ${managers}: must be from 1 to the host count ${s0.hosts.length}`,
      'invalid-argument',
    );
  await labStartShoald(opts.name);
  const s = (await readLabState(opts.name)) ?? s0;
  const [first, ...rest] = s.hosts;
  if (!first) return;
  const sock = (h: LabHostState): string => `unix://${shoaldPaths(h).socket}`;
  const swarm = (h: LabHostState): SwarmClient => new SwarmClient(sock(h), credentials.createInsecure());
  const deadline = (): number => Date.now() + 120_000;

  const firstInfo = await swarmInfo(shoaldPaths(first).socket);
  if (firstInfo.LocalNodeState !== 'active') {
    const c = swarm(first);
    try {
      await unary(
        c.init.bind(c),
        {
          ListenAddr: `${first.address}:${LAB_CLUSTER_PORT}`,
          AdvertiseAddr: first.address,
          DefaultAddrPool: [LAB_OVERLAY_POOL],
          SubnetSize: 24,
        },
        { deadline: deadline() },
      );
    } finally {
      c.close();
    }
  }
  const control = new ControlClient(sock(first), credentials.createInsecure());
  let tokens: { Worker?: string; Manager?: string } | undefined;
  try {
    tokens = (await unary(control.getCluster.bind(control), {}, { deadline: deadline() })).Cluster?.JoinTokens;
  } finally {
    control.close();
  }
  if (!tokens?.Worker || !tokens.Manager) throw new LabClusterError('the cluster has no join tokens');
  for (const [i, h] of rest.entries()) {
    const info = await swarmInfo(shoaldPaths(h).socket);
    if (info.LocalNodeState === 'active') continue;
    const c = swarm(h);
    try {
      await unary(
        c.join.bind(c),
        {
          ListenAddr: `${h.address}:${LAB_CLUSTER_PORT}`,
          AdvertiseAddr: h.address,
          RemoteAddrs: [`${first.address}:${LAB_CLUSTER_PORT}`],
          JoinToken: i + 2 <= managers ? tokens.Manager : tokens.Worker,
        },
        { deadline: deadline() },
      );
    } finally {
      c.close();
    }
  }
  s.cluster = { managers, overlayPool: LAB_OVERLAY_POOL };
  await withLock(labLockPath(opts.name), opts.name, async () => {
    const now = (await readLabState(opts.name)) ?? s;
    now.cluster = s.cluster;
    await writeLabState(now);
  });
}
