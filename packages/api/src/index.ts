// @shoal/api: the cluster's wire types and gRPC services, generated from proto/ (`npm run proto`),
// with the error <-> gRPC status table, the roles of every RPC, and spec defaults and checks.
export * from './gen/shoal/common.js';
export * from './gen/shoal/container.js';
export * from './gen/shoal/network.js';
export * from './gen/shoal/service.js';
export * from './gen/shoal/task.js';
export * from './gen/shoal/node.js';
export * from './gen/shoal/secret.js';
export * from './gen/shoal/cluster.js';
export * from './gen/shoal/control.js';
export * from './gen/shoal/dispatcher.js';
export * from './gen/shoal/logbroker.js';
export * from './gen/shoal/ca.js';
export * from './gen/shoal/raft.js';
export * from './gen/shoal/health.js';
export * from './gen/shoal/swarm.js';
export { METHOD_ROLES } from './gen/roles.js';
export * from './roles.js';
export * from './errors.js';
export * from './calls.js';
export * from './enums.js';
export * from './defaults.js';
export * from './image-name.js';
export * from './task-template.js';
export * from './validate.js';
export * from './inspect.js';
export * from './auth.js';
export * from './tls.js';
