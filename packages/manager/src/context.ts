/**
 * What every part of the manager shares: the store, the Raft node, the root CA, the clock, and
 * small helpers over them (the one cluster object, read-modify-write of a node, the Raft
 * membership as the leader sees it).
 */
import type { Cluster, Node } from '@shoal/api';
import { RootCA } from '@shoal/ca';
import type { Clock, Logger } from '@shoal/common';
import type { ConfState, LeaderInfo, ProgressStatus } from '@shoal/raft';
import { type ClusterStore, type StoredObject, VersionConflictError } from '@shoal/store';
import { ClusterNotFoundError, NodeNotFoundError, QuorumRiskError } from './errors.js';

/** The part of RaftNode the manager uses (RaftNode satisfies it; unit tests give a fake). */
export interface RaftLike {
  readonly id: string;
  leaderInfo(): LeaderInfo;
  onLeaderChange(fn: (info: LeaderInfo) => void): () => void;
  addMember(id: string, address: string, opts?: { signal?: AbortSignal }): Promise<ConfState>;
  removeMember(id: string, opts?: { signal?: AbortSignal }): Promise<ConfState>;
  transferLeadership(to: string, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
  status(): { readonly confState: ConfState; readonly progress?: ReadonlyMap<string, ProgressStatus> };
}

export type StoredNode = Node & StoredObject;
export type StoredCluster = Cluster & StoredObject;

export interface ManagerContext {
  readonly nodeId: string;
  readonly store: ClusterStore;
  readonly raft: RaftLike;
  readonly rootCA: RootCA;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Override of the cluster's dispatcher heartbeat period (ms). */
  readonly heartbeatPeriodMs: number | undefined;
  readonly reachability: ReachabilityTracker;
}

/**
 * When each Raft member was last seen active by this leader. Raft's `recentActive` is cleared for
 * every follower at each check-quorum round and set again by the next response, so a single read
 * can catch a healthy manager between the two; a member counts as reachable when it was active
 * within `windowMs` (sampled by the leader every few hundred ms and at every read).
 */
export class ReachabilityTracker {
  private readonly lastActive = new Map<string, number>();
  constructor(private readonly windowMs = 2000) {}

  observe(progress: ReadonlyMap<string, ProgressStatus> | undefined, now = Date.now()): void {
    for (const [id, p] of progress ?? []) if (p.recentActive) this.lastActive.set(id, now);
  }

  reachable(id: string, progress: ProgressStatus | undefined, now = Date.now()): boolean {
    if (progress === undefined) return false;
    if (progress.recentActive) return true;
    const t = this.lastActive.get(id);
    return t !== undefined && now - t <= this.windowMs;
  }

  /** Forget old observations (a new leadership starts from Raft's own view). */
  reset(): void {
    this.lastActive.clear();
  }
}

/** The one cluster object (created by bootstrapCluster). */
export function theCluster(ctx: ManagerContext): StoredCluster {
  const c = ctx.store.list<StoredCluster>('cluster')[0];
  if (c === undefined) throw new ClusterNotFoundError('default (no swarm initialised yet)');
  return c;
}

/** The clusters's certificate expiry in ms (CAConfig.NodeCertExpiry is in ns). */
export function certExpiryMs(cluster: Cluster): number | undefined {
  const ns = cluster.Spec?.CAConfig?.NodeCertExpiry ?? 0;
  return ns > 0 ? Math.round(ns / 1e6) : undefined;
}

/** The heartbeat period in ms: the override, else the cluster's, else 5 s. */
export function heartbeatPeriodMs(ctx: ManagerContext): number {
  if (ctx.heartbeatPeriodMs !== undefined) return ctx.heartbeatPeriodMs;
  const c = ctx.store.list<StoredCluster>('cluster')[0];
  const ns = c?.Spec?.Dispatcher?.HeartbeatPeriod ?? 0;
  return ns > 0 ? Math.round(ns / 1e6) : 5000;
}

/** A root CA that can sign: the one given, or the cluster's own from the store (a new leader). */
export function signingCA(ctx: ManagerContext): RootCA {
  if (ctx.rootCA.canSign) return ctx.rootCA;
  const c = ctx.store.list<StoredCluster>('cluster')[0];
  const cert = fromStored(c?.RootCA?.CACert);
  const key = fromStored(c?.RootCA?.CAKey);
  if (cert !== undefined && key !== undefined && key.length > 0) {
    const root = RootCA.fromPem(Buffer.from(cert).toString(), Buffer.from(key).toString());
    if (root.digest === ctx.rootCA.digest) return root;
  }
  return ctx.rootCA;
}

/**
 * Reads node `id`, applies `fn` to a copy, and writes it with the version read; retries a few
 * times when somebody else changed the node in between. `fn` returns undefined to write nothing.
 */
export async function updateNode(
  ctx: ManagerContext,
  id: string,
  fn: (n: StoredNode) => StoredNode | undefined,
): Promise<StoredNode | undefined> {
  for (let attempt = 0; ; attempt++) {
    const cur = ctx.store.get<StoredNode>('node', id);
    if (cur === undefined) throw new NodeNotFoundError(id);
    const next = fn(structuredClone<StoredNode>(cur));
    if (next === undefined) return cur;
    try {
      await ctx.store.update((tx) => tx.update('node', next));
      return ctx.store.get<StoredNode>('node', id);
    } catch (err) {
      if (err instanceof VersionConflictError && attempt < 5) continue;
      throw err;
    }
  }
}

/** Raft's voters and how the leader sees them. */
export interface Membership {
  readonly voters: readonly string[];
  readonly leader: string;
  readonly isLeader: boolean;
  reachable(id: string): boolean | undefined;
}

export function membership(ctx: ManagerContext): Membership {
  const st = ctx.raft.status();
  const info = ctx.raft.leaderInfo();
  const voters = [...new Set([...st.confState.voters, ...st.confState.votersOutgoing])];
  if (info.isLeader) ctx.reachability.observe(st.progress);
  return {
    voters,
    leader: info.leader,
    isLeader: info.isLeader,
    reachable(id: string): boolean | undefined {
      if (id === ctx.raft.id) return true;
      if (!info.isLeader) return id === info.leader ? true : undefined;
      return ctx.reachability.reachable(id, st.progress?.get(id));
    },
  };
}

/**
 * Refuses to take `id` out of the Raft group when the managers left would not have a reachable
 * majority among them (as Docker's CanRemoveMember).
 */
export function checkQuorumWithout(ctx: ManagerContext, id: string, action: string): void {
  const m = membership(ctx);
  if (!m.voters.includes(id)) return;
  const rest = m.voters.filter((v) => v !== id);
  const needed = Math.floor(rest.length / 2) + 1;
  const reachable = rest.filter((v) => m.reachable(v) !== false).length;
  if (rest.length === 0 || reachable < needed) throw new QuorumRiskError(action, id, reachable, needed);
}

/**
 * A deep copy of a stored object with its `bytes` fields as Buffers again. The store keeps
 * objects as JSON, where a Buffer is `{ type: 'Buffer', data: [...] }`; gRPC encoding and
 * callers need Uint8Arrays. Everything read from the store and handed out goes through this.
 */
export function fromStored<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return Buffer.from(v) as T;
  if (Array.isArray(v)) return v.map((x: unknown) => fromStored(x)) as T;
  const o = v as Record<string, unknown>;
  if (o['type'] === 'Buffer' && Array.isArray(o['data']) && Object.keys(o).length === 2) {
    return Buffer.from(o['data'] as number[]) as T;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k] = fromStored(x);
  return out as T;
}
