/**
 * Where a lab keeps its files and the state JSON that records what it made (written atomically:
 * temp file + rename), so that `down` can undo it after a crash.
 */
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { LabHostNotFoundError, LabNotFoundError } from '../errors.js';
import { checkLabName } from './lab-names.js';

export interface LabHostState {
  name: string;
  index: number;
  netns: string;
  address: string;
  /** Root-namespace end of the veth; the host's end is `eth0`. */
  veth: string;
  hostname: string;
  dataDir: string;
  runDir: string;
  /** A persistent UTS namespace (bind mount) holding the host's hostname. */
  utsPath: string;
  /** Delay/loss set with `lab delay`; `relayPid` when a relay (not netem) applies it. */
  fault?: { delayMs: number; lossPct: number; via: 'netem' | 'relay' | 'nft'; relayPid?: number };
  /** The host's shoald while it runs (lab-shoald.ts). */
  shoald?: { pid: number };
}

export interface LabRegistryState {
  addr: string;
  url: string;
  pid: number;
  dir: string;
}

export interface LabState {
  version: 1;
  name: string;
  tag: string;
  bridge: string;
  /** Index of the lab's /24 in 198.18.0.0/15. */
  block: number;
  subnet: string;
  gateway: string;
  createdAt: string;
  /** The comment of the iptables FORWARD rule the lab added, if it added one. */
  firewallComment?: string;
  hosts: LabHostState[];
  registry?: LabRegistryState;
  /** Set once `up --managers` made a swarm of the hosts: h1..hM managers, the rest workers. */
  cluster?: { managers: number; overlayPool: string };
}

/** The root of all labs: $SHOAL_LAB_ROOT or /var/lib/shoal-lab. */
export function labRoot(): string {
  return process.env['SHOAL_LAB_ROOT'] ?? '/var/lib/shoal-lab';
}

export function labDir(lab: string): string {
  return join(labRoot(), lab);
}

/** The lock of one lab (outside its directory, so `down` can remove the directory). */
export function labLockPath(lab: string): string {
  return join(labRoot(), `.${lab}.lock`);
}

export function stateFile(lab: string): string {
  return join(labDir(lab), 'state.json');
}

/** Reads a lab's state, or undefined if it has none. */
export async function readLabState(lab: string): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(lab), 'utf8')) as LabState;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** Writes a lab's state atomically. */
export async function writeLabState(state: LabState): Promise<void> {
  const dir = labDir(state.name);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.state.json.${process.pid}`);
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await rename(tmp, stateFile(state.name));
}

/** Names of every lab with a state file under the lab root. */
export async function listLabNames(): Promise<string[]> {
  try {
    const names = await readdir(labRoot());
    const out: string[] = [];
    for (const n of names.filter((n) => !n.startsWith('.')).sort()) if (await readLabState(n)) out.push(n);
    return out;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
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
