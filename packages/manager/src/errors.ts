/**
 * Typed errors of @shoal/manager. Every class has a stable `code` (docs/manager.md) and a `kind`
 * that api's table maps to a gRPC status; callers switch on those, never on the message.
 */
import { ShoalError, type ErrorKind } from '@shoal/common';

/** Base class of every error thrown on purpose by @shoal/manager. */
export class ManagerError extends ShoalError {
  constructor(code: string, message: string, kind: ErrorKind, options?: { cause?: unknown; retryable?: boolean }) {
    super(code, message, { ...options, kind });
  }
}

/** A node named by ID, ID prefix or hostname does not exist. */
export class NodeNotFoundError extends ManagerError {
  constructor(ref: string) {
    super('MANAGER_NODE_NOT_FOUND', `node ${ref} not found`, 'not-found');
  }
}

/** A node ID prefix or hostname matches more than one node. */
export class AmbiguousNodeError extends ManagerError {
  constructor(ref: string, count: number) {
    super(
      'MANAGER_NODE_AMBIGUOUS',
      `node ${ref} is ambiguous (${count} matches): use a longer ID prefix or the full ID`,
      'invalid-argument',
    );
  }
}

/** The cluster object does not exist (no `swarm init` yet) or another ID was named. */
export class ClusterNotFoundError extends ManagerError {
  constructor(ref: string) {
    super('MANAGER_CLUSTER_NOT_FOUND', `cluster ${ref} not found`, 'not-found');
  }
}

/** A request field has a value the API does not accept. */
export class InvalidRequestError extends ManagerError {
  constructor(message: string) {
    super('MANAGER_INVALID_REQUEST', message, 'invalid-argument');
  }
}

/** Demoting the only manager left. */
export class LastManagerError extends ManagerError {
  constructor(nodeId: string) {
    super(
      'MANAGER_LAST_MANAGER',
      `cannot demote node ${nodeId}: it is the last manager of the swarm (promote another node first)`,
      'failed-precondition',
    );
  }
}

/** Removing or demoting a manager would leave the Raft group without a reachable majority. */
export class QuorumRiskError extends ManagerError {
  constructor(action: string, nodeId: string, reachable: number, needed: number) {
    super(
      'MANAGER_QUORUM_RISK',
      `cannot ${action} node ${nodeId}: only ${reachable} of the remaining managers are reachable and the ` +
        `swarm needs ${needed} for quorum`,
      'failed-precondition',
    );
  }
}

/** `node rm` of a node that is not down, without --force. */
export class NodeNotDownError extends ManagerError {
  constructor(nodeId: string, state: string) {
    super(
      'MANAGER_NODE_NOT_DOWN',
      `node ${nodeId} is not down (state ${state}) and can't be removed: stop it first or use --force`,
      'failed-precondition',
    );
  }
}

/** `node rm` of a manager (or a node still in the Raft group). */
export class NodeIsManagerError extends ManagerError {
  constructor(nodeId: string) {
    super(
      'MANAGER_NODE_IS_MANAGER',
      `node ${nodeId} is a cluster manager and is a member of the raft cluster: demote it first`,
      'failed-precondition',
    );
  }
}

/** A heartbeat or request names a dispatcher session this leader does not have. */
export class SessionInvalidError extends ManagerError {
  constructor(nodeId: string) {
    super(
      'MANAGER_SESSION_INVALID',
      `node ${nodeId} has no session with this leader: open a new session`,
      'failed-precondition',
    );
  }
}

/** A leader-only operation reached a manager that is not the leader. */
export class NotLeaderError extends ManagerError {
  constructor(what: string, leader: string) {
    super(
      'MANAGER_NOT_LEADER',
      `${what} must run on the leader; this manager is not the leader (leader: ${leader || 'none'})`,
      'unavailable',
      { retryable: true },
    );
  }
}

/** The caller's identity does not allow this call (no certificate, wrong node). */
export class CallerNotAllowedError extends ManagerError {
  constructor(message: string) {
    super('MANAGER_CALLER_NOT_ALLOWED', message, 'permission-denied');
  }
}

/** A Control RPC that later issues implement (services, tasks, networks, secrets, configs). */
export class NotImplementedError extends ManagerError {
  constructor(method: string) {
    super(
      'MANAGER_NOT_IMPLEMENTED',
      `not implemented yet: services come with issue 9 (${method})`,
      'failed-precondition',
    );
  }
}

/** The CA cannot sign (an external root without its key). */
export class CannotSignError extends ManagerError {
  constructor() {
    super(
      'MANAGER_CA_CANNOT_SIGN',
      'this cluster root CA has no signing key here: node certificates cannot be issued',
      'failed-precondition',
    );
  }
}

/** The cluster already exists when bootstrapping. */
export class ClusterExistsError extends ManagerError {
  constructor(id: string) {
    super('MANAGER_CLUSTER_EXISTS', `this node is already part of cluster ${id}`, 'already-exists');
  }
}

/** A service named by ID, ID prefix or name does not exist. */
export class ServiceNotFoundError extends ManagerError {
  constructor(ref: string) {
    super('MANAGER_SERVICE_NOT_FOUND', `service ${ref} not found`, 'not-found');
  }
}

/** A task named by ID or ID prefix does not exist. */
export class TaskNotFoundError extends ManagerError {
  constructor(ref: string) {
    super('MANAGER_TASK_NOT_FOUND', `task ${ref} not found`, 'not-found');
  }
}

/** A secret named by ID, ID prefix or name does not exist (also: a service referencing one). */
export class SecretNotFoundError extends ManagerError {
  constructor(ref: string, usedBy?: string) {
    super(
      'MANAGER_SECRET_NOT_FOUND',
      usedBy === undefined ? `secret ${ref} not found` : `secret ${ref} not found (referenced by service ${usedBy})`,
      'not-found',
    );
  }
}

/** A config named by ID, ID prefix or name does not exist (also: a service referencing one). */
export class ConfigNotFoundError extends ManagerError {
  constructor(ref: string, usedBy?: string) {
    super(
      'MANAGER_CONFIG_NOT_FOUND',
      usedBy === undefined ? `config ${ref} not found` : `config ${ref} not found (referenced by service ${usedBy})`,
      'not-found',
    );
  }
}

/** An ID prefix matching several services, tasks, secrets or configs. */
export class AmbiguousRefError extends ManagerError {
  constructor(kind: string, ref: string, count: number) {
    super(
      'MANAGER_AMBIGUOUS_REF',
      `${kind} ${ref} is ambiguous (${count} matches): use a longer ID prefix or the full ID`,
      'invalid-argument',
    );
  }
}

/** A service, secret or config name that another object of the kind already has. */
export class NameExistsError extends ManagerError {
  constructor(kind: string, name: string) {
    super('MANAGER_NAME_EXISTS', `${kind} ${name} already exists`, 'already-exists');
  }
}

/** `secret rm` / `config rm` of an object that services still use. */
export class InUseError extends ManagerError {
  constructor(kind: string, name: string, services: readonly string[]) {
    super(
      'MANAGER_IN_USE',
      `${kind} '${name}' is in use by the following service${services.length > 1 ? 's' : ''}: ${services.join(', ')}`,
      'failed-precondition',
    );
  }
}

/** PublishLogs for a log subscription that ended (the subscriber went away) or that the node finished. */
export class LogSubscriptionGoneError extends ManagerError {
  constructor(id: string) {
    super('MANAGER_LOG_SUBSCRIPTION_GONE', `log subscription ${id || '""'} is not open`, 'not-found');
  }
}

/** A network named by ID, ID prefix or name does not exist (also: a service attaching to one). */
export class NetworkNotFoundError extends ManagerError {
  constructor(ref: string, usedBy?: string) {
    super(
      'MANAGER_NETWORK_NOT_FOUND',
      usedBy === undefined ? `network ${ref} not found` : `network ${ref} not found (attached to service ${usedBy})`,
      'not-found',
    );
  }
}

/** `network rm` of a network that services or tasks still use: names them. */
/** `container run --network X` on a network that is not attachable (as Docker's message). */
export class NetworkNotAttachableError extends ManagerError {
  constructor(name: string) {
    super('MANAGER_NETWORK_NOT_ATTACHABLE', `network ${name} is not manually attachable`, 'failed-precondition');
  }
}

/** `network connect` (or `container run --network`) of a container already on the network (Docker's message). */
export class EndpointExistsError extends ManagerError {
  constructor(container: string, network: string) {
    super(
      'MANAGER_ENDPOINT_EXISTS',
      `endpoint with name ${container} already exists in network ${network}`,
      'already-exists',
    );
  }
}

export class NetworkInUseError extends ManagerError {
  constructor(name: string, users: readonly string[]) {
    super(
      'MANAGER_NETWORK_IN_USE',
      `network ${name} is in use by ${users.join(', ')}: remove ${users.length > 1 ? 'them' : 'it'} first`,
      'failed-precondition',
    );
  }
}

/** One object of a stack deploy that cannot be created or updated, and why. */
export interface StackProblem {
  readonly kind: 'network' | 'secret' | 'config' | 'service' | 'stack';
  readonly name: string;
  readonly error: ShoalError;
}

/**
 * A stack deploy refused: every problem found, each naming its object. Nothing was written. The
 * kind is the problems' common kind (e.g. not-found for missing external objects), else
 * invalid-argument.
 */
export class StackDeployError extends ManagerError {
  readonly problems: readonly StackProblem[];
  constructor(namespace: string, problems: readonly StackProblem[]) {
    const kinds = new Set(problems.map((p) => p.error.kind));
    const kind: ErrorKind = kinds.size === 1 ? (problems[0]?.error.kind ?? 'invalid-argument') : 'invalid-argument';
    const lines = problems.map((p) =>
      p.error.message.includes(p.name) ? p.error.message : `${p.kind} ${p.name}: ${p.error.message}`,
    );
    super(
      'MANAGER_STACK_INVALID',
      `stack ${namespace} not deployed (nothing was changed): ${lines.length === 1 ? lines[0] : `${lines.length} problems:\n${lines.map((l) => `  ${l}`).join('\n')}`}`,
      kind,
    );
    this.problems = problems;
  }
}

/** A port published in ingress mode that another service holds, or no dynamic port left. */
export class PortInUseError extends ManagerError {
  constructor(message: string) {
    super('MANAGER_PORT_IN_USE', message, 'failed-precondition');
  }
}
