/**
 * The container model of the engine: what a caller asks for (ContainerCreateOptions), what the
 * engine records per container (ContainerRecord, persisted as state.json) and what it reports.
 */
import type { SecretFile } from '../secrets/secrets.js';
import type { NetworkMode } from '../spec/build-spec.js';
import type { ExtraHost } from '../spec/etc-files.js';
import type { Ulimit } from '../spec/units.js';

export type { ExtraHost, NetworkMode, Ulimit };

/** A health check as the engine runs it (durations in milliseconds). */
export interface HealthcheckConfig {
  /** `["CMD", prog, ...args]`, `["CMD-SHELL", "command"]` or `["NONE"]` (disabled). */
  test: string[];
  intervalMs?: number;
  timeoutMs?: number;
  retries?: number;
  startPeriodMs?: number;
  startIntervalMs?: number;
}

/** A bind mount from the host (`-v /host:/ctr[:ro]`). */
export interface BindMount {
  source: string;
  target: string;
  readOnly?: boolean;
}

/** A tmpfs mount (`--tmpfs /path[:opts]`). */
export interface TmpfsMount {
  target: string;
  /** Mount options such as `size=64m`, `mode=1777`, `exec`. */
  options?: string[];
}

/**
 * Docker's restart policy of a standalone container: `no`, `always`, `unless-stopped` or
 * `on-failure` with an optional maximum of restarts (0: no maximum). Carried out by the engine
 * process that holds the collector role with `supervise: true` (shoald).
 */
export interface RestartPolicy {
  name: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  maximumRetryCount?: number;
}

/**
 * A named (or anonymous) volume mounted into a container (`-v NAME:/path`, `-v /path`,
 * `--mount type=volume,...`). Created on first use with `labels` and `driverOpts`; an empty new
 * volume gets a copy of what the image has at the target (unless `noCopy`).
 */
export interface VolumeMount {
  /** The volume's name; absent for an anonymous volume (a random name is given). */
  source?: string;
  target: string;
  readOnly?: boolean;
  /** Do not copy the image's content into an empty volume (`volume-nocopy`). */
  noCopy?: boolean;
  /** Labels and driver options used when the volume is created by this mount. */
  labels?: Record<string, string>;
  driverOpts?: Record<string, string>;
}

/** What a caller asks the engine to create. Image config fills what is not given. */
export interface ContainerCreateOptions {
  image: string;
  name?: string;
  /** Replaces the image's Cmd (docker run IMAGE [CMD...]). */
  cmd?: string[];
  /** Replaces the image's Entrypoint (and drops its Cmd unless `cmd` is given). */
  entrypoint?: string[];
  /** `KEY=value` entries; override the image's per key. */
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  labels?: Record<string, string>;
  binds?: BindMount[];
  tmpfs?: TmpfsMount[];
  /** Named and anonymous volumes (see VolumeMount). */
  volumes?: VolumeMount[];
  /** Docker's restart policy (default `no`); refused with `autoRemove`, as Docker. */
  restartPolicy?: RestartPolicy;
  /** Memory limit in bytes. */
  memoryBytes?: number;
  /** CPU limit in CPUs (0.5 = half a core). */
  cpus?: number;
  pidsLimit?: number;
  readOnly?: boolean;
  /** Resource limits: `name=soft[:hard]` (`nofile=1024:2048`, -1 unlimited) or objects. */
  ulimits?: (string | Ulimit)[];
  /** Namespaced sysctls (`net.*` needs a network namespace of its own, kernel.shm*, kernel.msg*, ...). */
  sysctls?: Record<string, string>;
  /** Run an init (tini) as PID 1 that reaps zombies and forwards signals (`--init`). */
  init?: boolean;
  /** Capabilities added to / dropped from Docker's default 14 (`NET_ADMIN`, `CAP_NET_ADMIN` or `ALL`). */
  capAdd?: string[];
  capDrop?: string[];
  /**
   * `none` (default: a network namespace of its own with only loopback), `host`, or `{path}` of
   * an existing network namespace to join (`--network ns:PATH`).
   */
  network?: NetworkMode;
  /** Extra /etc/hosts entries (`--add-host name:ip`). */
  extraHosts?: ExtraHost[];
  /** Nameservers, search domains and options for /etc/resolv.conf (`--dns`, `--dns-search`, `--dns-option`). */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** Overrides the image's healthcheck; `{test:['NONE']}` disables it. */
  healthcheck?: HealthcheckConfig;
  /** Stop signal (name like `SIGTERM` or number); default: image's, then SIGTERM. */
  stopSignal?: string;
  /** Grace period of `stop` before SIGKILL, default 10 s. */
  stopTimeoutMs?: number;
  /** Remove the container as soon as it exits (`--rm`). */
  autoRemove?: boolean;
  /** Log rotation: the size of one file and how many files are kept. */
  logMaxBytes?: number;
  logMaxFiles?: number;
  /**
   * Secrets and configs, mounted from a tmpfs of the container's own at /run/secrets/<name> (or
   * their target). Their bytes are zeroed once written and never reach a state file.
   */
  secrets?: SecretFile[];
}

/** What the engine keeps of a container's network settings (to rewrite its /etc files later). */
export interface RecordedNetwork {
  mode: NetworkMode;
  hostname: string;
  extraHosts: ExtraHost[];
  dns: string[];
  dnsSearch: string[];
  dnsOptions: string[];
}

export type ContainerStatus = 'created' | 'running' | 'exited';

/**
 * The owner of a multi-step change of a container (create, start, remove): the engine process,
 * named by pid and start time. While the owner lives no other process changes the record, collects
 * it or reaps its container; once the owner is gone, recovery finishes or undoes the change.
 */
export interface ContainerLease {
  pid: number;
  /** Start time of the owner (field 22 of /proc/PID/stat), so that a reused pid is not mistaken for it. */
  start: number;
  op: 'create' | 'start' | 'remove';
  /** For `create`: `run` (create and start) or `create` (the init waits for start). */
  mode?: 'run' | 'create';
  since: string;
}

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** One probe's outcome (Docker keeps the last five). */
export interface HealthProbe {
  start: string;
  end: string;
  exitCode: number;
  output: string;
}

export interface HealthState {
  status: HealthStatus;
  failingStreak: number;
  log: HealthProbe[];
}

/** What the engine keeps per container in `<dataRoot>/containers/<id>/state.json`. No secrets. */
export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  imageId: string;
  created: string;
  /** The process as configured: argv, env, cwd, user. */
  process: { args: string[]; env: string[]; cwd: string; user: string };
  labels: Record<string, string>;
  status: ContainerStatus;
  pid?: number;
  shimPid?: number;
  shimStart?: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** The signal that ended the init (0 if it exited), as the shim saw it. */
  signal?: number;
  oomKilled?: boolean;
  /** Set while an engine process creates, starts or removes the container. */
  lease?: ContainerLease;
  /**
   * With `autoRemove`: the process that waits for this container's exit and then removes it
   * itself (`run --rm` in the foreground, as Docker's wait condition "removed", registered before
   * the start). While it lives nobody else removes the exited container, so its exit status
   * cannot be lost to a faster collector; once it is gone, the usual auto-remove applies.
   */
  waiter?: { pid: number; start: number };
  /** `pid:starttime` of the engine process collecting the exit (cleared once it is done). */
  collector?: string;
  /** Set when the monitor vanished while the container ran: the exit status is unknown. */
  monitorLost?: boolean;
  stopSignal: string;
  stopTimeoutMs: number;
  autoRemove: boolean;
  healthcheck?: HealthcheckConfig;
  health?: HealthState;
  limits: { memoryBytes?: number; cpus?: number; pidsLimit?: number };
  readOnly: boolean;
  binds: BindMount[];
  tmpfs: TmpfsMount[];
  /** The volumes mounted, by name (anonymous ones got a random name at create). */
  volumes?: { name: string; target: string; readOnly?: boolean; anonymous?: boolean }[];
  /** Docker's restart policy; absent means `no`. */
  restartPolicy?: RestartPolicy;
  /** Restarts done by the supervisor since the container was last started by a user (Docker's RestartCount). */
  restartCount?: number;
  /** Set by `stop` (Docker's HasBeenManuallyStopped), cleared by `start`. */
  manuallyStopped?: boolean;
  /**
   * The create request without secret bytes, so that the container can be started again after
   * it exited (`start`, restart policies). Absent on records made before restarts existed.
   */
  createOptions?: ContainerCreateOptions;
  /** Host name and name resolution, from which /etc/hostname, hosts and resolv.conf are written. */
  network?: RecordedNetwork;
  /** Paths the engine made: bundle dir (tmpfs), rootfs mount point, cgroup path. */
  bundle: string;
  rootfs: string;
  cgroupsPath: string;
  logPath: string;
  logMaxBytes: number;
  logMaxFiles: number;
}

/** What `wait` resolves with. */
export interface ExitStatus {
  exitCode: number;
  oomKilled: boolean;
  /** Signal number that ended the init, 0 if it exited by itself. */
  signal: number;
}

/** A summary line of `list`. */
export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  status: ContainerStatus;
  created: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  health?: HealthStatus;
  command: string;
}

/** CPU and memory of a running container. */
export interface ContainerStats {
  cpuUsageNs: number;
  memoryUsageBytes: number;
  memoryLimitBytes?: number;
  memoryMaxUsageBytes?: number;
  pids?: number;
}
