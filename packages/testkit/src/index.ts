/**
 * @module @shoal/testkit
 * Test and demo support: local multi-host labs (network namespaces on an underlay bridge), a real
 * registry (Debian docker-registry) and offline test images built from busybox-static.
 *
 * ```ts
 * import { startRegistry, pushTestImages, TestImages } from '@shoal/testkit';
 * const reg = await startRegistry({ dir: await mkdtemp(join(tmpdir(), 'reg-')) });
 * const pushed = await pushTestImages(reg.url); // shoal-test/busybox:1 and friends, with digests
 * await reg.stop();
 * ```
 */
export {
  TestkitError,
  LabNotFoundError,
  LabInvalidNameError,
  LabHostCountError,
  LabNotRootError,
  LabHostNotFoundError,
  LabLockedError,
  LabSubnetExhaustedError,
  LabConflictError,
  LabCommandError,
  LabFaultUnsupportedError,
  RegistryStartError,
  RegistryPushError,
  ImageBuildError,
  LabClusterError,
  BenchLockedError,
} from './errors.js';
export {
  startRegistry,
  freePort,
  writeHtpasswd,
  type StartRegistryOptions,
  type RunningRegistry,
} from './registry/registry-server.js';
export { RegistryClient, MANIFEST_ACCEPT, type RegistryAuth } from './registry/registry-client.js';
export { startTokenServer, type TokenServerOptions, type RunningTokenServer } from './registry/token-server.js';
export {
  buildTestImages,
  findTestImage,
  defaultImageCacheDir,
  TestImages,
  type TestImageSet,
  type BuiltImage,
  type BuiltManifest,
  type BuiltLayer,
  type Compression,
} from './images/build-test-images.js';
export {
  pushTestImages,
  readTestImageSet,
  type PushTestImagesOptions,
  type PushedImage,
} from './images/push-test-images.js';
export { MediaType, sha256Digest, readLayoutBlob, type Descriptor } from './images/oci-layout.js';
export { writeTar, listTar, type TarEntry } from './images/tar-writer.js';
export { WHITEOUT_EXPECTED, REQUIRED_APPLETS, goArch } from './images/test-rootfs.js';
export { labUp, type LabUpOptions } from './lab/lab-up.js';
export { labDown, labLeftovers, type LabDownReport } from './lab/lab-down.js';
export { labContainerIds, pidsInCgroupsNamed } from './lab/lab-system.js';
export { labStatus, labList, type LabView, type LabHostView, type HostStatus } from './lab/lab-status.js';
export { labExec, labExecInherit, hostCommand } from './lab/lab-exec.js';
export { labCut, labHeal, labDelay } from './lab/lab-faults.js';
export {
  labCluster,
  labStartShoald,
  labStopShoald,
  runningShoald,
  shoaldPaths,
  shoaldBin,
  hostSocketUrl,
  LAB_CLUSTER_PORT,
  type LabClusterOptions,
} from './lab/lab-shoald.js';
export {
  readLabState,
  labRoot,
  labDir,
  type LabState,
  type LabHostState,
  type LabRegistryState,
} from './lab/lab-state.js';
export {
  MAX_HOSTS,
  LAB_OVERLAY_POOL,
  LAB_GATEWAY_SUBNET,
  SUBNET_BLOCKS,
  DEFAULT_HOSTS,
  REGISTRY_PORT,
  checkLabName,
  parseHostCount,
  netnsName,
  bridgeName,
} from './lab/lab-names.js';
