/**
 * Image types shared by the image store, the puller, the archive loader and the runtime half of
 * the engine. OCI and Docker schema2 JSON have the same shape; field names follow the OCI spec.
 */

/** The part of an image config that a container runtime uses (OCI `config.config`). */
export interface ImageConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  StopSignal?: string;
  Healthcheck?: ImageHealthcheck;
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string> | null;
  Volumes?: Record<string, object> | null;
}

/** Docker's healthcheck in an image config; durations in nanoseconds. */
export interface ImageHealthcheck {
  /** `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "cmd"]`. */
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The full image configuration blob (OCI image config / Docker container image v1). */
export interface ImageConfigFile {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ImageConfig;
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

/** One content descriptor (OCI descriptor / Docker schema2 descriptor). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

/** An OCI image manifest or a Docker schema2 manifest. */
export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** An OCI image index or a Docker manifest list. */
export interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

/** What the store keeps about one image (keyed by `id` = config digest). */
export interface ImageRecord {
  /** Config digest: the image id, as Docker uses it. */
  id: string;
  /** Digest of the platform manifest the image was pulled or loaded with. */
  manifestDigest: string;
  /** Digest of the index or manifest list it was picked from, if any. */
  indexDigest?: string;
  /** Uncompressed layer digests (rootfs.diff_ids), bottom first. */
  diffIds: string[];
  /** Compressed layer digests as in the manifest, bottom first (the blobs in the store). */
  layerDigests: string[];
  /** Sum of compressed layer sizes plus config size, in bytes. */
  size: number;
  created?: string;
  architecture?: string;
  os?: string;
  /** `name:tag` references pointing at this image (fully qualified). */
  repoTags: string[];
  /** `name@digest` references (the manifest digest per repository). */
  repoDigests: string[];
}

/** What the runtime needs to run a container from an image. */
export interface ResolvedImage {
  /** The image id (config digest). */
  id: string;
  /** The reference as given, normalised (e.g. `docker.io/library/busybox:latest`). */
  ref: string;
  config: ImageConfig;
  /**
   * Unpacked layer directories, bottom first, with short paths (`<root>/l/<12 hex>/diff`). For an
   * overlay mount pass them reversed: `lowerdir=top:...:bottom`.
   */
  layerDirs: string[];
}

/** Progress of one pull, reported per layer. */
export type PullProgress =
  | { kind: 'resolved'; ref: string; manifestDigest: string; layers: number }
  | {
      kind: 'layer';
      digest: string;
      phase: 'exists' | 'downloading' | 'extracting' | 'done';
      done: number;
      total: number;
    }
  | { kind: 'done'; ref: string; id: string };

export type ProgressCallback = (event: PullProgress) => void;

/** Tells the image store which images running (or created) containers use, by image id. */
export type InUseHook = () => Map<string, string[]> | Promise<Map<string, string[]>>;
