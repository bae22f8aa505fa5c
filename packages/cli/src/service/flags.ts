/**
 * The flags `service create` and `service update` share, declared once on a commander command,
 * and their parsed values. Values are strings as typed; spec.ts checks and converts them.
 */
import type { Command } from 'commander';

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

/** The raw flag values (commander's camel-cased option names). */
export interface ServiceFlags {
  detach?: boolean;
  quiet?: boolean;
  name?: string;
  replicas?: string;
  mode?: string;
  maxConcurrent?: string;
  replicasMaxPerNode?: string;
  reserveCpu?: string;
  reserveMemory?: string;
  limitCpu?: string;
  limitMemory?: string;
  limitPids?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
  restartWindow?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  /** commander's `--no-healthcheck`: false when given. */
  healthcheck?: boolean;
  endpointMode?: string;
  hostname?: string;
  user?: string;
  workdir?: string;
  entrypoint?: string;
  stopGracePeriod?: string;
  stopSignal?: string;
  withRegistryAuth?: boolean;
  init?: boolean;
  tty?: boolean;
  readOnly?: boolean;
  updateParallelism?: string;
  updateDelay?: string;
  updateMonitor?: string;
  updateFailureAction?: string;
  updateMaxFailureRatio?: string;
  updateOrder?: string;
  rollbackParallelism?: string;
  rollbackDelay?: string;
  rollbackMonitor?: string;
  rollbackFailureAction?: string;
  rollbackMaxFailureRatio?: string;
  rollbackOrder?: string;
  // create's lists
  constraint: string[];
  placementPref: string[];
  env: string[];
  envFile: string[];
  mount: string[];
  secret: string[];
  config: string[];
  publish: string[];
  label: string[];
  containerLabel: string[];
  capAdd: string[];
  capDrop: string[];
  ulimit: string[];
  sysctl: string[];
  group: string[];
  network: string[];
  // update's lists
  image?: string;
  args?: string;
  force?: boolean;
  envAdd: string[];
  envRm: string[];
  labelAdd: string[];
  labelRm: string[];
  containerLabelAdd: string[];
  containerLabelRm: string[];
  constraintAdd: string[];
  constraintRm: string[];
  placementPrefAdd: string[];
  placementPrefRm: string[];
  mountAdd: string[];
  mountRm: string[];
  secretAdd: string[];
  secretRm: string[];
  configAdd: string[];
  configRm: string[];
  publishAdd: string[];
  publishRm: string[];
  ulimitAdd: string[];
  ulimitRm: string[];
  sysctlAdd: string[];
  sysctlRm: string[];
  groupAdd: string[];
  groupRm: string[];
  networkAdd: string[];
  networkRm: string[];
}

/** Flags of both `create` and `update`. */
function common(c: Command): Command {
  return c
    .option('-d, --detach', 'exit immediately instead of waiting for the service to converge')
    .option('-q, --quiet', 'suppress progress output')
    .option('--replicas <n>', 'number of tasks')
    .option('--max-concurrent <n>', 'number of job tasks to run concurrently (default equal to --replicas)')
    .option('--replicas-max-per-node <n>', 'maximum number of tasks per node (default 0 = unlimited)')
    .option('--reserve-cpu <cpus>', 'reserve CPUs')
    .option('--reserve-memory <bytes>', 'reserve memory')
    .option('--limit-cpu <cpus>', 'limit CPUs')
    .option('--limit-memory <bytes>', 'limit memory')
    .option('--limit-pids <n>', 'limit maximum number of processes (default 0 = unlimited)')
    .option('--restart-condition <condition>', 'restart when condition is met ("none", "on-failure", "any")')
    .option('--restart-delay <duration>', 'delay between restart attempts (ns|us|ms|s|m|h)')
    .option('--restart-max-attempts <n>', 'maximum number of restarts before giving up')
    .option('--restart-window <duration>', 'window used to evaluate the restart policy (ns|us|ms|s|m|h)')
    .option('--health-cmd <command>', 'command to run to check health')
    .option('--health-interval <duration>', 'time between running the check (ms|s|m|h)')
    .option('--health-timeout <duration>', 'maximum time to allow one check to run (ms|s|m|h)')
    .option('--health-retries <n>', 'consecutive failures needed to report unhealthy')
    .option('--health-start-period <duration>', 'start period for the container to initialize (ms|s|m|h)')
    .option('--health-start-interval <duration>', 'time between checks during the start period (ms|s|m|h)')
    .option('--no-healthcheck', 'disable any container-specified HEALTHCHECK')
    .option('--endpoint-mode <mode>', 'endpoint mode (vip or dnsrr)')
    .option('--hostname <name>', 'container hostname (templates such as {{.Service.Name}}.{{.Task.Slot}})')
    .option('-u, --user <user>', 'username or UID (format: <name|uid>[:<group|gid>])')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--entrypoint <command>', 'overwrite the default ENTRYPOINT of the image')
    .option('--stop-grace-period <duration>', 'time to wait before force killing a container (default 10s)')
    .option('--stop-signal <signal>', 'signal to stop the container')
    .option('--with-registry-auth', 'send registry authentication details to swarm agents')
    .option('--init', 'use an init inside each service container to forward signals and reap processes')
    .option('--no-init', 'run no init in the service containers (the default of create)')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--read-only', "mount the container's root filesystem as read only")
    .option('--update-parallelism <n>', 'maximum number of tasks updated simultaneously (0 to update all at once)')
    .option('--update-delay <duration>', 'delay between updates (ns|us|ms|s|m|h)')
    .option('--update-monitor <duration>', 'duration after each task update to monitor for failure')
    .option('--update-failure-action <action>', 'action on update failure ("pause", "continue", "rollback")')
    .option('--update-max-failure-ratio <ratio>', 'failure rate to tolerate during an update')
    .option('--update-order <order>', 'update order ("start-first", "stop-first")')
    .option('--rollback-parallelism <n>', 'maximum number of tasks rolled back simultaneously')
    .option('--rollback-delay <duration>', 'delay between task rollbacks (ns|us|ms|s|m|h)')
    .option('--rollback-monitor <duration>', 'duration after each task rollback to monitor for failure')
    .option('--rollback-failure-action <action>', 'action on rollback failure ("pause", "continue")')
    .option('--rollback-max-failure-ratio <ratio>', 'failure rate to tolerate during a rollback')
    .option('--rollback-order <order>', 'rollback order ("start-first", "stop-first")');
}

/** Declares `service create`'s flags. */
export function createFlags(c: Command): Command {
  return common(c)
    .option('--name <name>', 'service name')
    .option('--mode <mode>', 'service mode ("replicated", "global", "replicated-job", "global-job")')
    .option('--constraint <expr>', 'placement constraints (repeatable)', collect)
    .option('--placement-pref <pref>', 'add a placement preference (spread=node.labels.X) (repeatable)', collect)
    .option('-e, --env <var>', 'set environment variables (repeatable)', collect)
    .option('--env-file <file>', 'read in a file of environment variables (repeatable)', collect)
    .option('--mount <mount>', 'attach a filesystem mount to the service (repeatable)', collect)
    .option('--secret <secret>', 'specify secrets to expose to the service (repeatable)', collect)
    .option('--config <config>', 'specify configurations to expose to the service (repeatable)', collect)
    .option('-p, --publish <port>', 'publish a port as a node port (repeatable)', collect)
    .option('-l, --label <label>', 'service labels (repeatable)', collect)
    .option('--container-label <label>', 'container labels (repeatable)', collect)
    .option('--cap-add <cap>', 'add Linux capabilities (repeatable)', collect)
    .option('--cap-drop <cap>', 'drop Linux capabilities (repeatable)', collect)
    .option('--ulimit <ulimit>', 'ulimit options (repeatable)', collect)
    .option('--sysctl <key=value>', 'sysctl options (repeatable)', collect)
    .option('--group <group>', 'set one or more supplementary user groups for the container (repeatable)', collect)
    .option('--network <network>', 'network attachment: NAME or name=NAME,alias=A (repeatable)', collect);
}

/** Declares `service update`'s flags. */
export function updateFlags(c: Command): Command {
  return common(c)
    .option('--image <image>', 'service image tag')
    .option('--args <command>', 'service command args')
    .option('--force', 'force update even if no changes require it')
    .option('--env-add <var>', 'add or update an environment variable (repeatable)', collect)
    .option('--env-rm <key>', 'remove an environment variable (repeatable)', collect)
    .option('--label-add <label>', 'add or update a service label (repeatable)', collect)
    .option('--label-rm <key>', 'remove a label by its key (repeatable)', collect)
    .option('--container-label-add <label>', 'add or update a container label (repeatable)', collect)
    .option('--container-label-rm <key>', 'remove a container label by its key (repeatable)', collect)
    .option('--constraint-add <expr>', 'add or update a placement constraint (repeatable)', collect)
    .option('--constraint-rm <expr>', 'remove a constraint (repeatable)', collect)
    .option('--placement-pref-add <pref>', 'add a placement preference (repeatable)', collect)
    .option('--placement-pref-rm <pref>', 'remove a placement preference (repeatable)', collect)
    .option('--mount-add <mount>', 'add or update a mount on a service (repeatable)', collect)
    .option('--mount-rm <target>', 'remove a mount by its target path (repeatable)', collect)
    .option('--secret-add <secret>', 'add or update a secret on a service (repeatable)', collect)
    .option('--secret-rm <name>', 'remove a secret (repeatable)', collect)
    .option('--config-add <config>', 'add or update a config file on a service (repeatable)', collect)
    .option('--config-rm <name>', 'remove a configuration file (repeatable)', collect)
    .option('--publish-add <port>', 'add or update a published port (repeatable)', collect)
    .option('--publish-rm <port>', 'remove a published port by its target port (repeatable)', collect)
    .option('--cap-add <cap>', 'add Linux capabilities (repeatable)', collect)
    .option('--cap-drop <cap>', 'drop Linux capabilities (repeatable)', collect)
    .option('--ulimit-add <ulimit>', 'add or update a ulimit option (repeatable)', collect)
    .option('--ulimit-rm <name>', 'remove a ulimit option (repeatable)', collect)
    .option('--sysctl-add <key=value>', 'add or update a sysctl option (repeatable)', collect)
    .option('--sysctl-rm <key>', 'remove a sysctl option (repeatable)', collect)
    .option('--group-add <group>', 'add an additional supplementary user group (repeatable)', collect)
    .option('--group-rm <group>', 'remove a previously added supplementary user group (repeatable)', collect)
    .option('--network-add <network>', 'add a network attachment (repeatable)', collect)
    .option('--network-rm <network>', 'remove a network attachment (repeatable)', collect);
}

/** The list flags of the other command, absent from commander's result, as empty lists. */
export function withListDefaults(o: Partial<ServiceFlags>): ServiceFlags {
  const lists = [
    'constraint',
    'placementPref',
    'env',
    'envFile',
    'mount',
    'secret',
    'config',
    'publish',
    'label',
    'containerLabel',
    'capAdd',
    'capDrop',
    'ulimit',
    'sysctl',
    'group',
    'envAdd',
    'envRm',
    'labelAdd',
    'labelRm',
    'containerLabelAdd',
    'containerLabelRm',
    'constraintAdd',
    'constraintRm',
    'placementPrefAdd',
    'placementPrefRm',
    'mountAdd',
    'mountRm',
    'secretAdd',
    'secretRm',
    'configAdd',
    'configRm',
    'publishAdd',
    'publishRm',
    'ulimitAdd',
    'ulimitRm',
    'sysctlAdd',
    'sysctlRm',
    'groupAdd',
    'groupRm',
    'network',
    'networkAdd',
    'networkRm',
  ] as const;
  const out: Record<string, unknown> = { ...o };
  for (const k of lists) if (!Array.isArray(out[k])) out[k] = [];
  return out as unknown as ServiceFlags;
}
