// Support for the engine's concurrency tests that drive the real CLI (`packages/cli/dist/main.js`)
// in child processes: a data root with the busybox test image pulled from a real registry, a
// runner for `shoal ...`, and a census of everything the engine makes on the host (records,
// names, mounts, cgroups, bundles, runc state, temp files), to check that nothing leaks.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { errnoCode } from '@shoal/common';
import { Engine } from '@shoal/engine';
import { Cgroup, Runc } from '@shoal/engine/internal';
import { startRegistry, pushTestImages, TestImages, type RunningRegistry } from '@shoal/testkit';

const repo = new URL('../..', import.meta.url).pathname;
export const CLI = join(repo, 'packages/cli/dist/main.js');

export interface CliResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `shoal <args...>`; `done` resolves when it has exited (for any reason). */
export function spawnShoal(args: string[]): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr }));
  });
  return { child, done };
}

export function shoal(args: string[]): Promise<CliResult> {
  return spawnShoal(args).done;
}

/** A private data root (and run root, cgroup parent) for CLI tests. */
export interface CliRoot {
  dataRoot: string;
  runRoot: string;
  cgroupParent: string;
  /** `--data-root ... --run-root ... --cgroup-parent ...` */
  flags: string[];
}

export interface CliEnv {
  dir: string;
  registry: RunningRegistry;
  /** The busybox test image as the registry serves it (already pulled into every root made here). */
  image: string;
  /** Makes a data root with the image pulled into it; `runRoot` may be shared between roots. */
  root(opts?: { runRoot?: string; cgroupParent?: string }): Promise<CliRoot>;
}

/** A registry with the test images and a temp dir; everything is removed after the test. */
export async function cliEnv(t: { after(fn: () => Promise<void>): void }): Promise<CliEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-conc-'));
  const registry = await startRegistry({ dir: join(dir, 'registry') });
  const roots: CliRoot[] = [];
  t.after(async () => {
    for (const r of roots) await removeEverything(r);
    await registry.stop();
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
      const mp = line.split(' ')[4];
      if (mp?.startsWith(dir)) spawn('umount', ['-l', mp]);
    }
    await rm(dir, { recursive: true, force: true });
  });
  const pushed = await pushTestImages(registry.url);
  const busybox = pushed.find((p) => p.ref === TestImages.busybox);
  if (!busybox) throw new Error(`no ${TestImages.busybox} among ${pushed.map((p) => p.ref).join(', ')}`);
  let n = 0;
  return {
    dir,
    registry,
    image: busybox.remoteRef,
    async root(opts = {}) {
      const i = n++;
      const r: CliRoot = {
        dataRoot: join(dir, `data${i}`),
        runRoot: opts.runRoot ?? join(dir, `run${i}`),
        cgroupParent: opts.cgroupParent ?? `/shoal-conc-${randomBytes(4).toString('hex')}`,
        flags: [],
      };
      r.flags = ['--data-root', r.dataRoot, '--run-root', r.runRoot, '--cgroup-parent', r.cgroupParent];
      roots.push(r);
      const pull = await shoal(['image', 'pull', '-q', '--data-root', r.dataRoot, busybox.remoteRef]);
      if (pull.code !== 0) throw new Error(`image pull failed: ${pull.stderr}`);
      return r;
    },
  };
}

/** Opens an engine on a root from the test process (recovery runs, nothing is collected in the background). */
export function openRoot(r: CliRoot, extra: { collector?: boolean } = {}): Promise<Engine> {
  return Engine.open({ dataRoot: r.dataRoot, runRoot: r.runRoot, cgroupParent: r.cgroupParent, ...extra });
}

/** Removes every container of a root, its cgroups and mounts (test cleanup; also after a failure). */
export async function removeEverything(r: CliRoot): Promise<void> {
  if (existsSync(r.dataRoot)) {
    const e = await openRoot(r);
    for (const c of await e.list({ all: true })) {
      await e.remove(c.id, { force: true }).catch((err: unknown) => {
        process.stderr.write(`cleanup: rm ${c.id}: ${String(err)}\n`);
      });
    }
    await e.close();
  }
  await new Cgroup(r.cgroupParent).remove({ keepParent: true });
}

/** What the engine has made on the host for one root, found independently of the engine. */
export interface Census {
  /** Container ids with a state file, and their names. */
  records: Map<string, string>;
  /** Names reserved in `<dataRoot>/names` → the id they point at. */
  names: Map<string, string>;
  /** Temp files and dirs anywhere below the data root's `containers` dir. */
  tmp: string[];
  /** Mount points below the data root or the run root. */
  mounts: string[];
  /** Child cgroups (container ids) below the root's cgroup parent, in any hierarchy. */
  cgroups: Set<string>;
  /** Bundle dirs below the run root (any data root's). */
  bundles: Set<string>;
  /** Containers runc knows, under any runc root below the run root. */
  runc: Set<string>;
}

function readdirOr(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/** Dirs named `bundles` or `runc` below the run root, at most two levels down. */
function runtimeDirs(runRoot: string, name: string): string[] {
  const out: string[] = [];
  for (const a of readdirOr(runRoot)) {
    if (a === name) out.push(join(runRoot, a));
    for (const b of readdirOr(join(runRoot, a))) if (b === name) out.push(join(runRoot, a, b));
  }
  return out;
}

export async function census(r: CliRoot): Promise<Census> {
  const records = new Map<string, string>();
  const tmp: string[] = [];
  const containers = join(r.dataRoot, 'containers');
  for (const e of readdirOr(containers)) {
    const state = join(containers, e, 'state.json');
    if (!/^[0-9a-f]{64}$/.test(e)) tmp.push(join(containers, e));
    else if (!existsSync(state)) tmp.push(join(containers, e));
    else records.set(e, (JSON.parse(readFileSync(state, 'utf8')) as { name: string }).name);
    for (const f of readdirOr(join(containers, e))) if (/\.tmp$|^\.tmp|\.new-|\.del-/.test(f)) tmp.push(f);
  }
  const names = new Map<string, string>();
  for (const n of readdirOr(join(r.dataRoot, 'names'))) names.set(n, readlinkSync(join(r.dataRoot, 'names', n)));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(`${r.dataRoot}/`) || mp.startsWith(`${r.runRoot}/`));
  const cgroups = new Set<string>();
  const cg = new Cgroup(r.cgroupParent);
  for (const h of cg.layout.hierarchies)
    for (const d of readdirOr(join(h, r.cgroupParent))) {
      if (/^[0-9a-f]{64}$/.test(d)) cgroups.add(d);
    }
  const bundles = new Set<string>();
  for (const b of runtimeDirs(r.runRoot, 'bundles')) for (const id of readdirOr(b)) bundles.add(id);
  const runc = new Set<string>();
  for (const root of runtimeDirs(r.runRoot, 'runc')) {
    for (const s of await new Runc('/usr/sbin/runc', root).list()) runc.add(s.id);
  }
  return { records, names, tmp, mounts, cgroups, bundles, runc };
}

/** True while the process `pid` with start time `start` (field 22 of /proc/PID/stat) runs and is no zombie. */
export function processAlive(pid: number | undefined, start: number | undefined): boolean {
  if (!pid) return false;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return false;
    throw err;
  }
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[0] !== 'Z' && (!start || Number(rest[19]) === start);
}
