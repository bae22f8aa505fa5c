/**
 * Which cgroup layout a host has, read from the files under its cgroup root (so that tests can
 * point it at a recorded tree):
 * - `v2`: one unified hierarchy (`<root>/cgroup.controllers` exists), as on most current distros;
 * - `v1`: one directory per controller hierarchy (`memory`, `cpu`, `cpu,cpuacct`, `pids`, ...),
 *   possibly with a `unified` v2 tree beside it (the "hybrid" layout of this machine).
 */
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';

export interface CgroupV1Layout {
  version: 1;
  root: string;
  /** Controller name (`memory`, `cpuacct`, `pids`, ...) to its hierarchy dir. */
  controllers: Map<string, string>;
  /** Every hierarchy dir, once each (named ones like `systemd` and the `unified` tree included). */
  hierarchies: string[];
}

export interface CgroupV2Layout {
  version: 2;
  root: string;
  /** Controllers enabled at the root. */
  controllers: Set<string>;
  hierarchies: string[];
}

export type CgroupLayout = CgroupV1Layout | CgroupV2Layout;

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';

/** Reads the layout under `root` (default /sys/fs/cgroup). */
export function detectCgroupLayout(root = DEFAULT_CGROUP_ROOT): CgroupLayout {
  const v2File = join(root, 'cgroup.controllers');
  if (existsSync(v2File)) {
    const text = readText(v2File);
    return { version: 2, root, controllers: new Set(text.split(/\s+/).filter(Boolean)), hierarchies: [root] };
  }
  const controllers = new Map<string, string>();
  const hierarchies: string[] = [];
  const seen = new Set<string>();
  let entries: string[];
  try {
    entries = readdirSync(root).sort();
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    entries = []; // no cgroup filesystem mounted there
  }
  for (const name of entries) {
    const dir = join(root, name);
    let real: string;
    try {
      if (!statSync(dir).isDirectory()) continue;
      real = realpathSync(dir);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      continue; // a dangling symlink
    }
    if (!seen.has(real)) {
      seen.add(real);
      hierarchies.push(dir);
    }
    if (name === 'unified' || existsSync(join(dir, 'cgroup.controllers'))) continue;
    for (const c of name.split(',')) {
      if (c && !controllers.has(c)) controllers.set(c, dir);
    }
  }
  return { version: 1, root, controllers, hierarchies };
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    return '';
  }
}
