/**
 * @module @shoal/engine
 * (being built; see docs/ and the open issues)
 */
export const PACKAGE = '@shoal/engine';

// runtime: lifecycle
export { Engine, type EngineOptions, type ImageResolver, type StopOptions } from './engine.js';
export type {
  ContainerCreateOptions,
  ContainerRecord,
  ContainerStatus,
  ContainerStats,
  ContainerSummary,
  ExitStatus,
  HealthcheckConfig,
  HealthProbe,
  HealthState,
  HealthStatus,
  BindMount,
  TmpfsMount,
} from './container/types.js';
export { readLogs, parseLogLine, type LogEntry, type ReadLogsOptions } from './logs/reader.js';
export { defaultShimPath, residentKb, type ShimStarted } from './monitor/shim.js';
export { Runc, type RuncState, type RuncExecOptions, type RuncExecResult } from './runtime/runc.js';
export type { BundleBuilder, BundleRequest } from './runtime/bundle.js';
export { ociBundleBuilder, type OciBundleOptions } from './runtime/oci-bundle.js';
export {
  ContainerNotFoundError,
  NameInUseError,
  RuncFailedError,
  ContainerStateError,
  MonitorError,
} from './errors.js';

// runtime: spec, cgroups, secrets
export { buildSpec, type ContainerSpecInput, type SpecContext } from './spec/build-spec.js';
export { defaultNofile } from './spec/rlimits.js';
export type {
  OciSpec,
  OciMount,
  OciProcess,
  OciLinux,
  OciResources,
  OciSeccomp,
  OciUser,
  OciNamespace,
} from './spec/oci.js';
export type { MountInput, BindMountInput, VolumeMountInput, TmpfsMountInput } from './spec/mounts.js';
export {
  resolveCapabilities,
  normaliseCapability,
  DEFAULT_CAPABILITIES,
  ALL_CAPABILITIES,
} from './spec/capabilities.js';
export { resolveStopSignal, normaliseStopSignal } from './spec/signal.js';
export { parseSize, parseCpus, parseUlimit, type Ulimit } from './spec/units.js';
export { findInit, INIT_TARGET } from './spec/init.js';
export { resolveSeccomp, DEFAULT_RULES as DEFAULT_SECCOMP_RULES, type ProfileRule } from './seccomp/profile.js';
export { resolveUser } from './user/resolve-user.js';
export {
  mountRootfs,
  unmountRootfs,
  rootfsPaths,
  type RootfsPaths,
  type MountRootfsOptions,
} from './rootfs/overlay.js';
export { Cgroup, containerCgroup, type CgroupStats } from './cgroups/cgroup.js';
export { detectCgroupLayout, type CgroupLayout, type CgroupV1Layout, type CgroupV2Layout } from './cgroups/layout.js';
export {
  mountSecrets,
  unmountSecrets,
  cleanupStaleSecretMounts,
  secretsDir,
  type SecretFile,
  type MountedSecrets,
} from './secrets/secrets.js';
export {
  InvalidSpecError,
  InvalidMountError,
  UnknownCapabilityError,
  InvalidSysctlError,
  UserNotFoundError,
  InitNotFoundError,
  RootfsMountError,
  CgroupError,
  SecretMountError,
} from './errors.js';

// images
export {
  ImageService,
  DEFAULT_ENGINE_ROOT,
  type ImageServiceOptions,
  type PullOptions,
  type RemoveResult,
  type GcResult,
  type ImageInspect,
} from './image/image-service.js';
export type {
  ImageConfig,
  ImageHealthcheck,
  ImageConfigFile,
  ImageRecord,
  ResolvedImage,
  PullProgress,
  ProgressCallback,
  InUseHook,
  Descriptor,
  Platform,
  ImageManifest,
  ImageIndex,
} from './image/types.js';
export { parseReference, formatReference, familiarName, isDigest, type ImageReference } from './image/reference.js';
export { RegistryClient, type RegistryClientOptions } from './registry/registry-client.js';
export type { Credentials } from './registry/auth.js';
export { LayerStore } from './layer/layer-store.js';
export { applyLayer, OPAQUE_XATTR } from './layer/apply-layer.js';
export { sniffCompression, type Compression } from './layer/decompress.js';
export { BlobStore } from './content/blob-store.js';
export * as mediaTypes from './image/media-types.js';
export { acquireStateLock, withStateLock, type LockHandle, type LockMode, type LockOptions } from './state-lock.js';
export { lgetxattr, lsetxattr } from './libc.js';
export {
  EngineError,
  ImageNotFoundError,
  ManifestUnknownError,
  DigestMismatchError,
  RegistryUnreachableError,
  UnauthorizedError,
  InsecureRegistryError,
  UnsupportedMediaTypeError,
  PlatformNotFoundError,
  LayerInvalidError,
  ImageInUseError,
  InvalidReferenceError,
  ArchiveInvalidError,
  RegistryProtocolError,
  StateLockedError,
  StateUnreadableError,
} from './errors.js';
