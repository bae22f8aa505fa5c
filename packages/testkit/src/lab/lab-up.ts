/**
 * `lab up`: makes (or completes) a lab. Every step checks before it acts, so running it again on
 * an existing or half-made lab adds what is missing and changes nothing else. The state file is
 * written before the first system change and after each host, so `down` can always undo it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabCommandError, LabConflictError, LabNotRootError } from '../errors.js';
import { startRegistry } from '../registry/registry-server.js';
import { allowBridge } from './lab-firewall.js';
import { withLock } from './lab-lock.js';
import {
  DEFAULT_HOSTS,
  REGISTRY_PORT,
  blockPrefix,
  bridgeName,
  checkLabName,
  gatewayAddress,
  hostAddress,
  hostName,
  labTag,
  netnsName,
  parseHostCount,
  vethName,
} from './lab-names.js';
import {
  labDir,
  labLockPath,
  listLabNames,
  readLabState,
  writeLabState,
  type LabHostState,
  type LabState,
} from './lab-state.js';
import { ALLOC_LOCK, allocateBlock } from './lab-subnet.js';
import { cmdline, isRoot, linkExists, mountsUnder, netnsExists, sh } from './lab-system.js';

export interface LabUpOptions {
  name: string;
  hosts?: number | string;
  /** Start the lab's registry (default true). */
  registry?: boolean;
}

async function step<T>(lab: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new LabCommandError(lab, what, { cause: err });
  }
}

async function newState(name: string): Promise<LabState> {
  const tag = labTag(name);
  for (const other of await listLabNames()) {
    if (other !== name && labTag(other) === tag)
      throw new LabConflictError(name, `its interface tag '${tag}' is used by lab '${other}'`);
  }
  const bridge = bridgeName(name);
  if (await linkExists(bridge)) throw new LabConflictError(name, `a link named ${bridge} exists but is not this lab's`);
  const block = await allocateBlock(name);
  return {
    version: 1,
    name,
    tag,
    bridge,
    block,
    subnet: `${blockPrefix(block)}.0/24`,
    gateway: gatewayAddress(block),
    createdAt: new Date().toISOString(),
    hosts: [],
  };
}

async function ensureBridge(s: LabState): Promise<void> {
  await step(s.name, `creating bridge ${s.bridge}`, async () => {
    if (!(await linkExists(s.bridge))) await sh('ip', ['link', 'add', s.bridge, 'type', 'bridge']);
    await sh('ip', ['addr', 'replace', `${s.gateway}/24`, 'dev', s.bridge]);
    await sh('ip', ['link', 'set', s.bridge, 'up']);
  });
}

/** Binds a UTS namespace holding `hostname` at `path` (a persistent namespace, like ip netns does for net). */
async function ensureUts(path: string, hostname: string): Promise<void> {
  if (mountsUnder(path).includes(path)) return;
  await writeFile(path, '');
  await sh('unshare', [`--uts=${path}`, 'hostname', hostname]);
}

async function ensureHost(s: LabState, index: number): Promise<LabHostState> {
  const name = hostName(index);
  const base = join(labDir(s.name), 'hosts', name);
  const h: LabHostState = {
    name,
    index,
    netns: netnsName(s.name, name),
    address: hostAddress(s.block, index),
    veth: vethName(s.name, index),
    hostname: name,
    dataDir: join(base, 'data'),
    runDir: join(base, 'run'),
    utsPath: join(base, 'uts'),
  };
  await step(s.name, `creating host ${name}`, async () => {
    await mkdir(h.dataDir, { recursive: true });
    await mkdir(h.runDir, { recursive: true });
    if (!netnsExists(h.netns)) await sh('ip', ['netns', 'add', h.netns]);
    if (!(await linkExists(h.veth))) {
      if (await linkExists('eth0', h.netns)) await sh('ip', ['-n', h.netns, 'link', 'del', 'eth0']);
      await sh('ip', ['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
    }
    await sh('ip', ['link', 'set', h.veth, 'master', s.bridge, 'up']);
    await sh('ip', ['-n', h.netns, 'link', 'set', 'lo', 'up']);
    await sh('ip', ['-n', h.netns, 'addr', 'replace', `${h.address}/24`, 'dev', 'eth0']);
    await sh('ip', ['-n', h.netns, 'link', 'set', 'eth0', 'up']);
    // The connected /24 is the only route: the bridge and the other hosts, nothing beyond.
    await sh('ip', ['-n', h.netns, 'route', 'replace', s.subnet, 'dev', 'eth0', 'src', h.address]);
    await ensureUts(h.utsPath, h.hostname);
  });
  return h;
}

function registryRunning(s: LabState): boolean {
  const r = s.registry;
  return !!r && !!cmdline(r.pid)?.includes(labDir(s.name));
}

/**
 * Brings a lab up (or completes it): bridge, firewall rule, hosts h1..hN, registry.
 * @throws LabInvalidNameError, LabHostCountError, LabNotRootError before changing anything.
 */
export async function labUp(opts: LabUpOptions): Promise<LabState> {
  checkLabName(opts.name);
  const count = parseHostCount(opts.hosts ?? DEFAULT_HOSTS);
  if (!isRoot()) throw new LabNotRootError('up');
  return withLock(labLockPath(opts.name), opts.name, async () => {
    let s = await readLabState(opts.name);
    if (!s) {
      s = await withLock(ALLOC_LOCK, 'allocation', async () => {
        const fresh = await newState(opts.name);
        await writeLabState(fresh);
        await ensureBridge(fresh);
        return fresh;
      });
    } else {
      await ensureBridge(s);
    }
    const comment = await step(s.name, 'adding the FORWARD accept rule', () => allowBridge(s.name, s.bridge));
    if (comment) s.firewallComment = comment;
    await writeLabState(s);
    for (let i = 1; i <= count; i++) {
      const known = s.hosts.find((h) => h.index === i);
      // A host that exists is left alone; one whose namespace or link vanished is made again.
      if (known && netnsExists(known.netns) && (await linkExists(known.veth))) continue;
      const made = await ensureHost(s, i);
      s.hosts = s.hosts.filter((h) => h.index !== i);
      s.hosts.push(made);
      s.hosts.sort((a, b) => a.index - b.index);
      await writeLabState(s);
    }
    if (opts.registry !== false && !registryRunning(s)) {
      const dir = join(labDir(s.name), 'registry');
      const reg = await startRegistry({ dir, addr: `${s.gateway}:${REGISTRY_PORT}`, detached: true });
      s.registry = { addr: reg.addr, url: reg.url, pid: reg.pid, dir };
      await writeLabState(s);
    }
    return s;
  });
}
