import type { ClusterSpec } from './gen/shoal/cluster.js';
import type { ConfigSpec, SecretSpec } from './gen/shoal/secret.js';
import type { NetworkSpec } from './gen/shoal/network.js';
import type { NodeSpec } from './gen/shoal/node.js';
import type {
  Endpoint,
  EndpointSpec,
  PortConfig,
  RestartPolicy,
  ServiceSpec,
  UpdateConfig,
} from './gen/shoal/service.js';

// Docker's (SwarmKit's) defaults for specs, as `docker service inspect` shows them when the
// daemon inserts defaults. Durations are nanoseconds, as in Docker's JSON.
//
// Where Docker applies them, Shoal does: a service is STORED as the user sent it (only its mode
// is filled in, as dockerd's conversion does), every service the daemon returns carries the
// values of its enums left at their zero value (withServiceEnums, as dockerd prints SwarmKit's
// enums), and `GetService` with InsertDefaults (what `service inspect` asks for) fills every unset
// field (withServiceDefaults, SwarmKit's InterpolateService).

export const SECOND_NS = 1_000_000_000;
export const HOUR_NS = 3600 * SECOND_NS;

/** Grace period between the stop signal and SIGKILL. */
export const DEFAULT_STOP_GRACE_PERIOD_NS = 10 * SECOND_NS;
export const DEFAULT_RESTART_DELAY_NS = 5 * SECOND_NS;
export const DEFAULT_UPDATE_MONITOR_NS = 5 * SECOND_NS;
export const DEFAULT_HEARTBEAT_PERIOD_NS = 5 * SECOND_NS;
/** Node certificates live 90 days. */
export const DEFAULT_NODE_CERT_EXPIRY_NS = 90 * 24 * HOUR_NS;
export const DEFAULT_TASK_HISTORY_RETENTION = 5;
export const DEFAULT_ADDR_POOL = ['10.0.0.0/8'];
export const DEFAULT_SUBNET_SIZE = 24;
export const DEFAULT_DATA_PATH_PORT = 4789;
export const DEFAULT_LISTEN_PORT = 2377;
export const DEFAULT_NETWORK_DRIVER = 'overlay';

/** restart condition any, delay 5 s, unlimited attempts. */
export function defaultRestartPolicy(): RestartPolicy {
  return { Condition: 'any', Delay: DEFAULT_RESTART_DELAY_NS, MaxAttempts: 0 };
}

/** parallelism 1, delay 0, failure action pause, monitor 5 s, max failure ratio 0, stop-first. */
export function defaultUpdateConfig(): UpdateConfig {
  return {
    Parallelism: 1,
    Delay: 0,
    FailureAction: 'pause',
    Monitor: DEFAULT_UPDATE_MONITOR_NS,
    MaxFailureRatio: 0,
    Order: 'stop-first',
  };
}

/** The same values as updates. */
export function defaultRollbackConfig(): UpdateConfig {
  return defaultUpdateConfig();
}

export function defaultEndpointSpec(): EndpointSpec {
  return { Mode: 'vip' };
}

/**
 * A service spec with every default filled in: one replica, restart on any exit after 5 s,
 * rolling updates one task at a time stop-first with pause on failure, VIP endpoint, 10 s stop
 * grace period.
 */
export function defaultServiceSpec(name: string, image: string): ServiceSpec {
  return {
    Name: name,
    Labels: {},
    TaskTemplate: {
      ContainerSpec: { Image: image, StopGracePeriod: DEFAULT_STOP_GRACE_PERIOD_NS, DNSConfig: {} },
      Resources: {},
      RestartPolicy: defaultRestartPolicy(),
      Placement: {},
      ForceUpdate: 0,
      Runtime: 'container',
    },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: defaultUpdateConfig(),
    RollbackConfig: defaultRollbackConfig(),
    EndpointSpec: defaultEndpointSpec(),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Fills fields of `target` that are undefined from `defaults`, recursing into objects. */
function fill(target: Record<string, unknown>, defaults: Record<string, unknown>): void {
  for (const [key, def] of Object.entries(defaults)) {
    const cur = target[key];
    if (cur === undefined) target[key] = structuredClone(def);
    else if (isObject(cur) && isObject(def)) fill(cur, def);
  }
}

/**
 * A copy of `spec` with its mode filled in as dockerd's conversion stores it: replicated with 1
 * replica when no mode is given, 1 replica when a replicated mode has none.
 */
export function withServiceMode(spec: ServiceSpec): ServiceSpec {
  const out = structuredClone(spec);
  const mode = out.Mode;
  const hasMode = mode !== undefined && Object.values(mode).some((m) => m !== undefined);
  if (!hasMode) out.Mode = { Replicated: { Replicas: 1 } };
  else if (mode?.Replicated && mode.Replicated.Replicas === undefined) mode.Replicated.Replicas = 1;
  return out;
}

function portEnums(p: PortConfig): PortConfig {
  return { ...p, Protocol: p.Protocol || 'tcp', PublishMode: p.PublishMode || 'ingress' };
}

function updateEnums(u: UpdateConfig | undefined): UpdateConfig | undefined {
  return u === undefined ? u : { ...u, FailureAction: u.FailureAction || 'pause', Order: u.Order || 'stop-first' };
}

/** An endpoint spec with Docker's names of its zero enums: mode vip, ports tcp and ingress. */
export function withEndpointEnums(e: EndpointSpec): EndpointSpec {
  return { ...e, Mode: e.Mode || 'vip', ...(e.Ports ? { Ports: e.Ports.map(portEnums) } : {}) };
}

/**
 * A copy of `spec` as dockerd prints every service (with or without InsertDefaults): the enums
 * SwarmKit keeps as numbers named even at their zero value (restart condition any, update and
 * rollback failure action pause and order stop-first, endpoint mode vip, port protocol tcp and
 * publish mode ingress, isolation `default`), and the task runtime `container`.
 */
export function withServiceEnums(spec: ServiceSpec): ServiceSpec {
  const out = structuredClone(spec);
  const tt = (out.TaskTemplate ??= {});
  tt.Runtime ||= 'container';
  if (tt.ContainerSpec) tt.ContainerSpec.Isolation ||= 'default';
  if (tt.RestartPolicy) tt.RestartPolicy.Condition ||= 'any';
  const update = updateEnums(out.UpdateConfig);
  if (update) out.UpdateConfig = update;
  const rollback = updateEnums(out.RollbackConfig);
  if (rollback) out.RollbackConfig = rollback;
  if (out.EndpointSpec) out.EndpointSpec = withEndpointEnums(out.EndpointSpec);
  return out;
}

/** A service's Endpoint as dockerd prints it: its Spec's enums named, its ports' too. */
export function withEndpointViewEnums(e: Endpoint): Endpoint {
  return {
    ...e,
    Spec: withEndpointEnums(e.Spec ?? {}),
    ...(e.Ports ? { Ports: e.Ports.map(portEnums) } : {}),
  };
}

/**
 * A copy of `spec` with unset fields set to Docker's defaults (what InsertDefaults does: SwarmKit's
 * InterpolateService), and its enums named (withServiceEnums). A set mode is kept (a global
 * service gets no Replicas); replicated gets 1 replica when unset. A given update or rollback
 * config keeps its values, but a Monitor of 0 is unset for Docker (dockerd stores no duration
 * for it), so it shows the default 5 s.
 */
export function withServiceDefaults(spec: ServiceSpec): ServiceSpec {
  const out = withServiceEnums(withServiceMode(spec));
  const defaults = defaultServiceSpec(spec.Name ?? '', spec.TaskTemplate?.ContainerSpec?.Image ?? '');
  delete (defaults as { Mode?: unknown }).Mode;
  for (const u of [out.UpdateConfig, out.RollbackConfig]) if (u && !u.Monitor) u.Monitor = DEFAULT_UPDATE_MONITOR_NS;
  fill(out as Record<string, unknown>, defaults as Record<string, unknown>);
  return withServiceEnums(out);
}

/** The name of a service's mode as `service ls` prints it. */
export function serviceModeName(spec: ServiceSpec): 'replicated' | 'global' | 'replicated-job' | 'global-job' {
  const m = spec.Mode;
  if (m?.Global) return 'global';
  if (m?.ReplicatedJob) return 'replicated-job';
  if (m?.GlobalJob) return 'global-job';
  return 'replicated';
}

/** An overlay network spec with swarm scope. */
export function defaultNetworkSpec(name: string): NetworkSpec {
  return { Name: name, Labels: {}, DriverConfiguration: { Name: DEFAULT_NETWORK_DRIVER }, Scope: 'swarm' };
}

export function defaultSecretSpec(name: string, data: Uint8Array): SecretSpec {
  return { Name: name, Labels: {}, Data: data };
}

export function defaultConfigSpec(name: string, data: Uint8Array): ConfigSpec {
  return { Name: name, Labels: {}, Data: data };
}

/** A node's spec when it joins: the role its token gave, availability active. */
export function defaultNodeSpec(role: 'worker' | 'manager'): NodeSpec {
  return { Labels: {}, Role: role, Availability: 'active' };
}

/**
 * The cluster spec `swarm init` starts with: 5 tasks of history, snapshots every 10000
 * entries, election after 10 ticks of 1 s, heartbeats every 5 s, node certificates for 90 days.
 */
export function defaultClusterSpec(): ClusterSpec {
  return {
    Name: 'default',
    Labels: {},
    Orchestration: { TaskHistoryRetentionLimit: DEFAULT_TASK_HISTORY_RETENTION },
    Raft: {
      SnapshotInterval: 10000,
      KeepOldSnapshots: 0,
      LogEntriesForSlowFollowers: 500,
      ElectionTick: 10,
      HeartbeatTick: 1,
    },
    Dispatcher: { HeartbeatPeriod: DEFAULT_HEARTBEAT_PERIOD_NS },
    CAConfig: { NodeCertExpiry: DEFAULT_NODE_CERT_EXPIRY_NS },
    TaskDefaults: {},
    EncryptionConfig: { AutoLockManagers: false },
  };
}
