import { ShoalError, type ErrorKind } from '@shoal/common';

/** Base of the worker's own errors; `code` is one of the WORKER_* codes in docs/worker.md. */
export class WorkerError extends ShoalError {
  constructor(code: string, message: string, kind: ErrorKind, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, kind });
  }
}

/** A task spec the worker cannot turn into a container (bad template, uid, mount type...). */
export class TaskSpecError extends WorkerError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('WORKER_INVALID_SPEC', message, 'invalid-argument', options);
  }
}

/** A task references a secret or config that its assignments did not carry. */
export class SecretMissingError extends WorkerError {
  constructor(kind: 'secret' | 'config', id: string, name: string) {
    super('WORKER_SECRET_MISSING', `${kind} ${name || id} (${id}) was not sent to this node`, 'not-found');
  }
}

/** The service's registry auth (X-Registry-Auth) cannot be decoded. */
export class RegistryAuthError extends WorkerError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('WORKER_REGISTRY_AUTH', `registry auth: ${message}`, 'invalid-argument', options);
  }
}

/** An incremental assignments message that does not apply to the set the node holds. */
export class AssignmentsSequenceError extends WorkerError {
  constructor(appliesTo: string, holds: string) {
    super(
      'WORKER_ASSIGNMENTS_SEQUENCE',
      `assignments: an incremental change applies to ${JSON.stringify(appliesTo)} but this node holds ${JSON.stringify(holds)}`,
      'failed-precondition',
    );
  }
}

/** A task's network attachment the node cannot wire (no address, no network, the agent stopping). */
export class NetworkAttachmentError extends WorkerError {
  constructor(taskId: string, reason: string) {
    super('WORKER_NETWORK_ATTACHMENT', `task ${taskId}: ${reason}`, 'invalid-argument');
  }
}

/** `network disconnect` of a container from a network it has no attachment on (Docker's message). */
export class EndpointNotFoundError extends WorkerError {
  constructor(container: string, network: string) {
    super('WORKER_ENDPOINT_NOT_FOUND', `container ${container} is not connected to network ${network}`, 'not-found');
  }
}

/**
 * `network connect` of a container whose network namespace is no attachment sandbox of this node,
 * or `network disconnect` from the network that made its sandbox (its first): not supported.
 */
export class ConnectUnsupportedError extends WorkerError {
  constructor(message: string) {
    super('WORKER_CONNECT_UNSUPPORTED', message, 'failed-precondition');
  }
}

/** The node has no dispatcher session (not in a swarm, or reconnecting): nothing to ask the managers. */
export class NotConnectedError extends WorkerError {
  constructor(what: string) {
    super(
      'WORKER_NOT_CONNECTED',
      `cannot ${what}: this node has no session with a manager (is it part of a swarm?)`,
      'unavailable',
    );
  }
}

/**
 * An overlay whose subnet overlaps the node's gateway bridge (`--gwbridge-subnet`): wiring it
 * would give the node and the task two routes into one range, so the task fails instead.
 */
export class NetworkGatewayOverlapError extends WorkerError {
  constructor(taskId: string, network: string, subnet: string, gatewaySubnet: string) {
    super(
      'WORKER_NETWORK_GATEWAY_OVERLAP',
      `task ${taskId}: network ${network} (subnet ${subnet}) overlaps this node's gateway bridge subnet ${gatewaySubnet} (--gwbridge-subnet): give the network or the node another range`,
      'failed-precondition',
    );
  }
}
