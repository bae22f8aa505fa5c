// Docker's lowercase strings for the enumerations of the API, in one place. The wire types keep
// them as plain strings (as Docker's JSON does); these lists check and order them.

export const NODE_ROLES = ['worker', 'manager'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

export const NODE_AVAILABILITIES = ['active', 'pause', 'drain'] as const;
export type NodeAvailability = (typeof NODE_AVAILABILITIES)[number];

export const NODE_STATES = ['unknown', 'down', 'ready', 'disconnected'] as const;
export type NodeState = (typeof NODE_STATES)[number];

export const REACHABILITIES = ['unknown', 'unreachable', 'reachable'] as const;
export type Reachability = (typeof REACHABILITIES)[number];

export const NODE_MEMBERSHIPS = ['pending', 'accepted'] as const;
export type NodeMembership = (typeof NODE_MEMBERSHIPS)[number];

export const CERTIFICATE_STATES = ['pending', 'issued', 'failed', 'renew', 'rotate'] as const;
export type CertificateState = (typeof CERTIFICATE_STATES)[number];

/** Task states in their order: a task's observed state only moves forward in this list. */
export const TASK_STATES = [
  'new',
  'allocated',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
  'running',
  'complete',
  'shutdown',
  'failed',
  'rejected',
  'remove',
  'orphaned',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** The position of a task state in TASK_STATES (-1 for an unknown string). */
export function taskStateRank(state: string): number {
  return (TASK_STATES as readonly string[]).indexOf(state);
}

/** True for states a task never leaves running again: complete and after. */
export function isTerminalTaskState(state: string): boolean {
  return taskStateRank(state) >= taskStateRank('complete');
}

export const RESTART_CONDITIONS = ['none', 'on-failure', 'any'] as const;
export type RestartCondition = (typeof RESTART_CONDITIONS)[number];

export const UPDATE_FAILURE_ACTIONS = ['pause', 'continue', 'rollback'] as const;
export type UpdateFailureAction = (typeof UPDATE_FAILURE_ACTIONS)[number];

export const UPDATE_ORDERS = ['stop-first', 'start-first'] as const;
export type UpdateOrder = (typeof UPDATE_ORDERS)[number];

export const UPDATE_STATES = [
  'updating',
  'paused',
  'completed',
  'rollback_started',
  'rollback_paused',
  'rollback_completed',
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

export const ENDPOINT_MODES = ['vip', 'dnsrr'] as const;
export type EndpointMode = (typeof ENDPOINT_MODES)[number];

export const PORT_PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
export type PortProtocol = (typeof PORT_PROTOCOLS)[number];

export const PUBLISH_MODES = ['ingress', 'host'] as const;
export type PublishMode = (typeof PUBLISH_MODES)[number];

export const MOUNT_TYPES = ['bind', 'volume', 'tmpfs', 'npipe', 'cluster', 'image'] as const;
export type MountType = (typeof MOUNT_TYPES)[number];

export const BIND_PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'] as const;
export type BindPropagation = (typeof BIND_PROPAGATIONS)[number];

/** Service modes by the names `service ls` prints and `--mode` takes. */
export const SERVICE_MODES = ['replicated', 'global', 'replicated-job', 'global-job'] as const;
export type ServiceModeName = (typeof SERVICE_MODES)[number];

export const ASSIGNMENT_TYPES = ['complete', 'incremental'] as const;
export type AssignmentType = (typeof ASSIGNMENT_TYPES)[number];

export const ASSIGNMENT_ACTIONS = ['update', 'remove'] as const;
export type AssignmentAction = (typeof ASSIGNMENT_ACTIONS)[number];

export const LOCAL_NODE_STATES = ['inactive', 'pending', 'active', 'error', 'locked'] as const;
export type LocalNodeState = (typeof LOCAL_NODE_STATES)[number];

export const HEALTH_STATUSES = ['serving', 'not-serving', 'unknown'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

/** True when `value` is one of `list` (narrows it). */
export function isOneOf<T extends string>(list: readonly T[], value: string | undefined): value is T {
  return value !== undefined && (list as readonly string[]).includes(value);
}
