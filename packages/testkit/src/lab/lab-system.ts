/**
 * The system calls a lab needs, through iproute2, iptables, nsenter/unshare, umount and /proc:
 * discovering what exists (namespaces, links, mounts, processes) and removing it.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, run, sleep, type RunResult, isProcessAlive } from '@shoal/common';

/** Runs a command, throwing CommandFailedError on a non-zero exit. */
export function sh(file: string, args: readonly string[]): Promise<RunResult> {
  return run(file, args);
}

/** Runs a command and returns whether it exited 0. */
export async function tryRun(file: string, args: readonly string[]): Promise<boolean> {
  try {
    return (await run(file, args, { check: false })).code === 0;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false; // no such program
    throw err;
  }
}

/** Names of all network namespaces under /run/netns. */
export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return []; // no namespace was ever bound
    throw err;
  }
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

export interface LinkInfo {
  ifname: string;
  operstate: string;
  flags: string[];
  master?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** Links of the root namespace (or of `netns`), with addresses. */
export async function listLinks(netns?: string): Promise<LinkInfo[]> {
  const args = [...(netns ? ['-n', netns] : []), '-j', 'addr', 'show'];
  const r = await run('ip', args, { check: false });
  if (r.code !== 0) return [];
  return JSON.parse(r.stdout || '[]') as LinkInfo[];
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  return (await run('ip', [...(netns ? ['-n', netns] : []), 'link', 'show', 'dev', name], { check: false })).code === 0;
}

/** Every IPv4 address of the root namespace (to keep new labs off addresses in use). */
export async function rootAddresses(): Promise<string[]> {
  const out: string[] = [];
  for (const l of await listLinks()) for (const a of l.addr_info ?? []) if (a.family === 'inet') out.push(a.local);
  const routes = await run('ip', ['-4', 'route', 'show', 'table', 'all'], { check: false });
  for (const line of routes.stdout.split('\n')) {
    const dst = line.split(/\s+/)[0] ?? '';
    if (/^\d+\.\d+\.\d+\.\d+/.test(dst)) out.push(dst.replace(/\/\d+$/, ''));
  }
  return out;
}

/** The command line of a process, or undefined if it is gone. */
export function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined; // gone
    throw err;
  }
}

/** Pids whose command line mentions `needle` (never this process). */
export function pidsWithCmdline(needle: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    if (cmdline(Number(p))?.includes(needle)) out.push(Number(p));
  }
  return out;
}

/** Pids whose network namespace is one of those bound at /run/netns/<name> (one /proc scan). */
export function pidsInNetns(names: readonly string[]): number[] {
  const targets = new Set<string>();
  for (const name of names) {
    try {
      // The inode of the bound namespace, as /proc/<pid>/ns/net shows it ("net:[4026532...]").
      targets.add(`net:[${statSync(`/run/netns/${name}`).ino}]`);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err; // not bound
    }
  }
  if (targets.size === 0) return [];
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (targets.has(readlinkSync(`/proc/${p}/ns/net`))) out.push(Number(p));
    } catch (err) {
      // gone, or not ours to read
      if (!['ENOENT', 'ESRCH', 'EACCES', 'EPERM'].includes(errnoCode(err) ?? '')) throw err;
    }
  }
  return out;
}

/** SIGTERM the pids, wait up to `graceMs`, then SIGKILL what is left and wait for it to go. */
export async function killPids(pids: readonly number[], graceMs = 3000): Promise<void> {
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') throw err; // gone
    }
  };
  for (const p of pids) signal(p, 'SIGTERM');
  let deadline = Date.now() + graceMs;
  while (pids.some(isProcessAlive) && Date.now() < deadline) await sleep(50);
  for (const p of pids.filter(isProcessAlive)) signal(p, 'SIGKILL');
  deadline = Date.now() + 3000;
  while (pids.some(isProcessAlive) && Date.now() < deadline) await sleep(50);
}

/** Mount points at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const path = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (path === dir || path.startsWith(prefix)) out.push(path);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Unmounts every mount at or under `dir` (lazily if busy). */
export async function unmountUnder(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir)) {
    if (!(await tryRun('umount', [mp]))) await tryRun('umount', ['-l', mp]);
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * IDs of the containers the lab's hosts' engines made (`<dir>/hosts/hN/data/engine/containers/<id>`).
 * Their processes live in their own network namespaces, so a namespace scan does not find them.
 */
export function labContainerIds(dir: string): Set<string> {
  const ids = new Set<string>();
  const hosts = join(dir, 'hosts');
  if (!existsSync(hosts)) return ids;
  for (const h of readdirSync(hosts)) {
    const containers = join(hosts, h, 'data', 'engine', 'containers');
    if (!existsSync(containers)) continue;
    for (const id of readdirSync(containers)) if (/^[0-9a-f]{64}$/.test(id)) ids.add(id);
  }
  return ids;
}

/** Pids in a cgroup named after one of `ids` (a container's cgroup, in any hierarchy). */
export function pidsInCgroupsNamed(ids: ReadonlySet<string>): number[] {
  if (ids.size === 0) return [];
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${p}/cgroup`, 'utf8');
    } catch (err) {
      if (['ENOENT', 'ESRCH', 'EACCES', 'EPERM'].includes(errnoCode(err) ?? '')) continue; // gone
      throw err;
    }
    if (text.split('\n').some((l) => ids.has(l.slice(l.lastIndexOf('/') + 1)))) out.push(Number(p));
  }
  return out;
}

/** Removes the (empty) cgroup directories named after one of `ids`, up to 4 levels under /sys/fs/cgroup. */
export async function removeCgroupsNamed(ids: ReadonlySet<string>): Promise<void> {
  if (ids.size === 0) return;
  const found: string[] = [];
  const walk = (d: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch (err) {
      if (['ENOENT', 'ENOTDIR', 'EACCES'].includes(errnoCode(err) ?? '')) return;
      throw err;
    }
    for (const n of names) {
      if (ids.has(n)) found.push(join(d, n));
      else if (depth < 4) walk(join(d, n), depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 1);
  for (const c of found) await tryRun('rmdir', [c]);
}
