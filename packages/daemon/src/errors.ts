import { ShoalError, type ErrorKind } from '@shoal/common';

/** Base of the daemon's own errors; `code` is one of the DAEMON_* codes in docs/daemon.md. */
export class DaemonError extends ShoalError {
  constructor(code: string, message: string, kind: ErrorKind, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(code, message, { ...options, kind });
  }
}

/** A bad flag, a bad daemon.json, a bad address: the daemon does not start. */
export class DaemonConfigError extends DaemonError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('DAEMON_CONFIG', message, 'invalid-argument', options);
  }
}

/** A Swarm call that does not fit the node's state (already in a swarm, not in one, locked...). */
export class SwarmStateError extends DaemonError {
  constructor(code: string, message: string) {
    super(code, message, 'failed-precondition');
  }
}

/** A call that needs a leader (or a manager) that cannot be reached now. */
export class NoLeaderError extends DaemonError {
  constructor(
    message = 'no quorum: the cluster has no leader; a majority of managers must be reachable (or run `shoal swarm init --force-new-cluster` on a surviving manager)',
  ) {
    super('DAEMON_NO_LEADER', message, 'unavailable', { retryable: true });
  }
}

/** The node is autolocked: nothing but Swarm.Unlock and Swarm.Info until the unlock key is given. */
export class NodeLockedError extends DaemonError {
  constructor() {
    super(
      'DAEMON_LOCKED',
      'this node is locked: it was started with autolock enabled; run `shoal swarm unlock` with the unlock key',
      'failed-precondition',
    );
  }
}
