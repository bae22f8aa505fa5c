/**
 * @module @shoal/manager
 * The manager role: the Control API for nodes and the cluster, the CA service (joins, renewals,
 * promote/demote reissues), the dispatcher (sessions, heartbeats, nodes marked down), Raft
 * membership, and the leader-only loops that follow Raft leadership. See docs/manager.md.
 *
 * ```ts
 * const manager = new Manager({ nodeId, store, raft, rootCA, logger });
 * await manager.bootstrapCluster({ clusterId, advertiseAddr: '198.18.0.2:2377', nodeCertPem });
 * manager.start();
 * const s = manager.services();
 * server.addService(ControlService, s.Control); // CA, Dispatcher, RaftMembership alike
 * ```
 */
export * from './errors.js';
export {
  Manager,
  type ManagerOptions,
  type BootstrapOptions,
  type BootstrapResult,
  type ManagerServices,
} from './manager.js';
export type { RaftLike, ManagerContext, StoredNode, StoredCluster } from './context.js';
export {
  FORWARDED_NODE_ID,
  FORWARDED_ROLE,
  FORWARDED_ADDR,
  identifyCaller,
  hostOfPeer,
  type CallerIdentity,
  type CallLike,
} from './identity.js';
export { HEARTBEAT_GRACE, FAILOVER_GRACE_FACTOR } from './dispatcher.js';
export { clusterView } from './control.js';
export { nodeMatches } from './nodes.js';
export { checkRaftAddr } from './raft-membership.js';
export {
  parseConstraints,
  constraintMatches,
  constraintsMatch,
  nodeValue,
  type Constraint,
} from './services/constraint.js';
export type { StoredService, StoredTask, StoredSecret, StoredConfig } from './services/objects.js';
export { StacksApi, STACK_NAMESPACE_LABEL, stackOf } from './stacks/stacks-api.js';
export { specDiff } from './stacks/spec-diff.js';
