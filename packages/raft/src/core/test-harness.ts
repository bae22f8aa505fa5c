/**
 * In-memory test network of RawNodes (not exported from the package): processes Readys like a
 * driver would (persist to MemoryStorage, queue messages, apply committed entries and conf
 * changes, advance) and delivers messages between nodes with optional drop filters.
 */
import { MemoryStorage } from './memory-storage.js';
import { RawNode, bootstrapSnapshot } from './raw-node.js';
import type { ConfState, Entry, Message, NodeId, RaftConfig, ReadState, Ready } from './types.js';

export interface HarnessNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  confState: ConfState | undefined;
  readys: Ready[];
}

export type DropFilter = (m: Message) => boolean;

/** A deterministic pseudo-random source for election timeouts in tests. */
export function seqRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

export function testConfig(id: NodeId, storage: MemoryStorage, over: Partial<RaftConfig> = {}): RaftConfig {
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    storage,
    applied: 0,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256,
    maxUncommittedEntriesSize: 0,
    preVote: true,
    checkQuorum: true,
    random: seqRandom(id.length * 7919 + id.charCodeAt(id.length - 1)),
    ...over,
  };
}

export class Network {
  readonly nodes = new Map<NodeId, HarnessNode>();
  /** Messages sent but not yet delivered, in send order. */
  queue: Message[] = [];
  /** Every message ever sent (for assertions). */
  readonly sent: Message[] = [];
  drop: DropFilter = () => false;
  /** Nodes whose outgoing and incoming messages are all dropped. */
  readonly isolated = new Set<NodeId>();
  private readonly over: Partial<RaftConfig>;

  constructor(voters: readonly NodeId[], over: Partial<RaftConfig> = {}, learners: readonly NodeId[] = []) {
    this.over = over;
    const snap = bootstrapSnapshot(voters);
    const cs: ConfState = { ...snap.metadata.confState, learners: [...learners].sort() };
    for (const id of [...voters, ...learners]) {
      const storage = new MemoryStorage();
      storage.applySnapshot({ ...snap, metadata: { ...snap.metadata, confState: cs } });
      storage.setHardState({ term: 1, vote: '', commit: 1 });
      this.addNode(id, storage);
    }
  }

  /** Adds a node with the given storage (empty storage: a new member waiting for the leader). */
  addNode(id: NodeId, storage = new MemoryStorage(), over: Partial<RaftConfig> = {}): HarnessNode {
    const node = new RawNode(testConfig(id, storage, { ...this.over, ...over }));
    const h: HarnessNode = { id, node, storage, applied: [], readStates: [], confState: undefined, readys: [] };
    this.nodes.set(id, h);
    return h;
  }

  /** Restarts a node from its storage (everything persisted survives, nothing else). */
  restart(id: NodeId): HarnessNode {
    const old = this.get(id);
    const applied = old.storage.snapshot().metadata.index;
    const node = new RawNode(testConfig(id, old.storage, { ...this.over, applied }));
    const h: HarnessNode = { ...old, node, applied: [], readStates: [], readys: [] };
    this.nodes.set(id, h);
    return h;
  }

  get(id: NodeId): HarnessNode {
    const h = this.nodes.get(id);
    if (h === undefined) throw new Error(`no node ${id}`);
    return h;
  }

  /** Processes one Ready of `id` if it has one; returns it. */
  processReady(id: NodeId): Ready | undefined {
    const h = this.get(id);
    if (!h.node.hasReady()) return undefined;
    const rd = h.node.ready();
    h.readys.push(rd);
    if (rd.snapshot !== undefined) h.storage.applySnapshot(rd.snapshot);
    h.storage.append(rd.entries);
    if (rd.hardState !== undefined) h.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.send(m);
    for (const e of rd.committedEntries) {
      h.applied.push(e);
      if (e.type === 'confChange') h.confState = h.node.applyConfChangeEntry(e);
    }
    h.readStates.push(...rd.readStates);
    h.node.advance();
    return rd;
  }

  send(m: Message): void {
    this.sent.push(m);
    this.queue.push(m);
  }

  /** Delivers queued messages (applying filters); returns how many were delivered. */
  deliverAll(): number {
    const q = this.queue;
    this.queue = [];
    let n = 0;
    for (const m of q) {
      if (this.isolated.has(m.from) || this.isolated.has(m.to) || this.drop(m)) continue;
      const h = this.nodes.get(m.to);
      if (h === undefined) continue;
      h.node.step(m);
      n++;
    }
    return n;
  }

  /** Drops every queued message (e.g. to simulate loss of one round). */
  dropQueued(filter: DropFilter = () => true): Message[] {
    const dropped = this.queue.filter(filter);
    this.queue = this.queue.filter((m) => !filter(m));
    return dropped;
  }

  /** Processes Readys and delivers messages until nothing moves. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const id of [...this.nodes.keys()].sort()) if (this.processReady(id) !== undefined) moved = true;
      if (this.deliverAll() > 0) moved = true;
      if (!moved && this.queue.length === 0) return;
    }
    throw new Error('network did not stabilize');
  }

  tick(id: NodeId, n = 1): void {
    for (let k = 0; k < n; k++) this.get(id).node.tick();
  }

  tickAll(n = 1): void {
    for (let k = 0; k < n; k++) for (const h of this.nodes.values()) h.node.tick();
  }

  /** Campaigns on `id` and stabilizes. */
  elect(id: NodeId): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  /** What a transport does after a snapshot was delivered: report success to every leader. */
  reportSnapshotAll(): void {
    for (const h of this.nodes.values()) {
      if (h.node.raft.state !== 'leader') continue;
      for (const [id, pr] of h.node.raft.trk.progress) if (pr.state === 'snapshot') h.node.reportSnapshot(id, true);
    }
  }

  leader(): NodeId | undefined {
    for (const h of this.nodes.values()) if (h.node.raft.state === 'leader') return h.id;
    return undefined;
  }

  /** Data of applied normal entries with a payload, as strings. */
  appliedData(id: NodeId): string[] {
    return this.get(id)
      .applied.filter((e) => e.type === 'normal' && e.data.byteLength > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
