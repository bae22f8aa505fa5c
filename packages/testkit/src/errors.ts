import { ShoalError } from '@shoal/common';

/** Base of every error the testkit throws on purpose (lab, registry, test images). */
export class TestkitError extends ShoalError {}

/** Thrown when a command names a lab that has no state directory and no leftovers. */
export class LabNotFoundError extends TestkitError {
  constructor(readonly lab: string) {
    super('LAB_NOT_FOUND', `lab '${lab}' does not exist`, { kind: 'not-found' });
  }
}

/** Thrown when a lab or host name is not an identifier (`[a-z][a-z0-9-]{0,30}`). */
export class LabInvalidNameError extends TestkitError {
  constructor(
    readonly what: 'lab' | 'host',
    readonly value: string,
  ) {
    super('LAB_INVALID_NAME', `invalid ${what} name '${value}': use a-z, 0-9 and '-', starting with a letter`, {
      kind: 'invalid-argument',
    });
  }
}

/** Thrown when `--hosts` is not an integer in 1..64. */
export class LabHostCountError extends TestkitError {
  constructor(readonly value: string) {
    super('LAB_HOST_COUNT', `invalid host count '${value}': must be an integer from 1 to 64`, {
      kind: 'invalid-argument',
    });
  }
}

/** Thrown when a lab operation that changes the system runs without root. */
export class LabNotRootError extends TestkitError {
  constructor(readonly operation: string) {
    super('LAB_NOT_ROOT', `'lab ${operation}' must run as root (it manages namespaces, links and bridges)`, {
      kind: 'permission-denied',
    });
  }
}

/** Thrown when a command names a host the lab does not have. */
export class LabHostNotFoundError extends TestkitError {
  constructor(
    readonly lab: string,
    readonly host: string,
    readonly known: readonly string[],
  ) {
    super('LAB_HOST_NOT_FOUND', `lab '${lab}' has no host '${host}' (hosts: ${known.join(', ') || 'none'})`, {
      kind: 'not-found',
    });
  }
}

/** Thrown when another process holds the lab's lock for longer than the wait allows. */
export class LabLockedError extends TestkitError {
  constructor(
    readonly lab: string,
    readonly holder: number | undefined,
  ) {
    super('LAB_LOCKED', `lab '${lab}' is locked by another process${holder ? ` (pid ${holder})` : ''}`, {
      kind: 'unavailable',
      retryable: true,
    });
  }
}

/** Thrown when every /24 of 198.18.0.0/15 is taken by other labs or addresses. */
export class LabSubnetExhaustedError extends TestkitError {
  constructor() {
    super('LAB_SUBNET_EXHAUSTED', 'no free /24 left in 198.18.0.0/15 for a new lab', { kind: 'failed-precondition' });
  }
}

/** Thrown when a lab's interface names would clash with links another lab or tool owns. */
export class LabConflictError extends TestkitError {
  constructor(
    readonly lab: string,
    detail: string,
  ) {
    super('LAB_CONFLICT', `lab '${lab}': ${detail}`, { kind: 'already-exists' });
  }
}

/** Thrown when a lab step (ip, tc, nsenter, ...) fails. */
export class LabCommandError extends TestkitError {
  constructor(
    readonly lab: string,
    readonly step: string,
    options?: { cause?: unknown },
  ) {
    const detail = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super('LAB_COMMAND_FAILED', `lab '${lab}': ${step} failed${detail}`, { ...options, kind: 'internal' });
  }
}

/** Thrown when docker-registry does not start or does not answer /v2/ in time. */
export class RegistryStartError extends TestkitError {
  constructor(
    readonly addr: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('REGISTRY_START_FAILED', `registry on ${addr} did not start: ${detail}`, { ...options, kind: 'unavailable' });
  }
}

/** Thrown when a registry request of a push answers with an unexpected status. */
export class RegistryPushError extends TestkitError {
  constructor(
    readonly url: string,
    readonly status: number,
    detail: string,
  ) {
    super('REGISTRY_PUSH_FAILED', `push to ${url} failed (HTTP ${status}): ${detail}`, { kind: 'internal' });
  }
}

/** Thrown when the test images cannot be built (no busybox-static, unwritable cache, ...). */
export class ImageBuildError extends TestkitError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('IMAGE_BUILD_FAILED', `building the test images failed: ${detail}`, {
      ...options,
      kind: 'failed-precondition',
    });
  }
}

/** Thrown when the kernel lacks what a fault needs (e.g. no netem qdisc for delays). */
export class LabFaultUnsupportedError extends TestkitError {
  constructor(
    readonly lab: string,
    detail: string,
  ) {
    super('LAB_FAULT_UNSUPPORTED', `lab '${lab}': ${detail}`, { kind: 'failed-precondition' });
  }
}

/** Thrown when a lab's shoald instances cannot be started or made into a cluster. */
export class LabClusterError extends TestkitError {
  constructor(message: string, kind: 'invalid-argument' | 'unavailable' = 'unavailable') {
    super('LAB_CLUSTER', message, { kind });
  }
}

/** Thrown when another run holds a benchmark's machine-wide lock for longer than the wait allows. */
export class BenchLockedError extends TestkitError {
  constructor(
    readonly what: string,
    readonly lockPath: string,
    readonly holder: string,
  ) {
    super(
      'BENCH_LOCKED',
      `${what} is in use by another benchmark run (${holder}, lock ${lockPath}): wait for it to end, or stop it`,
      { kind: 'unavailable', retryable: true },
    );
  }
}
