/**
 * `lab down`: removes everything a lab made, from its state file and by name (namespaces
 * `shoal-<lab>-h<N>`, links `shl-<tag>` and `sv<tag>-<N>`, processes whose command line points
 * into the lab's directory, the tagged FORWARD rule), so it also works after a crash or kill -9
 * and on half-made labs. Only processes in the lab's namespaces, with the lab's directory on
 * their command line, or in the cgroup of a container of the lab's hosts' engines are killed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { rm } from 'node:fs/promises';
import { LabNotFoundError, LabNotRootError } from '../errors.js';
import { labRules, removeLabRules } from './lab-firewall.js';
import { withLock } from './lab-lock.js';
import { bridgeName, checkLabName, netnsPattern, vethPattern } from './lab-names.js';
import { labDir, labLockPath, readLabState } from './lab-state.js';
import {
  isRoot,
  killPids,
  labContainerIds,
  linkExists,
  listLinks,
  listNetns,
  mountsUnder,
  pidsInNetns,
  pidsInCgroupsNamed,
  pidsWithCmdline,
  removeCgroupsNamed,
  tryRun,
  unmountUnder,
} from './lab-system.js';

/** What `down` found and removed. */
export interface LabDownReport {
  name: string;
  namespaces: string[];
  links: string[];
  processes: number[];
  mounts: string[];
  firewallRules: number;
  removedDir: boolean;
}

/**
 * The tag a host's shoald puts in the names of its task sandboxes and overlay namespaces
 * (`shoal-t-<tag>-...`, `shoal-ov-<tag>-...`: the node ID's first 10 characters, as
 * daemon/node-agent.ts `nodeHostTag`), from the node's state.json; undefined before it joined.
 */
function nodeTag(dataDir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, 'swarm', 'state.json'), 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined; // the host never joined a swarm
    throw err;
  }
  const s = JSON.parse(text) as { nodeId?: unknown };
  if (typeof s.nodeId !== 'string') return undefined;
  return (
    s.nodeId
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 10) || undefined
  );
}

/** Everything of a lab that exists right now (from its state and by name). */
export async function labLeftovers(lab: string): Promise<{
  namespaces: string[];
  links: string[];
  processes: number[];
  mounts: string[];
  rules: string[];
  dir: boolean;
}> {
  const state = await readLabState(lab);
  const dir = labDir(lab);
  const pattern = netnsPattern(lab);
  const tags = (state?.hosts ?? []).map((h) => nodeTag(h.dataDir)).filter((t) => t !== undefined);
  const ofNodes = (n: string): boolean =>
    tags.some((t) => n.startsWith(`shoal-t-${t}-`) || n.startsWith(`shoal-ov-${t}-`));
  const namespaces = [
    ...new Set([
      ...(state?.hosts.map((h) => h.netns) ?? []),
      ...listNetns().filter((n) => pattern.test(n) || ofNodes(n)),
    ]),
  ].filter((n) => existsSync(`/run/netns/${n}`));
  const vp = vethPattern(lab);
  const bridge = state?.bridge ?? bridgeName(lab);
  const links = (await listLinks()).map((l) => l.ifname).filter((n) => n === bridge || vp.test(n));
  // The hosts' containers run in namespaces of their own: found by their cgroups.
  const containers = pidsInCgroupsNamed(labContainerIds(dir));
  const processes = [...new Set([...pidsInNetns(namespaces), ...pidsWithCmdline(`${dir}/`), ...containers])];
  return { namespaces, links, processes, mounts: mountsUnder(dir), rules: await labRules(lab), dir: existsSync(dir) };
}

/**
 * Takes a lab down completely. Idempotent on partial labs.
 * @throws LabNotFoundError when nothing of the lab exists.
 */
export async function labDown(lab: string): Promise<LabDownReport> {
  checkLabName(lab);
  if (!isRoot()) throw new LabNotRootError('down');
  const found = await labLeftovers(lab);
  if (
    !found.dir &&
    found.namespaces.length === 0 &&
    found.links.length === 0 &&
    found.rules.length === 0 &&
    found.processes.length === 0
  ) {
    throw new LabNotFoundError(lab);
  }
  return withLock(labLockPath(lab), lab, async () => {
    const now = await labLeftovers(lab);
    const dir = labDir(lab);
    await killPids(now.processes);
    // Processes that appeared meanwhile (a registry started by a dying `up`) go too.
    await killPids((await labLeftovers(lab)).processes, 1000);
    await unmountUnder(dir);
    await removeCgroupsNamed(labContainerIds(dir));
    for (const ns of now.namespaces) {
      if (!(await tryRun('ip', ['netns', 'del', ns]))) {
        await tryRun('umount', ['-l', `/run/netns/${ns}`]);
        await rm(`/run/netns/${ns}`, { force: true });
      }
    }
    for (const link of now.links.sort((a, b) => (a.startsWith('shl-') ? 1 : 0) - (b.startsWith('shl-') ? 1 : 0))) {
      if (await linkExists(link)) await tryRun('ip', ['link', 'del', link]);
    }
    const rules = await removeLabRules(lab);
    await rm(dir, { recursive: true, force: true });
    return {
      name: lab,
      namespaces: now.namespaces,
      links: now.links,
      processes: now.processes,
      mounts: now.mounts,
      firewallRules: rules,
      removedDir: now.dir,
    };
  });
}
