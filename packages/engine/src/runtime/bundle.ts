/**
 * The seam between the lifecycle and the parts that make a container's bundle: the OCI spec
 * (confinement, seccomp), the overlay rootfs, secrets and cgroups. `BundleBuilder` is what the
 * Engine calls; `ociBundleBuilder` (oci-bundle.ts) is the implementation, tests may pass others.
 */
import type { ContainerCreateOptions, ContainerRecord, ContainerStats } from '../container/types.js';
import type { MergedProcess } from '../container/config.js';
import type { ImageConfig } from '../image/types.js';

export interface BundleRequest {
  id: string;
  /** The bundle dir on tmpfs; config.json goes here, the rootfs is mounted at `<bundle>/rootfs`. */
  bundle: string;
  /** The container's state dir on disk (overlay upper/work go below it). */
  stateDir: string;
  layerDirs: string[];
  /** The image's config: merged with `options` when the spec is built (the one merge, spec/merge.ts). */
  imageConfig?: ImageConfig;
  /** The merged process as recorded (the spec's args, env, cwd and user come from the same merge). */
  process: MergedProcess;
  options: ContainerCreateOptions;
  hostname: string;
  cgroupsPath: string;
  /**
   * The container's volumes, resolved to host dirs by the engine (named volumes exist, devices
   * are mounted). `copyUp`: copy what the image has at the target into the dir when it is empty.
   */
  volumes?: { dir: string; target: string; readOnly?: boolean; copyUp: boolean }[];
}

export interface BundleBuilder {
  /** Mounts the rootfs and writes config.json; undoes everything it did when it throws. */
  prepare(req: BundleRequest): Promise<{ rootfs: string }>;
  /** Unmounts and removes what prepare made (idempotent, also after a crash). */
  release(rec: ContainerRecord): Promise<void>;
  /** Whether the kernel OOM-killed a process of the container (read before runc delete). */
  oomKilled(rec: ContainerRecord): Promise<boolean>;
  stats(rec: ContainerRecord): Promise<ContainerStats>;
}
