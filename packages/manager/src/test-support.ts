/**
 * Test support (used only by this package's tests): a fake clock, a fake Raft membership for
 * unit tests over a LocalLog store, and a manager set up with a real store and a real root CA.
 */
import type { ClusterSpec } from '@shoal/api';
import type { Clock } from '@shoal/common';
import { createCsr, generateNodeKey, newClusterId, RootCA } from '@shoal/ca';
import type { ConfState, LeaderInfo, ProgressStatus } from '@shoal/raft';
import { ClusterStore, LocalLog, StoreStateMachine } from '@shoal/store';
import type { RaftLike, StoredCluster } from './context.js';
import { Manager } from './manager.js';

export class FakeClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return { cancel: () => this.timers.delete(id) };
  }

  /** Moves time forward without firing timers (a stalled process); the next advance fires them late. */
  stall(ms: number): void {
    this.t += ms;
  }

  /** Moves time forward, firing due timers in order and letting their promises settle. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= target && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      await settle();
    }
    this.t = target;
    await settle();
  }
}

/** Lets pending promise chains (store commits on a LocalLog) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Raft as far as the manager sees it, for unit tests: voters, reachability, leadership. */
export class FakeRaft implements RaftLike {
  voters: string[];
  leader: string;
  unreachable = new Set<string>();
  readonly removed: string[] = [];
  readonly added: { id: string; addr: string }[] = [];
  readonly transfers: string[] = [];
  private readonly listeners = new Set<(info: LeaderInfo) => void>();

  constructor(readonly id: string) {
    this.voters = [id];
    this.leader = id;
  }

  leaderInfo(): LeaderInfo {
    return { leader: this.leader, term: 1, isLeader: this.leader === this.id };
  }

  setLeader(id: string): void {
    this.leader = id;
    for (const l of this.listeners) l(this.leaderInfo());
  }

  onLeaderChange(fn: (info: LeaderInfo) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private conf(): ConfState {
    return { voters: [...this.voters], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  }

  addMember(id: string, address: string): Promise<ConfState> {
    this.added.push({ id, addr: address });
    if (!this.voters.includes(id)) this.voters.push(id);
    return Promise.resolve(this.conf());
  }

  removeMember(id: string): Promise<ConfState> {
    this.removed.push(id);
    this.voters = this.voters.filter((v) => v !== id);
    return Promise.resolve(this.conf());
  }

  transferLeadership(to: string): Promise<void> {
    this.transfers.push(to);
    return Promise.resolve();
  }

  status(): { confState: ConfState; progress?: ReadonlyMap<string, ProgressStatus> } {
    const progress = new Map<string, ProgressStatus>();
    for (const v of this.voters) {
      progress.set(v, {
        match: 1,
        next: 2,
        state: 'replicate',
        isLearner: false,
        recentActive: !this.unreachable.has(v),
      });
    }
    return { confState: this.conf(), progress };
  }
}

export interface Rig {
  manager: Manager;
  store: ClusterStore;
  raft: FakeRaft;
  clock: FakeClock;
  root: RootCA;
  clusterId: string;
  tokens(): { worker: string; manager: string };
}

let shared: RootCA | undefined;

/** A bootstrapped single-manager cluster on a LocalLog store with a real root CA. */
export async function rig(opts: { autolock?: boolean; spec?: ClusterSpec } = {}): Promise<Rig> {
  shared ??= await RootCA.create();
  const root = shared;
  const sm = new StoreStateMachine();
  let t = Date.parse('2026-11-29T00:00:00Z');
  const store = new ClusterStore({ log: new LocalLog(sm), stateMachine: sm, now: () => new Date((t += 1000)) });
  const raft = new FakeRaft('mgr1');
  const clock = new FakeClock();
  const manager = new Manager({ nodeId: 'mgr1', store, raft, rootCA: root, clock });
  const clusterId = newClusterId();
  await manager.bootstrapCluster({
    clusterId,
    advertiseAddr: '198.18.0.2:2377',
    description: { Hostname: 'h1' },
    ...(opts.autolock === true ? { autolock: true } : {}),
    ...(opts.spec !== undefined ? { spec: opts.spec } : {}),
  });
  manager.start();
  return {
    manager,
    store,
    raft,
    clock,
    root,
    clusterId,
    tokens() {
      const c = store.list<StoredCluster>('cluster')[0];
      return { worker: c?.JoinTokens?.Worker ?? '', manager: c?.JoinTokens?.Manager ?? '' };
    },
  };
}

/** A fresh CSR (PEM bytes) for a joining node. */
export async function newCsr(): Promise<Buffer> {
  return Buffer.from(await createCsr(generateNodeKey()));
}
