/**
 * The data root: `<data-root>/swarm/` holds the node's identity and cluster state
 * (`certificates/` 0700 through ca's NodeKeyStore, `raft/` the WAL and snapshots, `state.json`
 * with role, node ID and addresses); `<data-root>/engine` is the engine's.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { writeFileAtomic } from '@shoal/ca';
import { DaemonError } from './errors.js';

export interface DataLayout {
  root: string;
  swarm: string;
  certificates: string;
  raft: string;
  stateFile: string;
  engine: string;
}

export function dataLayout(dataRoot: string): DataLayout {
  const swarm = join(dataRoot, 'swarm');
  return {
    root: dataRoot,
    swarm,
    certificates: join(swarm, 'certificates'),
    raft: join(swarm, 'raft'),
    stateFile: join(swarm, 'state.json'),
    engine: join(dataRoot, 'engine'),
  };
}

/** What the node remembers about its membership across restarts. */
export interface NodeState {
  version: 1;
  nodeId: string;
  clusterId: string;
  role: 'manager' | 'worker';
  /** This node's Raft member ID (managers). */
  raftId?: string;
  listenAddr: string;
  advertiseAddr: string;
  /** Managers known last (host:port), for a worker's session failover and a manager's rejoin. */
  remoteManagers: string[];
  /** Raft members' cluster addresses (node ID -> host:port), kept for restarts. */
  raftPeers?: Record<string, string>;
  autolock: boolean;
}

export async function ensureLayout(l: DataLayout): Promise<void> {
  await mkdir(l.swarm, { recursive: true, mode: 0o700 });
  await mkdir(l.engine, { recursive: true, mode: 0o711 });
}

export async function readNodeState(l: DataLayout): Promise<NodeState | undefined> {
  let text: string;
  try {
    text = await readFile(l.stateFile, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const s = JSON.parse(text) as NodeState;
    if (s.version !== 1 || typeof s.nodeId !== 'string' || (s.role !== 'manager' && s.role !== 'worker')) {
      throw new Error('unexpected content');
    }
    return s;
  } catch (err) {
    throw new DaemonError(
      'DAEMON_STATE_CORRUPT',
      `${l.stateFile} is unreadable: ${(err as Error).message}`,
      'internal',
      { cause: err },
    );
  }
}

export async function writeNodeState(l: DataLayout, s: NodeState): Promise<void> {
  await mkdir(l.swarm, { recursive: true, mode: 0o700 });
  await writeFileAtomic(l.stateFile, JSON.stringify(s, null, 2) + '\n', 0o600);
}

/** Forgets the swarm (leave): identity, Raft state and state.json. The engine is untouched. */
export async function removeSwarmState(l: DataLayout): Promise<void> {
  await rm(l.swarm, { recursive: true, force: true });
}
