/**
 * The ServiceSpec that `service create` sends and the change `service update` makes, built from
 * flags as docker's CLI builds them (cli/command/service/opts.go and update.go semantics):
 * durations in nanoseconds, memory in bytes (RAMInBytes), CPUs in NanoCPUs, a restart policy
 * only when a `--restart-*` flag is given (then from SwarmKit's defaults), a health check only
 * when a `--health-*` flag is given. Everything is checked before anything is sent.
 */
import {
  serviceSpecProblems,
  type ContainerSpec,
  type HealthConfig,
  type Mount,
  type PortConfig,
  type RestartPolicy,
  type ServiceMode,
  type ServiceSpec,
  type TaskSpec,
  type UpdateConfig,
} from '@shoal/api';
import { InvalidArgumentError } from '@shoal/common';
import type { ServiceFlags } from './flags.js';
import {
  checkConstraint,
  checkDuplicateTargets,
  effectiveCaps,
  kvMap,
  mergeEnv,
  parseConfigRef,
  parseEnvFlag,
  parseLabel,
  parseMount,
  parseNetworkAttachment,
  parsePlacementPref,
  parsePublish,
  parseSecretRef,
  parseSysctl,
  parseUlimit,
  readEnvFile,
  ulimitList,
} from './opts.js';
import { flagError, parseInt64, parseNanoCpus, parsePositiveDuration, parseRamInBytes, parseUint } from './units.js';

/** SwarmKit's default restart policy (any, 5 s delay, unlimited attempts), the base of `--restart-*`. */
const DEFAULT_RESTART: Readonly<RestartPolicy> = { Condition: 'any', Delay: 5e9, MaxAttempts: 0 };
const DEFAULT_UPDATE: Readonly<UpdateConfig> = {
  Parallelism: 1,
  Delay: 0,
  FailureAction: 'pause',
  Monitor: 5e9,
  MaxFailureRatio: 0,
  Order: 'stop-first',
};

const RESTART_CONDITIONS = ['none', 'on-failure', 'any'];

/** Splits a command line into words as a POSIX shell would (quotes and backslashes), no expansion. */
export function shellWords(flag: string, s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] ?? '';
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else cur += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1] ?? '')) cur += s[++i] ?? '';
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 < s.length) cur += s[++i] ?? '';
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw flagError(flag, s, `unterminated ${quote === '"' ? 'double' : 'single'} quote`);
  if (inWord) out.push(cur);
  return out;
}

function oneOf(flag: string, v: string, list: readonly string[]): string {
  if (!list.includes(v)) throw flagError(flag, v, `expected one of ${list.join(', ')}`);
  return v;
}

function ratio(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw flagError(flag, v, 'not a number');
  if (n < 0 || n > 1) throw flagError(flag, v, 'must be between 0 and 1');
  return n;
}

/** The service mode from `--mode`, `--replicas` and `--max-concurrent` (docker's ToServiceMode). */
function serviceMode(o: ServiceFlags): ServiceMode {
  const mode = o.mode ?? 'replicated';
  const replicas = o.replicas === undefined ? undefined : parseUint('--replicas', o.replicas);
  const concurrent = o.maxConcurrent === undefined ? undefined : parseUint('--max-concurrent', o.maxConcurrent);
  const maxPerNode =
    o.replicasMaxPerNode === undefined ? 0 : parseUint('--replicas-max-per-node', o.replicasMaxPerNode);
  const noReplicas = (): void => {
    if (replicas !== undefined)
      throw new InvalidArgumentError(
        `--replicas can only be used with replicated or replicated-job mode (--mode ${mode})`,
      );
    if (maxPerNode > 0)
      throw new InvalidArgumentError(
        `--replicas-max-per-node can only be used with replicated or replicated-job mode (--mode ${mode})`,
      );
  };
  const noConcurrent = (): void => {
    if (concurrent !== undefined)
      throw new InvalidArgumentError(`--max-concurrent can only be used with replicated-job mode (--mode ${mode})`);
  };
  switch (mode) {
    case 'replicated':
      noConcurrent();
      return { Replicated: replicas === undefined ? {} : { Replicas: replicas } };
    case 'global':
      noReplicas();
      noConcurrent();
      return { Global: {} };
    case 'replicated-job': {
      const job: NonNullable<ServiceMode['ReplicatedJob']> = {};
      const mc = concurrent ?? replicas;
      if (mc !== undefined) job.MaxConcurrent = mc;
      if (replicas !== undefined) job.TotalCompletions = replicas;
      return { ReplicatedJob: job };
    }
    case 'global-job':
      noReplicas();
      noConcurrent();
      return { GlobalJob: {} };
    default:
      throw flagError('--mode', mode, 'unknown mode: expected replicated, global, replicated-job or global-job');
  }
}

function changed(o: ServiceFlags, ...keys: (keyof ServiceFlags)[]): boolean {
  return keys.some((k) => o[k] !== undefined);
}

/** Applies the `--restart-*` flags on a base policy (docker: defaults when none was set). */
function restartPolicy(o: ServiceFlags, base: RestartPolicy | undefined): RestartPolicy | undefined {
  if (!changed(o, 'restartCondition', 'restartDelay', 'restartMaxAttempts', 'restartWindow')) return base;
  const rp: RestartPolicy = { ...(base ?? DEFAULT_RESTART) };
  if (o.restartCondition !== undefined)
    rp.Condition = oneOf('--restart-condition', o.restartCondition, RESTART_CONDITIONS);
  if (o.restartDelay !== undefined) rp.Delay = parsePositiveDuration('--restart-delay', o.restartDelay);
  if (o.restartMaxAttempts !== undefined) rp.MaxAttempts = parseUint('--restart-max-attempts', o.restartMaxAttempts);
  if (o.restartWindow !== undefined) rp.Window = parsePositiveDuration('--restart-window', o.restartWindow);
  return rp;
}

/** Applies the `--update-*` (or `--rollback-*`) flags; unset when none is given and none was set. */
function updateConfig(
  o: ServiceFlags,
  prefix: 'update' | 'rollback',
  base: UpdateConfig | undefined,
): UpdateConfig | undefined {
  const k = (s: string): keyof ServiceFlags => `${prefix}${s}` as keyof ServiceFlags;
  const get = (s: string): string | undefined => o[k(s)] as string | undefined;
  const keys = ['Parallelism', 'Delay', 'Monitor', 'FailureAction', 'MaxFailureRatio', 'Order'];
  if (!keys.some((s) => get(s) !== undefined)) return base;
  const u: UpdateConfig = { ...(base ?? DEFAULT_UPDATE) };
  const f = (s: string): string => `--${prefix}-${s.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()}`;
  const v = (s: string): string => get(s) ?? '';
  if (get('Parallelism') !== undefined) u.Parallelism = parseUint(f('Parallelism'), v('Parallelism'));
  if (get('Delay') !== undefined) u.Delay = parsePositiveDuration(f('Delay'), v('Delay'));
  if (get('Monitor') !== undefined) u.Monitor = parsePositiveDuration(f('Monitor'), v('Monitor'));
  if (get('FailureAction') !== undefined)
    u.FailureAction = oneOf(
      f('FailureAction'),
      v('FailureAction'),
      prefix === 'update' ? ['pause', 'continue', 'rollback'] : ['pause', 'continue'],
    );
  if (get('MaxFailureRatio') !== undefined) u.MaxFailureRatio = ratio(f('MaxFailureRatio'), v('MaxFailureRatio'));
  if (get('Order') !== undefined) u.Order = oneOf(f('Order'), v('Order'), ['start-first', 'stop-first']);
  return u;
}

/** The health check from `--health-*` / `--no-healthcheck` on a base (docker's toHealthConfig/updateHealthcheck). */
function healthcheck(o: ServiceFlags, base: HealthConfig | undefined): HealthConfig | undefined {
  const settings = changed(
    o,
    'healthCmd',
    'healthInterval',
    'healthTimeout',
    'healthRetries',
    'healthStartPeriod',
    'healthStartInterval',
  );
  if (o.healthcheck === false) {
    if (settings) throw new InvalidArgumentError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!settings) return base;
  const h: HealthConfig = base && base.Test?.[0] !== 'NONE' ? { ...base } : {};
  if (o.healthCmd !== undefined) h.Test = o.healthCmd === '' ? [] : ['CMD-SHELL', o.healthCmd];
  if (o.healthInterval !== undefined) h.Interval = parsePositiveDuration('--health-interval', o.healthInterval);
  if (o.healthTimeout !== undefined) h.Timeout = parsePositiveDuration('--health-timeout', o.healthTimeout);
  if (o.healthStartPeriod !== undefined)
    h.StartPeriod = parsePositiveDuration('--health-start-period', o.healthStartPeriod);
  if (o.healthStartInterval !== undefined)
    h.StartInterval = parsePositiveDuration('--health-start-interval', o.healthStartInterval);
  if (o.healthRetries !== undefined) {
    const r = parseInt64('--health-retries', o.healthRetries);
    if (r < 0) throw flagError('--health-retries', o.healthRetries, 'must not be negative');
    h.Retries = r;
  }
  return h;
}

/** Limits and reservations on a base (only the given flags change). */
function resources(o: ServiceFlags, base: TaskSpec['Resources']): TaskSpec['Resources'] {
  const r = { ...base, Limits: { ...base?.Limits }, Reservations: { ...base?.Reservations } };
  const nonNeg = (flag: string, v: string, n: number): number => {
    if (n < 0) throw flagError(flag, v, 'must not be negative');
    return n;
  };
  if (o.limitCpu !== undefined) r.Limits.NanoCPUs = parseNanoCpus('--limit-cpu', o.limitCpu);
  if (o.limitMemory !== undefined) r.Limits.MemoryBytes = parseRamInBytes('--limit-memory', o.limitMemory);
  if (o.limitPids !== undefined)
    r.Limits.Pids = nonNeg('--limit-pids', o.limitPids, parseInt64('--limit-pids', o.limitPids));
  if (o.reserveCpu !== undefined) r.Reservations.NanoCPUs = parseNanoCpus('--reserve-cpu', o.reserveCpu);
  if (o.reserveMemory !== undefined) r.Reservations.MemoryBytes = parseRamInBytes('--reserve-memory', o.reserveMemory);
  return r;
}

/** The scalar container fields both commands set the same way. */
function containerScalars(o: ServiceFlags, c: ContainerSpec): void {
  if (o.hostname !== undefined) c.Hostname = o.hostname;
  if (o.user !== undefined) c.User = o.user;
  if (o.workdir !== undefined) c.Dir = o.workdir;
  if (o.stopSignal !== undefined) c.StopSignal = o.stopSignal;
  if (o.entrypoint !== undefined) c.Command = shellWords('--entrypoint', o.entrypoint);
  if (o.stopGracePeriod !== undefined)
    c.StopGracePeriod = parsePositiveDuration('--stop-grace-period', o.stopGracePeriod);
  if (o.tty !== undefined) c.TTY = o.tty;
  if (o.readOnly !== undefined) c.ReadOnly = o.readOnly;
  if (o.init !== undefined) c.Init = o.init;
}

/** Throws the spec's problems the daemon would refuse (api's checks), as one line. */
function assertValid(spec: ServiceSpec): void {
  const problems = serviceSpecProblems(spec);
  if (problems.length > 0)
    throw new InvalidArgumentError(`invalid service: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
}

function endpointMode(o: ServiceFlags): string | undefined {
  return o.endpointMode === undefined
    ? undefined
    : oneOf('--endpoint-mode', o.endpointMode.toLowerCase(), ['vip', 'dnsrr']);
}

/**
 * The ServiceSpec of `service create [flags] IMAGE [COMMAND] [ARG...]`, as docker's ToService
 * builds it. Secrets and configs carry their names; `resolveRefs` fills in their IDs.
 */
export function buildServiceSpec(
  image: string,
  args: readonly string[],
  o: ServiceFlags,
  env: NodeJS.ProcessEnv = process.env,
): ServiceSpec {
  const mode = serviceMode(o);
  const isJob = mode.ReplicatedJob !== undefined || mode.GlobalJob !== undefined;
  const update = updateConfig(o, 'update', undefined);
  const rollback = updateConfig(o, 'rollback', undefined);
  if (isJob && (update || rollback))
    throw new InvalidArgumentError('update and rollback configuration is not supported for jobs');
  const envs = mergeEnv([
    ...o.envFile.flatMap((f) => readEnvFile(f, env)),
    ...o.env.map((e) => parseEnvFlag('--env', e, env)),
  ]);
  const secrets = o.secret.map((s) => parseSecretRef('--secret', s));
  const configs = o.config.map((s) => parseConfigRef('--config', s));
  checkDuplicateTargets('secret', secrets);
  checkDuplicateTargets('config', configs);
  const caps = effectiveCaps(o.capAdd, o.capDrop);
  const c: ContainerSpec = {
    Image: image,
    Labels: kvMap(o.containerLabel.map((l) => parseLabel('--container-label', l))),
    ...(args.length > 0 ? { Args: [...args] } : {}),
    ...(envs.length > 0 ? { Env: envs } : {}),
    ...(o.group.length > 0 ? { Groups: [...o.group] } : {}),
    Init: false,
  };
  containerScalars(o, c);
  const mounts: Mount[] = o.mount.map((m) => parseMount(m));
  if (mounts.length > 0) c.Mounts = mounts;
  const health = healthcheck(o, undefined);
  if (health) c.Healthcheck = health;
  if (secrets.length > 0) c.Secrets = secrets;
  if (configs.length > 0) c.Configs = configs;
  const sysctls = kvMap(o.sysctl.map((s) => parseSysctl('--sysctl', s)));
  if (Object.keys(sysctls).length > 0) c.Sysctls = sysctls;
  if (caps.add.length > 0) c.CapabilityAdd = caps.add;
  if (caps.drop.length > 0) c.CapabilityDrop = caps.drop;
  const ulimits = ulimitList(o.ulimit.map((u) => parseUlimit('--ulimit', u)));
  if (ulimits.length > 0) c.Ulimits = ulimits;

  const constraints = o.constraint.map((x) => checkConstraint('--constraint', x));
  const prefs = o.placementPref.map((p) => parsePlacementPref('--placement-pref', p));
  const maxPerNode =
    o.replicasMaxPerNode === undefined ? 0 : parseUint('--replicas-max-per-node', o.replicasMaxPerNode);
  const task: TaskSpec = {
    ContainerSpec: c,
    Resources: resources(o, undefined),
    Placement: {
      ...(constraints.length > 0 ? { Constraints: constraints } : {}),
      ...(prefs.length > 0 ? { Preferences: prefs } : {}),
      ...(maxPerNode > 0 ? { MaxReplicas: maxPerNode } : {}),
    },
  };
  const rp = restartPolicy(o, undefined);
  if (rp) task.RestartPolicy = rp;
  const networks = o.network.map((n) => parseNetworkAttachment('--network', n));
  if (networks.length > 0) task.Networks = networks;
  const ports: PortConfig[] = o.publish.flatMap((p) => parsePublish('--publish', p));
  const spec: ServiceSpec = {
    Name: o.name ?? '',
    Labels: kvMap(o.label.map((l) => parseLabel('--label', l))),
    TaskTemplate: task,
    Mode: mode,
    EndpointSpec: { Mode: endpointMode(o) ?? 'vip', ...(ports.length > 0 ? { Ports: ports } : {}) },
  };
  if (update) spec.UpdateConfig = update;
  if (rollback) spec.RollbackConfig = rollback;
  // A service without --name gets a generated one from the daemon: check the rest.
  assertValid(spec.Name ? spec : { ...spec, Name: 'unnamed' });
  return spec;
}

function withoutKeys(entries: readonly string[], keys: readonly string[]): string[] {
  return entries.filter((e) => !keys.includes(e.split('=')[0] ?? ''));
}

function portKey(p: PortConfig): string {
  return `${p.TargetPort ?? 0}/${p.Protocol || 'tcp'}`;
}

/** `--publish-rm 80`, `80/udp` or `8080:80`: the target port (and protocol) to remove. */
function publishRmKey(v: string): string {
  const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp|sctp))?$/.exec(v);
  if (!m) throw flagError('--publish-rm', v, 'expected TARGET[/PROTOCOL]');
  return `${m[2] ?? ''}/${m[3] ?? 'tcp'}`;
}

/**
 * The spec after `service update`'s flags, from the current spec (docker's updateService):
 * only given flags change fields; `--force` bumps ForceUpdate. Secret and config references
 * added carry names; `resolveRefs` fills in their IDs.
 */
export function applyServiceUpdate(
  current: ServiceSpec,
  o: ServiceFlags,
  env: NodeJS.ProcessEnv = process.env,
): ServiceSpec {
  const spec: ServiceSpec = structuredClone(current);
  const task: TaskSpec = (spec.TaskTemplate ??= {});
  const c: ContainerSpec = (task.ContainerSpec ??= {});
  const mode = spec.Mode ?? {};
  if (o.image !== undefined) {
    if (o.image.trim() === '') throw flagError('--image', o.image, 'empty image');
    c.Image = o.image;
  }
  if (o.args !== undefined) c.Args = shellWords('--args', o.args);
  containerScalars(o, c);

  if (o.replicas !== undefined) {
    const n = parseUint('--replicas', o.replicas);
    if (mode.Replicated) mode.Replicated.Replicas = n;
    else if (mode.ReplicatedJob) mode.ReplicatedJob.TotalCompletions = n;
    else throw new InvalidArgumentError('--replicas can only be used with replicated or replicated-job mode');
  }
  if (o.maxConcurrent !== undefined) {
    if (!mode.ReplicatedJob)
      throw new InvalidArgumentError('--max-concurrent can only be used with replicated-job mode');
    mode.ReplicatedJob.MaxConcurrent = parseUint('--max-concurrent', o.maxConcurrent);
  }
  const isJob = mode.ReplicatedJob !== undefined || mode.GlobalJob !== undefined;
  const update = updateConfig(o, 'update', spec.UpdateConfig);
  const rollback = updateConfig(o, 'rollback', spec.RollbackConfig);
  if (isJob && (update !== spec.UpdateConfig || rollback !== spec.RollbackConfig))
    throw new InvalidArgumentError('update and rollback configuration is not supported for jobs');
  if (update) spec.UpdateConfig = update;
  if (rollback) spec.RollbackConfig = rollback;

  // env: removals first, then additions replacing by key (docker's updateEnvironment)
  const envAdd = o.envAdd.map((e) => parseEnvFlag('--env-add', e, env));
  if (o.envRm.length > 0 || envAdd.length > 0) {
    const kept = withoutKeys(c.Env ?? [], o.envRm);
    c.Env = mergeEnv([...kept, ...envAdd]);
  }
  const labels = (
    cur: Record<string, string> | undefined,
    add: string[],
    rm: string[],
    flag: string,
  ): Record<string, string> => {
    const out = { ...cur };
    for (const k of rm) delete out[k];
    Object.assign(out, kvMap(add.map((l) => parseLabel(flag, l))));
    return out;
  };
  if (o.labelAdd.length > 0 || o.labelRm.length > 0)
    spec.Labels = labels(spec.Labels, o.labelAdd, o.labelRm, '--label-add');
  if (o.containerLabelAdd.length > 0 || o.containerLabelRm.length > 0)
    c.Labels = labels(c.Labels, o.containerLabelAdd, o.containerLabelRm, '--container-label-add');

  const placement = (task.Placement ??= {});
  if (o.constraintAdd.length > 0 || o.constraintRm.length > 0) {
    const add = o.constraintAdd.map((x) => checkConstraint('--constraint-add', x));
    const kept = (placement.Constraints ?? []).filter((x) => !o.constraintRm.includes(x) && !add.includes(x));
    placement.Constraints = [...kept, ...add];
  }
  if (o.placementPrefAdd.length > 0 || o.placementPrefRm.length > 0) {
    const rm = o.placementPrefRm.map((p) => parsePlacementPref('--placement-pref-rm', p).Spread?.SpreadDescriptor);
    const add = o.placementPrefAdd.map((p) => parsePlacementPref('--placement-pref-add', p));
    placement.Preferences = [
      ...(placement.Preferences ?? []).filter((p) => !rm.includes(p.Spread?.SpreadDescriptor)),
      ...add,
    ];
  }
  if (o.replicasMaxPerNode !== undefined) {
    if (!mode.Replicated && !mode.ReplicatedJob)
      throw new InvalidArgumentError('--replicas-max-per-node can only be used with replicated or replicated-job mode');
    placement.MaxReplicas = parseUint('--replicas-max-per-node', o.replicasMaxPerNode);
  }

  if (o.mountAdd.length > 0 || o.mountRm.length > 0) {
    const add = o.mountAdd.map((m) => parseMount(m));
    const addTargets = add.map((m) => m.Target);
    c.Mounts = [
      ...(c.Mounts ?? []).filter((m) => !o.mountRm.includes(m.Target ?? '') && !addTargets.includes(m.Target)),
      ...add,
    ];
  }
  if (o.secretAdd.length > 0 || o.secretRm.length > 0) {
    const add = o.secretAdd.map((s) => parseSecretRef('--secret-add', s));
    const kept = (c.Secrets ?? []).filter(
      (s) => !o.secretRm.includes(s.SecretName ?? '') && !o.secretRm.includes(s.SecretID ?? ''),
    );
    const addTargets = add.map((s) => s.File?.Name);
    c.Secrets = [...kept.filter((s) => !addTargets.includes(s.File?.Name)), ...add];
    checkDuplicateTargets('secret', c.Secrets);
  }
  if (o.configAdd.length > 0 || o.configRm.length > 0) {
    const add = o.configAdd.map((s) => parseConfigRef('--config-add', s));
    const kept = (c.Configs ?? []).filter(
      (s) => !o.configRm.includes(s.ConfigName ?? '') && !o.configRm.includes(s.ConfigID ?? ''),
    );
    const addTargets = add.map((s) => s.File?.Name);
    c.Configs = [...kept.filter((s) => !addTargets.includes(s.File?.Name)), ...add];
    checkDuplicateTargets('config', c.Configs);
  }
  if (o.networkAdd.length > 0 || o.networkRm.length > 0) {
    const add = o.networkAdd.map((n) => parseNetworkAttachment('--network-add', n));
    const gone = [...o.networkRm, ...add.map((n) => n.Target ?? '')];
    task.Networks = [...(task.Networks ?? []).filter((n) => !gone.includes(n.Target ?? '')), ...add];
  }
  const endpoint = (spec.EndpointSpec ??= {});
  const emode = endpointMode(o);
  if (emode !== undefined) endpoint.Mode = emode;
  if (o.publishAdd.length > 0 || o.publishRm.length > 0) {
    const rm = o.publishRm.map(publishRmKey);
    const add = o.publishAdd.flatMap((p) => parsePublish('--publish-add', p));
    const addKeys = add.map(portKey);
    endpoint.Ports = [
      ...(endpoint.Ports ?? []).filter((p) => !rm.includes(portKey(p)) && !addKeys.includes(portKey(p))),
      ...add,
    ];
  }
  if (o.capAdd.length > 0 || o.capDrop.length > 0) {
    // docker's updateCapabilities: adding wins over dropping the same capability; what is
    // dropped now leaves the added list, what is added now leaves the dropped list
    const { add: toAdd, drop: toDrop } = effectiveCaps(o.capAdd, o.capDrop);
    const norm = (l: readonly string[] | undefined): string[] => effectiveCaps(l ?? [], []).add;
    const add = new Set([...norm(c.CapabilityAdd).filter((x) => !toDrop.includes(x)), ...toAdd]);
    const drop = new Set([...norm(c.CapabilityDrop).filter((x) => !toAdd.includes(x)), ...toDrop]);
    c.CapabilityAdd = [...add].sort();
    c.CapabilityDrop = [...drop].sort();
  }
  if (o.ulimitAdd.length > 0 || o.ulimitRm.length > 0) {
    const add = o.ulimitAdd.map((u) => parseUlimit('--ulimit-add', u));
    c.Ulimits = ulimitList([...(c.Ulimits ?? []).filter((u) => !o.ulimitRm.includes(u.Name ?? '')), ...add]);
  }
  if (o.sysctlAdd.length > 0 || o.sysctlRm.length > 0) {
    const s = { ...c.Sysctls };
    for (const k of o.sysctlRm) delete s[k];
    Object.assign(s, kvMap(o.sysctlAdd.map((x) => parseSysctl('--sysctl-add', x))));
    c.Sysctls = s;
  }
  if (o.groupAdd.length > 0 || o.groupRm.length > 0) {
    const g = (c.Groups ?? []).filter((x) => !o.groupRm.includes(x));
    for (const x of o.groupAdd) if (!g.includes(x)) g.push(x);
    c.Groups = g;
  }

  task.Resources = resources(o, task.Resources);
  const rp = restartPolicy(o, task.RestartPolicy);
  if (rp) task.RestartPolicy = rp;
  const health = healthcheck(o, c.Healthcheck);
  if (health) c.Healthcheck = health;
  if (o.force) task.ForceUpdate = (task.ForceUpdate ?? 0) + 1;
  assertValid(spec);
  return spec;
}
