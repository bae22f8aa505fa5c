/**
 * Using a lab: its status (`ls`), running commands in a host (`exec`), and faults for tests
 * (`cut`/`heal` the host's underlay link, `delay`/loss with netem).
 *
 * Hostnames: a network namespace has no UTS namespace of its own, so `up` binds a persistent UTS
 * namespace per host (`unshare --uts=<file> hostname h1`), and `exec` enters both with
 * `nsenter --net=/run/netns/NS --uts=<file>`. nsenter (not `ip netns exec`) keeps the root
 * namespace's /sys, where runc and daemons find the cgroup v1 mounts.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { run, type RunResult } from '@shoal/common';
import { LabCommandError, LabHostNotFoundError, LabNotFoundError, LabNotRootError } from '../errors.js';
import { checkLabName } from './lab-names.js';
import {
  labDir,
  labLockPath,
  listLabNames,
  readLabState,
  writeLabState,
  type LabHostState,
  type LabState,
} from './lab-state.js';
import { withLock } from './lab-lock.js';
import { startRelay, stopRelay } from './lab-relay.js';
import { cmdline, isRoot, linkExists, listLinks, netnsExists, pidsWithCmdline, sh } from './lab-system.js';

export type HostStatus = 'up' | 'cut' | 'down' | 'missing';

export interface LabHostView {
  name: string;
  hostname: string;
  netns: string;
  address: string;
  state: HostStatus;
  /** netem settings on the host's link, if any (e.g. `delay 50ms loss 10%`). */
  netem?: string;
  dataDir: string;
  runDir: string;
}

export interface LabView {
  name: string;
  subnet: string;
  gateway: string;
  bridge: string;
  registry?: { addr: string; url: string; state: 'up' | 'down' };
  hosts: LabHostView[];
}

/** Reads a lab's state or throws LabNotFoundError. */
export async function requireLab(lab: string): Promise<LabState> {
  checkLabName(lab);
  const s = await readLabState(lab);
  if (!s) throw new LabNotFoundError(lab);
  return s;
}

/** Finds a host of a lab or throws LabHostNotFoundError. */
export function requireHost(s: LabState, host: string): LabHostState {
  const h = s.hosts.find((x) => x.name === host);
  if (!h)
    throw new LabHostNotFoundError(
      s.name,
      host,
      s.hosts.map((x) => x.name),
    );
  return h;
}

async function netemOf(h: LabHostState): Promise<string | undefined> {
  const r = await run('tc', ['-n', h.netns, 'qdisc', 'show', 'dev', 'eth0'], { check: false });
  const m = /netem \d+: \S+ (?:refcnt \d+ )?limit \d+ ?(.*)/.exec(r.stdout);
  return m?.[1]?.trim() || undefined;
}

/** The status of one lab: hosts with namespace, address and link state; the registry. */
export async function labStatus(lab: string): Promise<LabView> {
  const s = await requireLab(lab);
  const links = new Map((await listLinks()).map((l) => [l.ifname, l]));
  const hosts: LabHostView[] = [];
  for (const h of s.hosts) {
    let state: HostStatus = 'missing';
    if (netnsExists(h.netns)) {
      const root = links.get(h.veth);
      if (!root) state = 'down';
      else if (!root.flags.includes('UP')) state = 'cut';
      else state = 'up';
    }
    let netem = state === 'missing' ? undefined : await netemOf(h);
    const loss = state === 'missing' ? undefined : await nftLoss(h);
    if (loss !== undefined) netem = `loss ${loss}%`;
    if (h.fault?.via === 'relay' && h.fault.relayPid && cmdline(h.fault.relayPid)) {
      netem = `delay ${h.fault.delayMs}ms${h.fault.lossPct ? ` loss ${h.fault.lossPct}%` : ''} (relay)`;
    }
    hosts.push({
      name: h.name,
      hostname: h.hostname,
      netns: h.netns,
      address: h.address,
      state,
      ...(netem ? { netem } : {}),
      dataDir: h.dataDir,
      runDir: h.runDir,
    });
  }
  let registry: LabView['registry'];
  if (s.registry) {
    let up: boolean;
    try {
      const res = await fetch(`${s.registry.url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      up = res.status === 200;
    } catch {
      up = false;
    }
    registry = { addr: s.registry.addr, url: s.registry.url, state: up ? 'up' : 'down' };
  }
  return {
    name: s.name,
    subnet: s.subnet,
    gateway: s.gateway,
    bridge: s.bridge,
    ...(registry ? { registry } : {}),
    hosts,
  };
}

/** The status of every lab under the lab root. */
export async function labList(): Promise<LabView[]> {
  const out: LabView[] = [];
  for (const n of await listLabNames()) out.push(await labStatus(n));
  return out;
}

/** The argv that runs `cmd` inside a host: its network and UTS namespaces, env naming the host. */
export function hostCommand(h: LabHostState, cmd: readonly string[]): string[] {
  return ['nsenter', `--net=/run/netns/${h.netns}`, `--uts=${h.utsPath}`, '--', ...cmd];
}

function hostEnv(s: LabState, h: LabHostState): NodeJS.ProcessEnv {
  return {
    ...process.env,
    SHOAL_LAB: s.name,
    SHOAL_LAB_HOST: h.name,
    SHOAL_LAB_DATA: h.dataDir,
    SHOAL_LAB_RUN: h.runDir,
  };
}

async function target(lab: string, host: string): Promise<{ s: LabState; h: LabHostState }> {
  const s = await requireLab(lab);
  const h = requireHost(s, host);
  if (!isRoot()) throw new LabNotRootError('exec');
  return { s, h };
}

/** Runs a command in a host with inherited stdio; resolves to its exit code (128+signal if killed). */
export async function labExecInherit(lab: string, host: string, cmd: readonly string[]): Promise<number> {
  const { s, h } = await target(lab, host);
  const [file = 'nsenter', ...args] = hostCommand(h, cmd);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'inherit', env: hostEnv(s, h) });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 0));
    });
  });
}

/** Runs a command in a host and collects its output (non-zero exits resolve unless `check`). */
export async function labExec(
  lab: string,
  host: string,
  cmd: readonly string[],
  opts: { check?: boolean; input?: string } = {},
): Promise<RunResult> {
  const { s, h } = await target(lab, host);
  const [file = 'nsenter', ...args] = hostCommand(h, cmd);
  return run(file, args, {
    env: hostEnv(s, h),
    check: opts.check ?? false,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
}

async function faultTarget(lab: string, host: string, op: string): Promise<LabHostState> {
  const s = await requireLab(lab);
  const h = requireHost(s, host);
  if (!isRoot()) throw new LabNotRootError(op);
  return h;
}

/** Takes a host's underlay link down (its bridge-side veth): the host is cut off. */
export async function labCut(lab: string, host: string): Promise<void> {
  const h = await faultTarget(lab, host, 'cut');
  if (await linkExists(h.veth)) await sh('ip', ['link', 'set', h.veth, 'down']);
}

/** Brings a host's underlay link back up. */
export async function labHeal(lab: string, host: string): Promise<void> {
  const h = await faultTarget(lab, host, 'heal');
  await sh('ip', ['link', 'set', h.veth, 'up']);
}

/** The nftables table a host uses for packet loss when the kernel has no netem. */
const LOSS_TABLE = 'shoal_fault';

async function netemAvailable(h: LabHostState): Promise<boolean> {
  // Probe on the host's loopback-free dummy path: adding and removing netem on eth0 itself.
  const r = await run('tc', ['-n', h.netns, 'qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', '0ms'], {
    check: false,
  });
  if (r.code === 0) return true;
  if (/unknown/i.test(r.stderr)) return false;
  throw new LabCommandError(h.netns, 'tc qdisc replace netem', { cause: new Error(r.stderr.trim()) });
}

async function clearFaults(s: LabState, h: LabHostState): Promise<void> {
  await run('tc', ['-n', h.netns, 'qdisc', 'del', 'dev', 'eth0', 'root'], { check: false });
  await run('nsenter', [`--net=/run/netns/${h.netns}`, 'nft', 'delete', 'table', 'inet', LOSS_TABLE], { check: false });
  await stopRelay(s, h, pidsWithCmdline(labDir(s.name)));
}

/** Loss set through nftables (`numgen random`) in the host, if any. */
async function nftLoss(h: LabHostState): Promise<number | undefined> {
  const r = await run('nsenter', [`--net=/run/netns/${h.netns}`, 'nft', 'list', 'table', 'inet', LOSS_TABLE], {
    check: false,
  });
  if (r.code !== 0) return undefined;
  const m = /numgen random mod 100 < (\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : /oifname "eth0" drop/.test(r.stdout) ? 100 : undefined;
}

/**
 * Adds `ms` of delay and `lossPct` % loss to every packet the host sends on the underlay. Uses
 * netem on the host's eth0 where the kernel has it; otherwise a delay goes through a relay
 * process (lab-relay.ts) and loss alone through an nftables rule in the host
 * (`numgen random mod 100 < PCT drop`). `ms` 0 without loss removes every fault.
 */
export async function labDelay(lab: string, host: string, ms: number, lossPct = 0): Promise<void> {
  const s0 = await requireLab(lab);
  requireHost(s0, host);
  if (!isRoot()) throw new LabNotRootError('delay');
  await withLock(labLockPath(lab), lab, async () => {
    const s = await requireLab(lab);
    const h = requireHost(s, host);
    await clearFaults(s, h);
    delete h.fault;
    if (ms > 0 || lossPct > 0) {
      if (await netemAvailable(h)) {
        const args = ['-n', h.netns, 'qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${ms}ms`];
        if (lossPct > 0) args.push('loss', `${lossPct}%`);
        await sh('tc', args);
        h.fault = { delayMs: ms, lossPct, via: 'netem' };
      } else if (ms > 0) {
        const relayPid = await startRelay(s, h, ms, lossPct);
        h.fault = { delayMs: ms, lossPct, via: 'relay', relayPid };
      } else {
        await run('tc', ['-n', h.netns, 'qdisc', 'del', 'dev', 'eth0', 'root'], { check: false });
        const pct = Math.round(lossPct);
        const match = pct >= 100 ? '' : `numgen random mod 100 < ${pct} `;
        const rules = `table inet ${LOSS_TABLE} {\n chain out {\n  type filter hook output priority 0; policy accept;\n  oifname "eth0" ${match}drop\n }\n}\n`;
        await run('nsenter', [`--net=/run/netns/${h.netns}`, 'nft', '-f', '-'], { input: rules });
        h.fault = { delayMs: 0, lossPct, via: 'nft' };
      }
    }
    await writeLabState(s);
  });
}
