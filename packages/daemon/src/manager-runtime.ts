/**
 * A manager's moving parts: the Raft node (WAL and snapshots under `<data-root>/swarm/raft`,
 * sealed with the node's DEK), the gRPC transport, the cluster store on it, and the Manager
 * .
 */
import { mkdir } from 'node:fs/promises';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { DekCipher, type RootCA } from '@shoal/ca';
import type { Logger } from '@shoal/common';
import { DiskLogStore, RaftNode, RawNode, decodeConfChange } from '@shoal/raft';
import { ClusterStore, StoreStateMachine } from '@shoal/store';
import { GrpcRaftTransport } from './grpc-raft-transport.js';
import { Manager } from '@shoal/manager';

export interface ManagerRuntimeOptions {
  nodeId: string;
  raftDir: string;
  dek: Buffer;
  advertiseAddr: string;
  /** Known Raft members (node ID -> host:port), this node included. */
  peers: Record<string, string>;
  /** Set only when founding a new cluster (init, force-new-cluster). */
  bootstrap: boolean;
  /** force-new-cluster: the state recovered from the old Raft log, the new cluster's first snapshot. */
  initialState?: StoreStateMachine;
  credentials: () => ChannelCredentials;
  rootCA: RootCA;
  logger: Logger;
  /** Called when a member's address is learnt (persisted in state.json for restarts). */
  onPeer: (id: string, address: string | undefined) => void;
  onFatal: (err: Error) => void;
}

export class ManagerRuntime {
  raft!: RaftNode;
  store!: ClusterStore;
  transport!: GrpcRaftTransport;
  manager!: Manager;
  private logStore: DiskLogStore | undefined;

  constructor(readonly opts: ManagerRuntimeOptions) {}

  async start(): Promise<void> {
    const o = this.opts;
    await mkdir(o.raftDir, { recursive: true, mode: 0o700 });
    this.logStore = await DiskLogStore.open(o.raftDir, {
      nodeId: o.nodeId,
      cipher: new DekCipher(o.dek),
      logger: o.logger,
    });
    const transport = new GrpcRaftTransport({ credentials: o.credentials, logger: o.logger });
    const setPeer = transport.setPeer.bind(transport);
    const removePeer = transport.removePeer.bind(transport);
    transport.setPeer = (id, addr) => {
      setPeer(id, addr);
      o.onPeer(id, addr);
    };
    transport.removePeer = (id) => {
      removePeer(id);
      o.onPeer(id, undefined);
    };
    this.transport = transport;
    const sm = o.initialState ?? new StoreStateMachine();
    this.raft = new RaftNode({
      id: o.nodeId,
      store: this.logStore,
      transport,
      stateMachine: sm,
      createRawNode: (c) => new RawNode(c),
      decodeConfChange,
      ...(o.bootstrap ? { bootstrapVoters: [o.nodeId] } : {}),
      peers: o.peers,
      tickMs: 100,
      electionTicks: 6,
      heartbeatTicks: 1,
      logger: o.logger.child({ component: 'raft' }),
      onFatal: o.onFatal,
    });
    this.store = new ClusterStore({ log: this.raft, stateMachine: sm, logger: o.logger.child({ component: 'store' }) });
    await this.raft.start();
    this.manager = new Manager({
      nodeId: o.nodeId,
      store: this.store,
      raft: this.raft,
      rootCA: o.rootCA,
      logger: o.logger.child({ component: 'manager' }),
    });
    this.manager.start();
  }

  /** The leader's cluster address, '' when there is none (or this node leads). */
  leaderAddress(): { leader: string; address: string; isLeader: boolean } {
    const info = this.raft.leaderInfo();
    if (info.isLeader) return { leader: info.leader, address: this.opts.advertiseAddr, isLeader: true };
    return {
      leader: info.leader,
      address: info.leader === '' ? '' : (this.transport.peerAddress(info.leader) ?? ''),
      isLeader: false,
    };
  }

  async stop(): Promise<void> {
    this.manager?.stop();
    this.store?.close();
    await this.raft?.close();
  }
}

/**
 * force-new-cluster: the store as this manager's Raft log has it (snapshot plus every entry up to
 * the durable commit index), read by a Raft node that talks to nobody and never campaigns.
 */
export async function recoverStoreState(
  raftDir: string,
  nodeId: string,
  dek: Buffer,
  logger: Logger,
): Promise<StoreStateMachine> {
  const logStore = await DiskLogStore.open(raftDir, { nodeId, cipher: new DekCipher(dek), logger });
  const commit = logStore.boot.hardState.commit;
  const sm = new StoreStateMachine();
  const transport = new GrpcRaftTransport({
    credentials: () => {
      throw new Error('a recovering Raft node sends nothing');
    },
    logger,
  });
  const raft = new RaftNode({
    id: nodeId,
    store: logStore,
    transport,
    stateMachine: sm,
    createRawNode: (c) => new RawNode(c),
    decodeConfChange,
    tickMs: 100,
    electionTicks: 1_000_000,
    logger,
  });
  await raft.start();
  const until = Date.now() + 30_000;
  while (raft.appliedIndex() < commit && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const applied = raft.appliedIndex();
  await raft.close();
  if (applied < commit)
    throw new Error(`could not replay the Raft log: applied ${applied} of ${commit} committed entries`);
  logger.info({ commit, revision: sm.state.revision }, 'store state recovered from the Raft log');
  return sm;
}
