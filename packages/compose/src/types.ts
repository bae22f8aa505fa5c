/** The typed Compose configuration after loading (Docker CLI 28's compose/types, in TypeScript). */

export interface External {
  external: boolean;
  /** Deprecated `external: {name: x}` form. */
  name?: string;
}

export interface PortConfig {
  mode?: string;
  target?: number;
  published?: number;
  protocol?: string;
}

export interface ServiceVolumeConfig {
  type: string;
  source?: string;
  target?: string;
  readOnly?: boolean;
  consistency?: string;
  bind?: { propagation?: string };
  volume?: { nocopy?: boolean; subpath?: string };
  tmpfs?: { size?: number };
}

export interface FileReference {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

export interface ServiceNetworkConfig {
  aliases?: string[];
  ipv4Address?: string;
  ipv6Address?: string;
  driverOpts?: Record<string, string>;
}

export interface UpdateConfig {
  parallelism?: number;
  delay?: number;
  failureAction?: string;
  monitor?: number;
  maxFailureRatio?: number;
  order?: string;
}

export interface ResourceSpec {
  cpus?: string;
  memory?: number;
  pids?: number;
  genericResources?: { discreteResourceSpec?: { kind?: string; value?: number } }[];
}

export interface DeployConfig {
  mode?: string;
  replicas?: number;
  labels?: Record<string, string>;
  updateConfig?: UpdateConfig;
  rollbackConfig?: UpdateConfig;
  resources: { limits?: ResourceSpec; reservations?: ResourceSpec };
  restartPolicy?: { condition?: string; delay?: number; maxAttempts?: number; window?: number };
  placement: { constraints?: string[]; preferences?: { spread?: string }[]; maxReplicas?: number };
  endpointMode?: string;
}

export interface HealthCheckConfig {
  test?: string[];
  timeout?: number;
  interval?: number;
  retries?: number;
  startPeriod?: number;
  startInterval?: number;
  disable?: boolean;
}

export interface UlimitConfig {
  single?: number;
  soft?: number;
  hard?: number;
}

/**
 * Service keys `stack deploy` ignores (with or without a warning) but Docker's typed config
 * keeps, so that `stack config` prints them.
 */
export interface KeptServiceFields {
  build?: {
    context?: string;
    dockerfile?: string;
    args?: Map<string, string | null>;
    labels?: Record<string, string>;
    cacheFrom?: string[];
    extraHosts?: string[];
    network?: string;
    target?: string;
  };
  cgroupnsMode?: string;
  cgroupParent?: string;
  containerName?: string;
  dependsOn?: string[];
  devices?: string[];
  domainname?: string;
  expose?: string[];
  externalLinks?: string[];
  ipc?: string;
  links?: string[];
  macAddress?: string;
  networkMode?: string;
  pid?: string;
  privileged?: boolean;
  securityOpt?: string[];
  shmSize?: string;
  tmpfs?: string[];
  usernsMode?: string;
}

export interface ServiceConfig {
  /** Keys only `stack config` prints. */
  kept?: KeptServiceFields;
  name: string;
  image?: string;
  command?: string[];
  entrypoint?: string[];
  /** Variable → value, or null for a bare `NAME` with no value anywhere. */
  environment: Map<string, string | null>;
  envFile?: string[];
  labels?: Record<string, string>;
  deploy: DeployConfig;
  ports?: PortConfig[];
  networks?: Map<string, ServiceNetworkConfig | null>;
  volumes?: ServiceVolumeConfig[];
  secrets?: FileReference[];
  configs?: FileReference[];
  healthcheck?: HealthCheckConfig;
  logging?: { driver?: string; options?: Record<string, string> };
  hostname?: string;
  user?: string;
  workingDir?: string;
  readOnly?: boolean;
  tty?: boolean;
  stdinOpen?: boolean;
  init?: boolean;
  stopSignal?: string;
  stopGracePeriod?: number;
  extraHosts?: string[];
  dns?: string[];
  dnsSearch?: string[];
  capAdd?: string[];
  capDrop?: string[];
  sysctls?: Record<string, string>;
  ulimits?: Map<string, UlimitConfig>;
  isolation?: string;
  credentialSpec?: { config?: string; file?: string; registry?: string };
  restart?: string;
  oomScoreAdj?: number;
  extras?: Record<string, unknown>;
}

export interface NetworkConfig {
  name?: string;
  driver?: string;
  driverOpts?: Record<string, string>;
  ipam?: { driver?: string; config?: { subnet?: string }[] };
  external: External;
  internal?: boolean;
  attachable?: boolean;
  labels?: Record<string, string>;
  extras?: Record<string, unknown>;
}

export interface VolumeConfig {
  name?: string;
  driver?: string;
  driverOpts?: Record<string, string>;
  external: External;
  labels?: Record<string, string>;
  extras?: Record<string, unknown>;
}

export interface FileObjectConfig {
  name?: string;
  /** Absolute path of the file holding the data (resolved against the working directory). */
  file?: string;
  external: External;
  labels?: Record<string, string>;
  driver?: string;
  driverOpts?: Record<string, string>;
  templateDriver?: string;
  extras?: Record<string, unknown>;
}

/** One loaded (and, for several files, merged) Compose configuration. */
export interface ComposeConfig {
  version: string;
  /** Services sorted by name. */
  services: ServiceConfig[];
  networks: Map<string, NetworkConfig>;
  volumes: Map<string, VolumeConfig>;
  secrets: Map<string, FileObjectConfig>;
  configs: Map<string, FileObjectConfig>;
  extras?: Record<string, unknown>;
}
