/**
 * @module @shoal/engine/internal
 * The engine's building blocks, for its own tests, benchmarks and test tools: not a stable API.
 * Code outside the engine uses `@shoal/engine` (Engine, ImageService, their types and errors).
 */
export * from './index.js';

// runtime
export { readLogs, parseLogLine } from './logs/reader.js';
export { defaultShimPath, residentKb, type ShimStarted } from './monitor/shim.js';
export { Runc, type RuncState, type RuncExecOptions, type RuncExecResult } from './runtime/runc.js';
export type { BundleBuilder, BundleRequest } from './runtime/bundle.js';
export { ociBundleBuilder, type OciBundleOptions } from './runtime/oci-bundle.js';

// spec, cgroups, rootfs, secrets
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

// images: stores, registry, layers, locks
export { isDigest } from './image/reference.js';
export { RegistryClient } from './registry/registry-client.js';
export { LayerStore } from './layer/layer-store.js';
export { applyLayer, OPAQUE_XATTR } from './layer/apply-layer.js';
export { sniffCompression, type Compression } from './layer/decompress.js';
export { BlobStore } from './content/blob-store.js';
export * as mediaTypes from './image/media-types.js';
export { acquireStateLock, withStateLock, type LockMode, type LockOptions } from './state-lock.js';
export { lgetxattr, lsetxattr } from './libc.js';
