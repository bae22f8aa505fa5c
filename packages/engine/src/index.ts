/**
 * @module @shoal/engine
 * The embedded container engine of a Shoal worker: `Engine` (containers under runc, each watched
 * by its own monitor) and `ImageService` (pull, load, list, remove, gc), their option and record
 * types, and the errors they throw. Everything else (spec builder, cgroups, rootfs, secrets,
 * runc, stores, locks, libc calls) is an implementation detail, reachable for tests and tools
 * through `@shoal/engine/internal` and not a stable API.
 */
export const PACKAGE = '@shoal/engine';

// containers
export {
  Engine,
  type EngineOptions,
  type ImageResolver,
  type MakeHooks,
  type StartOptions,
  type StopOptions,
} from './engine.js';
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
  ExtraHost,
  NetworkMode,
  RecordedNetwork,
  RestartPolicy,
  VolumeMount,
} from './container/types.js';
export { parseRestartPolicy, formatRestartPolicy, shouldRestart } from './container/restart-policy.js';

// volumes
export {
  VolumeStore,
  ANONYMOUS_LABEL,
  checkVolumeName,
  checkVolumeOptions,
  type VolumeInfo,
  type VolumeCreateOptions,
} from './volume/volume-store.js';
export { validateCreate as validateCreateOptions } from './container/config.js';
export type { SecretFile } from './secrets/secrets.js';
export type { LogEntry, ReadLogsOptions } from './logs/reader.js';

// images
export {
  ImageService,
  DEFAULT_ENGINE_ROOT,
  type ImageServiceOptions,
  type PullOptions,
  type RemoveResult,
  type GcResult,
  type ImageInspect,
  type LoadedImage,
} from './image/image-service.js';
export type { LoadOptions } from './image/archive-load.js';
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
export { parseReference, formatReference, familiarName, type ImageReference } from './image/reference.js';
export type { RegistryClientOptions } from './registry/registry-client.js';
export type { Credentials } from './registry/auth.js';
export type { LockHandle } from './state-lock.js';

// errors
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
  ContainerNotFoundError,
  NameInUseError,
  RuncFailedError,
  ContainerStateError,
  NetnsGoneError,
  MonitorError,
  InvalidSpecError,
  InvalidMountError,
  UnknownCapabilityError,
  InvalidSysctlError,
  UserNotFoundError,
  InitNotFoundError,
  RootfsMountError,
  CgroupError,
  SecretMountError,
  VolumeNotFoundError,
  VolumeInUseError,
  InvalidVolumeError,
  VolumeMountError,
} from './errors.js';
