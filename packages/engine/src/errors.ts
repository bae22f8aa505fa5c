import { errnoCode, ShoalError, type ErrorKind, type ShoalErrorOptions } from '@shoal/common';

/**
 * Base class of every error the engine throws on purpose. `code` is stable (`ENGINE_*`) and is
 * what callers, the CLI and the daemon switch on. Image errors come first; the runtime half of
 * the engine appends its classes below the `// runtime` marker.
 */
export class EngineError extends ShoalError {
  constructor(code: string, message: string, options?: ShoalErrorOptions) {
    super(code, message, options);
  }
}

// images

/** Thrown when a reference names no image in the local store. */
export class ImageNotFoundError extends EngineError {
  constructor(
    readonly ref: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_IMAGE_NOT_FOUND', `image not found: ${ref}`, { ...options, kind: 'not-found' });
  }
}

/** Thrown when a registry answers that a repository, tag or manifest digest does not exist. */
export class ManifestUnknownError extends EngineError {
  constructor(
    readonly ref: string,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_MANIFEST_UNKNOWN', `manifest unknown: ${ref}${detail ? ` (${detail})` : ''}`, {
      ...options,
      kind: 'not-found',
    });
  }
}

/** Thrown when content does not hash (or size) to the digest that named it. Nothing is stored. */
export class DigestMismatchError extends EngineError {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly what: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_DIGEST_MISMATCH', `${what}: expected ${expected}, got ${actual}`, {
      ...options,
      kind: 'failed-precondition',
    });
  }
}

/** Thrown when a registry cannot be reached (DNS, connect, TLS, timeout, 5xx). Retryable. */
export class RegistryUnreachableError extends EngineError {
  constructor(
    readonly registry: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_REGISTRY_UNREACHABLE', `registry ${registry} unreachable: ${detail}`, {
      ...options,
      retryable: true,
      kind: 'unavailable',
    });
  }
}

/** Thrown when a registry refuses the credentials (401) or the access (403). */
export class UnauthorizedError extends EngineError {
  constructor(
    readonly registry: string,
    readonly status: number,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_UNAUTHORIZED', `registry ${registry} refused access (HTTP ${status}): ${detail}`, {
      ...options,
      kind: 'permission-denied',
    });
  }
}

/** Thrown when plain HTTP would be needed for a registry that is not named insecure. */
export class InsecureRegistryError extends EngineError {
  constructor(
    readonly registry: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_INSECURE_REGISTRY', `registry ${registry}: ${detail}`, { ...options, kind: 'failed-precondition' });
  }
}

/** Thrown for a manifest, config or layer media type the engine does not handle. */
export class UnsupportedMediaTypeError extends EngineError {
  constructor(
    readonly mediaType: string,
    readonly where: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_UNSUPPORTED_MEDIA_TYPE', `unsupported media type ${JSON.stringify(mediaType)} in ${where}`, {
      ...options,
      kind: 'invalid-argument',
    });
  }
}

/** Thrown when no manifest in an index matches the wanted platform. */
export class PlatformNotFoundError extends EngineError {
  constructor(
    readonly ref: string,
    readonly platform: string,
    readonly available: string[],
    options?: { cause?: unknown },
  ) {
    super('ENGINE_PLATFORM_NOT_FOUND', `no ${platform} manifest in ${ref} (has: ${available.join(', ') || 'none'})`, {
      ...options,
      kind: 'not-found',
    });
  }
}

/** Thrown when a layer tar is malformed or tries to escape its root (absolute path, `..`, symlink). */
export class LayerInvalidError extends EngineError {
  constructor(
    readonly layer: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_LAYER_INVALID', `layer ${layer}: ${detail}`, { ...options, kind: 'invalid-argument' });
  }
}

/** Thrown when removing an image that a container still uses. */
export class ImageInUseError extends EngineError {
  constructor(
    readonly ref: string,
    readonly users: string[],
    options?: { cause?: unknown },
  ) {
    super('ENGINE_IMAGE_IN_USE', `image ${ref} is in use by ${users.join(', ')}`, {
      ...options,
      kind: 'failed-precondition',
    });
  }
}

/** Thrown when an image reference (name[:tag][@digest]) or a digest string is malformed. */
export class InvalidReferenceError extends EngineError {
  constructor(
    readonly ref: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_INVALID_REFERENCE', `invalid reference ${JSON.stringify(ref)}: ${detail}`, {
      ...options,
      kind: 'invalid-argument',
    });
  }
}

/** Thrown when an image archive (docker save or OCI layout tar) is malformed. */
export class ArchiveInvalidError extends EngineError {
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_ARCHIVE_INVALID', `image archive ${path}: ${detail}`, { ...options, kind: 'invalid-argument' });
  }
}

/** Thrown when a registry answers something that breaks the distribution protocol. */
export class RegistryProtocolError extends EngineError {
  constructor(
    readonly registry: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_REGISTRY_PROTOCOL', `registry ${registry}: ${detail}`, { ...options, kind: 'internal' });
  }
}

/** Thrown when the engine state lock cannot be taken in time (another shoal/shoald holds it). */
export class StateLockedError extends EngineError {
  constructor(
    readonly lockPath: string,
    readonly holder: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_STATE_LOCKED', `engine state ${lockPath} is locked by ${holder}`, {
      ...options,
      retryable: true,
      kind: 'unavailable',
    });
  }
}

/**
 * Thrown when a state file (image index, container record, blob) exists but cannot be read or
 * parsed: permissions, I/O, corrupt JSON. Never reported as "not found".
 */
export class StateUnreadableError extends EngineError {
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown; kind?: ErrorKind },
  ) {
    super('ENGINE_STATE_UNREADABLE', `cannot read ${path}: ${detail}`, { kind: 'internal', ...options });
  }

  /** For a failed read of `path`: permission errors get kind permission-denied. */
  static from(path: string, err: unknown): StateUnreadableError {
    const code = errnoCode(err);
    const kind: ErrorKind = code === 'EACCES' || code === 'EPERM' ? 'permission-denied' : 'internal';
    return new StateUnreadableError(path, code ? `${code} (${(err as Error).message})` : String(err), {
      cause: err,
      kind,
    });
  }
}

// runtime

/** Thrown when no container has the given id, id prefix or name. */
export class ContainerNotFoundError extends EngineError {
  constructor(
    readonly ref: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_CONTAINER_NOT_FOUND', `no such container: ${ref}`, { ...options, kind: 'not-found' });
  }
}

/** Thrown when creating a container under a name another container already has. */
export class NameInUseError extends EngineError {
  constructor(
    readonly containerName: string,
    readonly holder: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_NAME_IN_USE', `container name ${containerName} is already in use by ${holder}`, {
      ...options,
      kind: 'already-exists',
    });
  }
}

/** Thrown when runc (or the monitor running it) fails; `stderr` is what runc said. */
export class RuncFailedError extends EngineError {
  constructor(
    readonly operation: string,
    readonly containerId: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(
      'ENGINE_RUNC_FAILED',
      `runc ${operation} ${containerId.slice(0, 12)} failed (exit ${exitCode ?? 'signal'}): ${RuncFailedError.clean(stderr)}`,
      { ...options, kind: 'internal' },
    );
  }

  /** runc's logrus line `time=... level=error msg="..."` reduced to its message. */
  static clean(stderr: string): string {
    const lines = stderr.trim().split('\n').filter(Boolean);
    const last = lines.at(-1) ?? 'no output';
    const m = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
    return m?.[1] ? m[1].replace(/\\"/g, '"') : last;
  }
}

/** Thrown when an operation needs a container in another state (e.g. rm of a running one). */
export class ContainerStateError extends EngineError {
  constructor(
    readonly containerId: string,
    readonly state: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_CONTAINER_STATE', `container ${containerId.slice(0, 12)} is ${state}: ${detail}`, {
      ...options,
      kind: 'failed-precondition',
    });
  }
}

/**
 * A restart by policy of a container whose network namespace is gone (given back when it
 * stopped) and that nothing attaches again: it stays stopped (a state error, so not retried).
 */
export class NetnsGoneError extends ContainerStateError {
  constructor(containerId: string, path: string) {
    super(
      containerId,
      'exited',
      `its network namespace ${path} is gone (its network attachment was given back when it stopped): start it with \`shoal container start\`, which attaches it again`,
    );
  }
}

/** Thrown when the per-container monitor (shoal-shim) is missing or cannot start. */
export class MonitorError extends EngineError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ENGINE_MONITOR', `container monitor: ${detail}`, { ...options, kind: 'internal' });
  }
}

// runtime: spec, confinement, rootfs, cgroups, secrets

/** Thrown when a container spec field is invalid (bad size, cpus, ulimit, user, signal...). */
export class InvalidSpecError extends EngineError {
  constructor(
    readonly field: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_INVALID_SPEC', `invalid spec: ${field}: ${detail}`, { ...options, kind: 'invalid-argument' });
  }
}

/** Thrown when a mount is invalid: relative path, missing bind source, bad option or volume name. */
export class InvalidMountError extends EngineError {
  constructor(
    readonly target: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_INVALID_MOUNT', `invalid mount ${JSON.stringify(target)}: ${detail}`, {
      ...options,
      kind: 'invalid-argument',
    });
  }
}

/** Thrown when cap-add/cap-drop names a capability the kernel does not know. */
export class UnknownCapabilityError extends EngineError {
  constructor(
    readonly capability: string,
    readonly field: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_UNKNOWN_CAPABILITY', `${field}: unknown capability ${JSON.stringify(capability)}`, {
      ...options,
      kind: 'invalid-argument',
    });
  }
}

/** Thrown when a sysctl is not namespaced (would change the host) or malformed. */
export class InvalidSysctlError extends EngineError {
  constructor(
    readonly key: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_INVALID_SYSCTL', `sysctl ${JSON.stringify(key)}: ${detail}`, {
      ...options,
      kind: 'invalid-argument',
    });
  }
}

/** Thrown when a user or group name is not in the rootfs's /etc/passwd or /etc/group. */
export class UserNotFoundError extends EngineError {
  constructor(
    readonly user: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_USER_NOT_FOUND', `user ${JSON.stringify(user)}: ${detail}`, { ...options, kind: 'invalid-argument' });
  }
}

/** Thrown when the init binary (tini) for `init: true` is not installed. */
export class InitNotFoundError extends EngineError {
  constructor(
    readonly searched: string[],
    options?: { cause?: unknown },
  ) {
    super('ENGINE_INIT_NOT_FOUND', `no init binary found (looked for ${searched.join(', ')})`, {
      ...options,
      kind: 'failed-precondition',
    });
  }
}

/** Thrown when mounting or unmounting a container's overlay rootfs fails. */
export class RootfsMountError extends EngineError {
  constructor(
    readonly containerId: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_ROOTFS_MOUNT', `rootfs of ${containerId}: ${detail}`, { ...options, kind: 'internal' });
  }
}

/** Thrown when a cgroup cannot be read, cleaned up or its layout is not understood. */
export class CgroupError extends EngineError {
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_CGROUP', `cgroup ${path}: ${detail}`, { ...options, kind: 'internal' });
  }
}

/** Thrown when the secrets tmpfs cannot be made or a secret file is invalid. Never holds secret data. */
export class SecretMountError extends EngineError {
  constructor(
    readonly secret: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_SECRET_MOUNT', `secret ${JSON.stringify(secret)}: ${detail}`, { ...options, kind: 'internal' });
  }
}

// volumes

/** Thrown when no local volume has that name. */
export class VolumeNotFoundError extends EngineError {
  constructor(
    readonly volume: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_VOLUME_NOT_FOUND', `no such volume: ${volume}`, { ...options, kind: 'not-found' });
  }
}

/** Thrown when removing a volume that a container (running or not) uses. */
export class VolumeInUseError extends EngineError {
  constructor(
    readonly volume: string,
    readonly containers: string[],
    options?: { cause?: unknown },
  ) {
    super(
      'ENGINE_VOLUME_IN_USE',
      `remove ${volume}: volume is in use - [${containers.map((c) => c.slice(0, 12)).join(', ')}]`,
      { ...options, kind: 'failed-precondition' },
    );
  }
}

/** Thrown for a bad volume name, driver or driver option; nothing is created. */
export class InvalidVolumeError extends EngineError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ENGINE_INVALID_VOLUME', detail, { ...options, kind: 'invalid-argument' });
  }
}

/** Thrown when a volume's device cannot be mounted at its mount point. */
export class VolumeMountError extends EngineError {
  constructor(
    readonly volume: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ENGINE_VOLUME_MOUNT', `volume ${volume}: ${detail}`, { ...options, kind: 'internal' });
  }
}
