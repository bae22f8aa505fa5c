import type {
  ComposeConfig,
  DeployConfig,
  FileReference,
  HealthCheckConfig,
  KeptServiceFields,
  PortConfig,
  ResourceSpec,
  ServiceConfig,
  ServiceVolumeConfig,
  UpdateConfig,
} from './types.js';

/**
 * Merges configs loaded from several `-c` files into the first, in order, with Docker CLI
 * 28's rules (mergo with override and append-slice plus its special cases):
 * - scalars: a later non-empty value wins (an empty string, `false` or `0` never overrides),
 *   except `replicas`, `parallelism`, `max_attempts` and `retries`, where a later 0 wins;
 * - `command`/`entrypoint`: replaced by a later non-empty list;
 * - maps (labels, sysctls, driver options): merged, later keys win; `environment`: later
 *   non-empty values win, new keys are added;
 * - `ports` merged by published port, `secrets`/`configs` by source, `volumes` by target, each
 *   re-sorted by that key (only when the earlier file had the list at all);
 * - `logging`: options merged when the drivers agree (or one is unset), else replaced;
 * - `ulimits` and per-network attachment settings: later entries replace;
 * - every other list is appended (`cap_add`, `dns`, `extra_hosts`, constraints, even
 *   `healthcheck.test`);
 * - top-level networks, volumes, secrets and configs: a later definition replaces the whole entry.
 */
export function mergeConfigs(configs: ComposeConfig[]): ComposeConfig {
  const [first, ...rest] = configs;
  if (!first) throw new Error('no configs to merge');
  const base = first;
  for (const o of rest) {
    const byName = new Map(base.services.map((s) => [s.name, s]));
    for (const s of o.services) {
      const b = byName.get(s.name);
      byName.set(s.name, b ? mergeService(b, s) : s);
    }
    base.services = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const [k, v] of o.networks) base.networks.set(k, v);
    for (const [k, v] of o.volumes) base.volumes.set(k, v);
    for (const [k, v] of o.secrets) base.secrets.set(k, v);
    for (const [k, v] of o.configs) base.configs.set(k, v);
  }
  return base;
}

function str<T extends string | undefined>(a: T, b: T): T {
  return b !== undefined && b !== '' ? b : a;
}

function truthy(a: boolean | undefined, b: boolean | undefined): boolean | undefined {
  // mergo: `false` is the zero value and never overrides; a set pointer to false only fills a nil.
  if (b === undefined) return a;
  if (a === undefined) return b;
  return b ? true : a;
}

function nonZero(a: number | undefined, b: number | undefined): number | undefined {
  if (b === undefined) return a;
  if (a === undefined) return b;
  return b !== 0 ? b : a;
}

function ptrUint(a: number | undefined, b: number | undefined): number | undefined {
  return b !== undefined ? b : a;
}

function append<T>(a: T[] | undefined, b: T[] | undefined): T[] | undefined {
  if (b === undefined || b.length === 0) return a;
  if (a === undefined) return [...b];
  return [...a, ...b];
}

function mergeMap(a: Record<string, string> | undefined, b: Record<string, string> | undefined) {
  if (b === undefined) return a;
  return { ...(a ?? {}), ...b };
}

function byKey<T>(a: T[] | undefined, b: T[] | undefined, key: (t: T) => string | number): T[] | undefined {
  if (a === undefined) return b === undefined ? undefined : [...b];
  const m = new Map<string | number, T>();
  for (const x of a) m.set(key(x), x);
  for (const x of b ?? []) m.set(key(x), x);
  return [...m.values()].sort((x, y) => {
    const kx = key(x);
    const ky = key(y);
    return kx < ky ? -1 : kx > ky ? 1 : 0;
  });
}

function mergeUpdate(a: UpdateConfig | undefined, b: UpdateConfig | undefined): UpdateConfig | undefined {
  if (!b) return a;
  if (!a) return b;
  return clean({
    parallelism: ptrUint(a.parallelism, b.parallelism),
    delay: nonZero(a.delay, b.delay),
    failureAction: str(a.failureAction, b.failureAction),
    monitor: nonZero(a.monitor, b.monitor),
    maxFailureRatio: nonZero(a.maxFailureRatio, b.maxFailureRatio),
    order: str(a.order, b.order),
  });
}

function mergeResource(a: ResourceSpec | undefined, b: ResourceSpec | undefined): ResourceSpec | undefined {
  if (!b) return a;
  if (!a) return b;
  return clean({
    cpus: str(a.cpus, b.cpus),
    memory: nonZero(a.memory, b.memory),
    pids: nonZero(a.pids, b.pids),
    genericResources: append(a.genericResources, b.genericResources),
  });
}

function mergeDeploy(a: DeployConfig, b: DeployConfig): DeployConfig {
  const rp =
    b.restartPolicy && a.restartPolicy
      ? clean({
          condition: str(a.restartPolicy.condition, b.restartPolicy.condition),
          delay: nonZero(a.restartPolicy.delay, b.restartPolicy.delay),
          maxAttempts: ptrUint(a.restartPolicy.maxAttempts, b.restartPolicy.maxAttempts),
          window: nonZero(a.restartPolicy.window, b.restartPolicy.window),
        })
      : (b.restartPolicy ?? a.restartPolicy);
  return clean({
    mode: str(a.mode, b.mode),
    replicas: ptrUint(a.replicas, b.replicas),
    labels: mergeMap(a.labels, b.labels),
    updateConfig: mergeUpdate(a.updateConfig, b.updateConfig),
    rollbackConfig: mergeUpdate(a.rollbackConfig, b.rollbackConfig),
    resources: clean({
      limits: mergeResource(a.resources.limits, b.resources.limits),
      reservations: mergeResource(a.resources.reservations, b.resources.reservations),
    }),
    restartPolicy: rp,
    placement: clean({
      constraints: append(a.placement.constraints, b.placement.constraints),
      preferences: append(a.placement.preferences, b.placement.preferences),
      maxReplicas: nonZero(a.placement.maxReplicas, b.placement.maxReplicas),
    }),
    endpointMode: str(a.endpointMode, b.endpointMode),
  });
}

function mergeHealth(
  a: HealthCheckConfig | undefined,
  b: HealthCheckConfig | undefined,
): HealthCheckConfig | undefined {
  if (!b) return a;
  if (!a) return b;
  return clean({
    test: append(a.test, b.test),
    timeout: nonZero(a.timeout, b.timeout),
    interval: nonZero(a.interval, b.interval),
    retries: ptrUint(a.retries, b.retries),
    startPeriod: nonZero(a.startPeriod, b.startPeriod),
    startInterval: nonZero(a.startInterval, b.startInterval),
    disable: truthy(a.disable, b.disable),
  });
}

/** The keys only `stack config` prints, merged by the same rules as the others. */
function mergeKept(a: KeptServiceFields | undefined, b: KeptServiceFields | undefined): KeptServiceFields | undefined {
  if (!a || !b) return b ?? a;
  const out: KeptServiceFields = { ...a };
  for (const key of [
    'cgroupnsMode',
    'cgroupParent',
    'containerName',
    'domainname',
    'ipc',
    'macAddress',
    'networkMode',
    'pid',
    'shmSize',
    'usernsMode',
  ] as const) {
    const v = str(a[key], b[key]);
    if (v !== undefined) out[key] = v;
  }
  for (const key of ['dependsOn', 'devices', 'expose', 'externalLinks', 'links', 'securityOpt', 'tmpfs'] as const) {
    const v = append(a[key], b[key]);
    if (v !== undefined) out[key] = v;
  }
  const privileged = truthy(a.privileged, b.privileged);
  if (privileged !== undefined) out.privileged = privileged;
  if (b.build) {
    const ab = a.build ?? {};
    const bb = b.build;
    const args = new Map(ab.args ?? []);
    for (const [k, v] of bb.args ?? []) args.set(k, v);
    out.build = clean({
      context: str(ab.context, bb.context),
      dockerfile: str(ab.dockerfile, bb.dockerfile),
      args: ab.args || bb.args ? args : undefined,
      labels: mergeMap(ab.labels, bb.labels),
      cacheFrom: append(ab.cacheFrom, bb.cacheFrom),
      extraHosts: append(ab.extraHosts, bb.extraHosts),
      network: str(ab.network, bb.network),
      target: str(ab.target, bb.target),
    });
  }
  return out;
}

function mergeService(a: ServiceConfig, b: ServiceConfig): ServiceConfig {
  const env = new Map(a.environment);
  for (const [k, v] of b.environment) {
    if (!env.has(k) || env.get(k) === null) env.set(k, v);
    else if (v !== null && v !== '') env.set(k, v);
  }
  let logging = a.logging;
  if (b.logging) {
    if (!a.logging) logging = b.logging;
    else if (!a.logging.driver || !b.logging.driver || a.logging.driver === b.logging.driver) {
      logging = clean({
        driver: a.logging.driver || b.logging.driver,
        options: mergeMap(a.logging.options, b.logging.options),
      });
    } else logging = b.logging;
  }
  let networks = a.networks;
  if (b.networks) {
    networks = new Map(a.networks ?? []);
    for (const [k, v] of b.networks) {
      const cur = networks.get(k);
      if (cur === undefined || cur === null) networks.set(k, v);
      else if (v !== null) {
        const next = { ...cur };
        if (v.aliases !== undefined) next.aliases = v.aliases;
        else delete next.aliases;
        if (v.ipv4Address) next.ipv4Address = v.ipv4Address;
        if (v.ipv6Address) next.ipv6Address = v.ipv6Address;
        networks.set(k, next);
      }
    }
  }
  let ulimits = a.ulimits;
  if (b.ulimits) {
    ulimits = new Map(a.ulimits ?? []);
    for (const [k, v] of b.ulimits) ulimits.set(k, v);
  }
  const credentialSpec =
    a.credentialSpec || b.credentialSpec
      ? clean({
          config: str(a.credentialSpec?.config, b.credentialSpec?.config),
          file: str(a.credentialSpec?.file, b.credentialSpec?.file),
          registry: str(a.credentialSpec?.registry, b.credentialSpec?.registry),
        })
      : undefined;
  return clean({
    kept: mergeKept(a.kept, b.kept),
    name: a.name,
    image: str(a.image, b.image),
    command: b.command && b.command.length > 0 ? b.command : a.command,
    entrypoint: b.entrypoint && b.entrypoint.length > 0 ? b.entrypoint : a.entrypoint,
    environment: env,
    envFile: append(a.envFile, b.envFile),
    labels: mergeMap(a.labels, b.labels),
    deploy: mergeDeploy(a.deploy, b.deploy),
    ports: byKey<PortConfig>(a.ports, b.ports, (p) => p.published ?? 0),
    networks,
    volumes: byKey<ServiceVolumeConfig>(a.volumes, b.volumes, (v) => v.target ?? ''),
    secrets: byKey<FileReference>(a.secrets, b.secrets, (r) => r.source),
    configs: byKey<FileReference>(a.configs, b.configs, (r) => r.source),
    healthcheck: mergeHealth(a.healthcheck, b.healthcheck),
    logging,
    hostname: str(a.hostname, b.hostname),
    user: str(a.user, b.user),
    workingDir: str(a.workingDir, b.workingDir),
    readOnly: truthy(a.readOnly, b.readOnly),
    tty: truthy(a.tty, b.tty),
    stdinOpen: truthy(a.stdinOpen, b.stdinOpen),
    init: truthy(a.init, b.init),
    stopSignal: str(a.stopSignal, b.stopSignal),
    stopGracePeriod: nonZero(a.stopGracePeriod, b.stopGracePeriod),
    extraHosts: append(a.extraHosts, b.extraHosts),
    dns: append(a.dns, b.dns),
    dnsSearch: append(a.dnsSearch, b.dnsSearch),
    capAdd: append(a.capAdd, b.capAdd),
    capDrop: append(a.capDrop, b.capDrop),
    sysctls: mergeMap(a.sysctls, b.sysctls),
    ulimits,
    isolation: str(a.isolation, b.isolation),
    credentialSpec,
    restart: str(a.restart, b.restart),
    oomScoreAdj: nonZero(a.oomScoreAdj, b.oomScoreAdj),
    extras: a.extras || b.extras ? { ...(a.extras ?? {}), ...(b.extras ?? {}) } : undefined,
  });
}

/** Drops keys whose value is undefined (exactOptionalPropertyTypes-friendly objects). */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
