/**
 * @module @shoal/daemon
 * `shoald`: one daemon per host. It owns flags and daemon.json, the data-root layout, the
 * root-only unix socket for the CLI and the cluster's mTLS port (2377), the Swarm service
 * (init, join, leave, unlock, info), the Raft transport over gRPC, forwarding of Control calls to
 * the leader, and the node side of membership. See docs/daemon.md.
 */
export { shoalVersion } from './version.js';
export * from './config.js';
export * from './errors.js';
export { Daemon, type LocalNodeState, type Identity } from './daemon.js';
export { dataLayout, readNodeState, type DataLayout, type NodeState } from './layout.js';
export { GrpcRaftTransport, raftService, clusterChannelOptions } from './grpc-raft-transport.js';
