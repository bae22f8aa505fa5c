/**
 * One container's cgroup (`cgroupsPath` like `/shoal/<id>`) on a v1 or v2 layout: resource
 * usage, OOM-kill detection, and cleanup (kill leftover processes, remove the leaf in every
 * hierarchy, then the parent when it is empty). Reads only files, so recorded trees test it.
 */
import { readFile, readdir, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { errnoCode, ignoreErrno, sleep } from '@shoal/common';
import { CgroupError } from '../errors.js';
import { detectCgroupLayout, type CgroupLayout } from './layout.js';

export interface CgroupStats {
  /** Total CPU time of the cgroup in nanoseconds. */
  cpuUsageNs: number;
  memoryUsageBytes: number;
  /** Usage minus inactive file cache (what Docker shows as "MEM USAGE"). */
  memoryWorkingSetBytes: number;
  /** Undefined when unlimited. */
  memoryLimitBytes?: number;
  /** Peak usage, when the kernel records it. */
  memoryMaxUsageBytes?: number;
  pidsCurrent?: number;
  /** Undefined when unlimited. */
  pidsLimit?: number;
  oomKills: number;
}

let cachedLayout: CgroupLayout | undefined;

/** This host's layout, read once (it does not change while the engine runs). */
export function hostLayout(): CgroupLayout {
  cachedLayout ??= detectCgroupLayout();
  return cachedLayout;
}

/** v1 reports "no limit" as a page-rounded huge number. */
const V1_UNLIMITED = 2 ** 62;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENODEV') return undefined; // no such cgroup or file
    throw err;
  }
}

async function readNum(path: string): Promise<number | undefined> {
  const t = (await readText(path))?.trim();
  if (t === undefined || t === '' || t === 'max') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** Writes `value` to an existing (pseudo) file; false when it does not exist or refuses. */
async function writeIfExists(path: string, value: string): Promise<boolean> {
  try {
    await writeFile(path, value, { flag: 'r+' });
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENODEV') return false; // no such cgroup or file
    throw err;
  }
}

/** `key value` lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
export function parseKeyValues(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out.set(k, Number(v));
  }
  return out;
}

function checkPath(path: string): string {
  const norm = posix.normalize(path);
  if (!norm.startsWith('/') || norm === '/' || path.split('/').includes('..')) {
    throw new CgroupError(path, 'must be an absolute path below the cgroup root');
  }
  return norm;
}

export class Cgroup {
  readonly path: string;
  readonly layout: CgroupLayout;

  constructor(path: string, layout: CgroupLayout = hostLayout()) {
    this.path = checkPath(path);
    this.layout = layout;
  }

  /** The directory of this cgroup for a controller (v1) or the unified dir (v2). */
  dir(controller: string): string | undefined {
    if (this.layout.version === 2) return join(this.layout.root, this.path);
    const h = this.layout.controllers.get(controller);
    return h ? join(h, this.path) : undefined;
  }

  /** Number of OOM kills in the cgroup (0 when the cgroup or the counter is missing). */
  async oomKills(): Promise<number> {
    if (this.layout.version === 2) {
      const ev = parseKeyValues(await readText(join(this.layout.root, this.path, 'memory.events')));
      return ev.get('oom_kill') ?? 0;
    }
    const mem = this.dir('memory');
    if (!mem) return 0;
    const oc = parseKeyValues(await readText(join(mem, 'memory.oom_control')));
    const kills = oc.get('oom_kill');
    if (kills !== undefined) return kills;
    // kernels before 4.13 have no oom_kill counter: an OOM shows as under_oom or a hit limit
    return (oc.get('under_oom') ?? 0) > 0 ? 1 : 0;
  }

  async stats(): Promise<CgroupStats> {
    return this.layout.version === 2 ? this.statsV2() : this.statsV1();
  }

  private async statsV1(): Promise<CgroupStats> {
    const mem = this.dir('memory');
    const cpuacct = this.dir('cpuacct');
    const pids = this.dir('pids');
    const usage = mem ? ((await readNum(join(mem, 'memory.usage_in_bytes'))) ?? 0) : 0;
    const memStat = parseKeyValues(mem ? await readText(join(mem, 'memory.stat')) : undefined);
    const inactive = memStat.get('total_inactive_file') ?? memStat.get('inactive_file') ?? 0;
    const limit = mem ? await readNum(join(mem, 'memory.limit_in_bytes')) : undefined;
    const pidsLimit = pids ? await readNum(join(pids, 'pids.max')) : undefined;
    const out: CgroupStats = {
      cpuUsageNs: cpuacct ? ((await readNum(join(cpuacct, 'cpuacct.usage'))) ?? 0) : 0,
      memoryUsageBytes: usage,
      memoryWorkingSetBytes: Math.max(0, usage - inactive),
      oomKills: await this.oomKills(),
    };
    if (limit !== undefined && limit < V1_UNLIMITED) out.memoryLimitBytes = limit;
    const max = mem ? await readNum(join(mem, 'memory.max_usage_in_bytes')) : undefined;
    if (max !== undefined) out.memoryMaxUsageBytes = max;
    const cur = pids ? await readNum(join(pids, 'pids.current')) : undefined;
    if (cur !== undefined) out.pidsCurrent = cur;
    if (pidsLimit !== undefined) out.pidsLimit = pidsLimit;
    return out;
  }

  private async statsV2(): Promise<CgroupStats> {
    const dir = join(this.layout.root, this.path);
    const cpu = parseKeyValues(await readText(join(dir, 'cpu.stat')));
    const usage = (await readNum(join(dir, 'memory.current'))) ?? 0;
    const memStat = parseKeyValues(await readText(join(dir, 'memory.stat')));
    const out: CgroupStats = {
      cpuUsageNs: (cpu.get('usage_usec') ?? 0) * 1000,
      memoryUsageBytes: usage,
      memoryWorkingSetBytes: Math.max(0, usage - (memStat.get('inactive_file') ?? 0)),
      oomKills: await this.oomKills(),
    };
    const limit = await readNum(join(dir, 'memory.max'));
    if (limit !== undefined) out.memoryLimitBytes = limit;
    const peak = await readNum(join(dir, 'memory.peak'));
    if (peak !== undefined) out.memoryMaxUsageBytes = peak;
    const cur = await readNum(join(dir, 'pids.current'));
    if (cur !== undefined) out.pidsCurrent = cur;
    const pidsLimit = await readNum(join(dir, 'pids.max'));
    if (pidsLimit !== undefined) out.pidsLimit = pidsLimit;
    return out;
  }

  /** This cgroup's dir in every hierarchy where it exists. */
  async existingDirs(): Promise<string[]> {
    const out: string[] = [];
    for (const h of this.layout.hierarchies) {
      const d = join(h, this.path);
      if (
        await stat(d).then(
          (s) => s.isDirectory(),
          () => false,
        )
      )
        out.push(d);
    }
    return out;
  }

  /** Process ids in the cgroup and its children, over every hierarchy (deduplicated). */
  async pids(): Promise<number[]> {
    const out = new Set<number>();
    const walk = async (dir: string): Promise<void> => {
      for (const l of ((await readText(join(dir, 'cgroup.procs'))) ?? '').split('\n')) if (l.trim()) out.add(Number(l));
      for (const e of (await readdir(dir, { withFileTypes: true }).catch(ignoreErrno('ENOENT'))) ?? []) {
        if (e.isDirectory()) await walk(join(dir, e.name));
      }
    };
    for (const d of await this.existingDirs()) await walk(d);
    return [...out];
  }

  /**
   * SIGKILLs every process left in the cgroup and waits (up to `timeoutMs`) until it is empty.
   * v2 kernels with `cgroup.kill` do it atomically; on v1 the freezer (when mounted) stops the
   * processes first so that none can fork between reading the list and the kill.
   */
  async killAll(timeoutMs = 5000): Promise<void> {
    if ((await this.pids()).length === 0) return;
    const deadline = Date.now() + timeoutMs;
    const v2kill = this.layout.version === 2 ? join(this.layout.root, this.path, 'cgroup.kill') : undefined;
    if (v2kill && (await writeIfExists(v2kill, '1'))) {
      // the kernel kills the whole subtree
    } else {
      const freezer = this.layout.version === 1 ? this.dir('freezer') : undefined;
      const frozen = freezer ? await this.freeze(freezer, deadline) : false;
      try {
        for (const p of await this.pids()) {
          try {
            process.kill(p, 'SIGKILL');
          } catch (err) {
            if (errnoCode(err) !== 'ESRCH') throw err; // already gone
          }
        }
      } finally {
        if (frozen && freezer) await writeIfExists(join(freezer, 'freezer.state'), 'THAWED');
      }
    }
    for (;;) {
      const pids = await this.pids();
      if (pids.length === 0) return;
      if (Date.now() > deadline) throw new CgroupError(this.path, `processes ${pids.join(', ')} do not die`);
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch (err) {
          if (errnoCode(err) !== 'ESRCH') throw err; // already gone
        }
      }
      await sleep(20);
    }
  }

  /** v1 freezer: FROZEN and wait until the state says so (bounded); false when not possible. */
  private async freeze(dir: string, deadline: number): Promise<boolean> {
    const state = join(dir, 'freezer.state');
    if (!(await writeIfExists(state, 'FROZEN'))) return false;
    while (Date.now() < deadline) {
      if ((await readText(state))?.trim() === 'FROZEN') return true;
      await sleep(5);
    }
    return true;
  }

  /**
   * Removes the cgroup everywhere: kills leftovers, rmdirs the leaf (children first) in every
   * hierarchy, then the parent (e.g. `/shoal`) where it became empty. Idempotent.
   */
  async remove(opts: { keepParent?: boolean } = {}): Promise<void> {
    await this.killAll();
    for (const d of await this.existingDirs()) await rmdirTree(d, this.path);
    if (opts.keepParent) return;
    const parent = posix.dirname(this.path);
    if (parent === '/') return;
    for (const h of this.layout.hierarchies) {
      try {
        await rmdir(join(h, parent));
      } catch (err) {
        // not empty (other containers), busy or already gone: leave it
        if (!['ENOTEMPTY', 'EBUSY', 'ENOENT'].includes(errnoCode(err) ?? '')) throw err;
      }
    }
  }
}

/** rmdir of a cgroup dir and its child cgroups, deepest first (cgroupfs dirs hold only pseudo files). */
async function rmdirTree(dir: string, path: string): Promise<void> {
  for (const e of (await readdir(dir, { withFileTypes: true }).catch(ignoreErrno('ENOENT'))) ?? []) {
    if (e.isDirectory()) await rmdirTree(join(dir, e.name), path);
  }
  for (let i = 0; ; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // EBUSY right after the last process died: the kernel is still tearing it down
      if (code === 'EBUSY' && i < 50) {
        await sleep(20);
        continue;
      }
      throw new CgroupError(path, `cannot remove ${dir}: ${code ?? String(err)}`, { cause: err });
    }
  }
}

/** Convenience: the cgroup of a container under a parent (default `/shoal`). */
export function containerCgroup(id: string, parent = '/shoal', layout?: CgroupLayout): Cgroup {
  return new Cgroup(`${parent}/${id}`, layout);
}
