/**
 * @module @shoal/raft/testing
 * The test and benchmark vehicles built around the Raft library, kept out of its production API
 * (`@shoal/raft`): the replicated KV service (state machine, server, client, a cluster of KV
 * processes), the linearizability checker, the deterministic simulator and the etcd cluster the
 * benchmark compares with. See docs/raft.md.
 */
export { KvStateMachine } from './kv/state-machine.js';
export { KvServer, type KvServerOptions } from './kv/server.js';
export { KvClient, type KvClientOptions } from './kv/client.js';
export { KvProcessCluster, freePorts, type ProcessClusterOptions } from './kv/process-cluster.js';
export { encodeCommand, decodeCommand, type KvCommand, type KvResult } from './kv/command.js';
export { KvTimeoutError, KvRequestError } from './errors.js';
export {
  checkLinearizability,
  formatOperation,
  type KvOperation,
  type KvOpKind,
  type LinearizabilityResult,
  type CheckOptions,
} from './check/linearizability.js';
export {
  runSeed,
  Simulation,
  DEFAULT_SIM_OPTIONS,
  LivenessError,
  HistoryError,
  type SimOptions,
  type SimResult,
} from './sim/simulator.js';
export { EtcdCluster } from './bench/etcd-cluster.js';
