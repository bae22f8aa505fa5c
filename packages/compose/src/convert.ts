import { readFileSync } from 'node:fs';
import { errnoCode } from '@shoal/common';
import type {
  ConfigReference,
  ConfigSpec,
  ContainerSpec,
  CredentialSpec,
  EndpointSpec,
  HealthConfig,
  Mount,
  NetworkAttachmentConfig,
  NetworkSpec,
  PortConfig,
  ResourceRequirements,
  RestartPolicy,
  SecretReference,
  SecretSpec,
  ServiceMode,
  ServiceSpec,
  Ulimit,
  UpdateConfig as SwarmUpdateConfig,
} from '@shoal/api';
import { Diagnostics, type SourcePos } from './errors.js';
import type { KeyPath } from './positions.js';
import type {
  ComposeConfig,
  FileObjectConfig,
  FileReference,
  HealthCheckConfig,
  PortConfig as ComposePort,
  ResourceSpec,
  ServiceConfig,
  ServiceVolumeConfig,
  UpdateConfig,
  VolumeConfig,
} from './types.js';
import { parseCPUs } from './units.js';

/** The label every object of a stack carries: its value is the stack name. */
export const LABEL_NAMESPACE = 'com.docker.stack.namespace';
/** The service label holding the image as written in the file. */
export const LABEL_IMAGE = 'com.docker.stack.image';
/** Docker's default network driver for stack networks. */
export const DEFAULT_NETWORK_DRIVER = 'overlay';

/** Everything a stack deploy creates or needs, converted exactly as Docker CLI 28 does. */
export interface StackSpecs {
  namespace: string;
  /** Networks to create (referenced by a service, not external), sorted by name. */
  networks: NetworkSpec[];
  /** Names of external networks the services use (must exist, swarm-scoped, unless host/bridge/none). */
  externalNetworks: string[];
  /** Secrets to create or update (every non-external definition), sorted by name. */
  secrets: SecretSpec[];
  /** Configs to create or update, sorted by name. */
  configs: ConfigSpec[];
  /** Names of external secrets and configs the services reference (must exist). */
  externalSecrets: string[];
  externalConfigs: string[];
  /** Service specs, sorted by name. SecretID/ConfigID in references are left for deploy to fill. */
  services: ServiceSpec[];
}

/** How conversion reads secret and config files (tests and dry runs may substitute it). */
export interface ConvertOptions {
  namespace: string;
  /** Where a key path was written, for error positions (LoadedCompose.locate). */
  locate?: (path: KeyPath) => SourcePos;
  readFile?: (path: string) => Buffer;
}

function scope(ns: string, name: string): string {
  return `${ns}_${name}`;
}

function addStackLabel(ns: string, labels: Record<string, string> | undefined): Record<string, string> {
  return { ...(labels ?? {}), [LABEL_NAMESPACE]: ns };
}

/** Docker's container.NetworkMode(name).IsUserDefined(). */
export function isUserDefinedNetwork(name: string): boolean {
  return !(
    name === 'default' ||
    name === 'bridge' ||
    name === 'host' ||
    name === 'none' ||
    name.startsWith('container:')
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The network keys the services use (`default` for a service without networks). */
export function servicesNetworks(services: ServiceConfig[]): Set<string> {
  const out = new Set<string>();
  for (const s of services) {
    if (!s.networks || s.networks.size === 0) out.add('default');
    else for (const k of s.networks.keys()) out.add(k);
  }
  return out;
}

/**
 * Converts a loaded config into the specs of a stack named `namespace`. Every conversion
 * error (Docker's `service web: …` messages) is collected; a ComposeError lists them all.
 */
export function convertStack(config: ComposeConfig, opts: ConvertOptions): StackSpecs {
  const ns = opts.namespace;
  const diags = new Diagnostics();
  const locate = opts.locate ?? (() => ({ file: '', line: 0, column: 0 }));
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p));

  const networks: NetworkSpec[] = [];
  const externalNetworks: string[] = [];
  for (const key of servicesNetworks(config.services)) {
    const nw = config.networks.get(key) ?? { external: { external: false } };
    if (nw.external.external) {
      externalNetworks.push(nw.name ?? key);
      continue;
    }
    const spec: NetworkSpec = {
      Name: nw.name ? nw.name : scope(ns, key),
      Labels: addStackLabel(ns, nw.labels),
      DriverConfiguration: {
        Name: nw.driver ? nw.driver : DEFAULT_NETWORK_DRIVER,
        ...(nw.driverOpts ? { Options: { ...nw.driverOpts } } : {}),
      },
      Scope: 'swarm',
    };
    if (nw.internal) spec.Internal = true;
    if (nw.attachable) spec.Attachable = true;
    if (nw.ipam && (nw.ipam.driver || (nw.ipam.config && nw.ipam.config.length > 0))) {
      spec.IPAMOptions = {
        ...(nw.ipam.driver ? { Driver: { Name: nw.ipam.driver } } : {}),
        ...(nw.ipam.config && nw.ipam.config.length > 0
          ? { Configs: nw.ipam.config.map((c) => (c.subnet ? { Subnet: c.subnet } : {})) }
          : {}),
      };
    }
    networks.push(spec);
  }
  networks.sort((a, b) => compare(a.Name ?? '', b.Name ?? ''));
  externalNetworks.sort(compare);

  const fileData = (kind: 'secrets' | 'configs', key: string, obj: FileObjectConfig): Buffer => {
    const file = obj.file ?? '';
    try {
      return readFile(file);
    } catch (e) {
      const code = errnoCode(e);
      if (code === undefined) throw e;
      const msg = code === 'ENOENT' ? 'no such file or directory' : (e as Error).message;
      diags.add(locate([kind, key, 'file']), `${kind}.${key}.file`, `open ${file}: ${msg}`);
      return Buffer.alloc(0);
    }
  };

  const secrets: SecretSpec[] = [];
  for (const [key, s] of config.secrets) {
    if (s.external.external) continue;
    const spec: SecretSpec = {
      Name: s.name ? s.name : scope(ns, key),
      Labels: addStackLabel(ns, s.labels),
      Data: s.driver ? Buffer.alloc(0) : fileData('secrets', key, s),
    };
    if (s.driver) spec.Driver = { Name: s.driver, ...(s.driverOpts ? { Options: { ...s.driverOpts } } : {}) };
    if (s.templateDriver) spec.Templating = { Name: s.templateDriver };
    secrets.push(spec);
  }
  secrets.sort((a, b) => compare(a.Name ?? '', b.Name ?? ''));

  const configs: ConfigSpec[] = [];
  for (const [key, c] of config.configs) {
    if (c.external.external) continue;
    const spec: ConfigSpec = {
      Name: c.name ? c.name : scope(ns, key),
      Labels: addStackLabel(ns, c.labels),
      Data: fileData('configs', key, c),
    };
    if (c.templateDriver) spec.Templating = { Name: c.templateDriver };
    configs.push(spec);
  }
  configs.sort((a, b) => compare(a.Name ?? '', b.Name ?? ''));

  const externalSecrets = new Set<string>();
  const externalConfigs = new Set<string>();
  const services: ServiceSpec[] = [];
  for (const svc of config.services) {
    const errors: { path: KeyPath; message: string }[] = [];
    const fail = (path: KeyPath, message: string) => errors.push({ path, message });
    const spec = convertService(ns, svc, config, fail, externalSecrets, externalConfigs);
    for (const e of errors)
      diags.add(
        locate(['services', svc.name, ...e.path]),
        ['services', svc.name, ...e.path].join('.'),
        `service ${svc.name}: ${e.message}`,
      );
    services.push(spec);
  }
  services.sort((a, b) => compare(a.Name ?? '', b.Name ?? ''));
  diags.throwIfAny();
  return {
    namespace: ns,
    networks,
    externalNetworks,
    secrets,
    configs,
    externalSecrets: [...externalSecrets].sort(compare),
    externalConfigs: [...externalConfigs].sort(compare),
    services,
  };
}

type Fail = (path: KeyPath, message: string) => void;

function convertService(
  ns: string,
  svc: ServiceConfig,
  config: ComposeConfig,
  fail: Fail,
  externalSecrets: Set<string>,
  externalConfigs: Set<string>,
): ServiceSpec {
  const secrets = convertRefs(ns, svc.secrets ?? [], config.secrets, 'secret', fail, externalSecrets).map(
    (r): SecretReference => ({ File: r.file, SecretName: r.name }),
  );
  const configRefs = convertRefs(ns, svc.configs ?? [], config.configs, 'config', fail, externalConfigs).map(
    (r): ConfigReference => ({ File: r.file, ConfigName: r.name }),
  );
  const cred = svc.credentialSpec;
  if (cred?.config) {
    const obj = config.configs.get(cred.config);
    if (!obj) fail(['credential_spec', 'config'], `undefined config ${JSON.stringify(cred.config)}`);
    else {
      configRefs.push({ ConfigName: obj.name ? obj.name : scope(ns, cred.config), Runtime: {} });
      if (obj.external.external) externalConfigs.add(obj.name ?? cred.config);
    }
  }
  configRefs.sort((a, b) => compare(a.ConfigName ?? '', b.ConfigName ?? ''));

  const container: ContainerSpec = {};
  if (svc.image) container.Image = svc.image;
  container.Labels = addStackLabel(ns, svc.labels);
  if (svc.entrypoint && svc.entrypoint.length > 0) container.Command = svc.entrypoint;
  if (svc.command && svc.command.length > 0) container.Args = svc.command;
  if (svc.hostname) container.Hostname = svc.hostname;
  const env = convertEnvironment(svc.environment);
  if (env.length > 0) container.Env = env;
  if (svc.workingDir) container.Dir = svc.workingDir;
  if (svc.user) container.User = svc.user;
  const credentialSpec = convertCredentialSpec(svc, fail);
  container.Privileges = credentialSpec ? { CredentialSpec: credentialSpec } : {};
  if (svc.init !== undefined) container.Init = svc.init;
  if (svc.stopSignal) container.StopSignal = svc.stopSignal;
  if (svc.tty) container.TTY = true;
  if (svc.stdinOpen) container.OpenStdin = true;
  if (svc.readOnly) container.ReadOnly = true;
  const mounts = convertVolumes(ns, svc.volumes ?? [], config.volumes, fail);
  if (mounts.length > 0) container.Mounts = mounts;
  if (svc.stopGracePeriod !== undefined) container.StopGracePeriod = svc.stopGracePeriod;
  const hc = convertHealthcheck(svc.healthcheck, fail);
  if (hc) container.Healthcheck = hc;
  const hosts = (svc.extraHosts ?? []).flatMap((h) => {
    const at = h.indexOf(':');
    return at < 0 ? [] : [`${h.slice(at + 1)} ${h.slice(0, at)}`];
  });
  if (hosts.length > 0) container.Hosts = hosts;
  if (svc.dns !== undefined || svc.dnsSearch !== undefined) {
    container.DNSConfig = {
      ...(svc.dns && svc.dns.length > 0 ? { Nameservers: svc.dns } : {}),
      ...(svc.dnsSearch && svc.dnsSearch.length > 0 ? { Search: svc.dnsSearch } : {}),
    };
  }
  if (secrets.length > 0) container.Secrets = secrets.sort((a, b) => compare(a.SecretName ?? '', b.SecretName ?? ''));
  if (configRefs.length > 0) container.Configs = configRefs;
  if (svc.isolation) container.Isolation = svc.isolation;
  if (svc.sysctls && Object.keys(svc.sysctls).length > 0) container.Sysctls = { ...svc.sysctls };
  const [capAdd, capDrop] = effectiveCaps(svc.capAdd ?? [], svc.capDrop ?? []);
  if (capAdd.length > 0) container.CapabilityAdd = capAdd;
  if (capDrop.length > 0) container.CapabilityDrop = capDrop;
  const ulimits = convertUlimits(svc);
  if (ulimits.length > 0) container.Ulimits = ulimits;
  if (svc.oomScoreAdj) container.OomScoreAdj = svc.oomScoreAdj;

  const spec: ServiceSpec = {
    Name: scope(ns, svc.name),
    Labels: { ...addStackLabel(ns, svc.deploy.labels), [LABEL_IMAGE]: svc.image ?? '' },
    TaskTemplate: {
      ContainerSpec: container,
      Resources: convertResources(svc.deploy.resources, fail),
      Placement: {
        ...(svc.deploy.placement.constraints && svc.deploy.placement.constraints.length > 0
          ? { Constraints: svc.deploy.placement.constraints }
          : {}),
        ...(svc.deploy.placement.preferences && svc.deploy.placement.preferences.length > 0
          ? {
              Preferences: svc.deploy.placement.preferences.map((p) => ({
                Spread: { SpreadDescriptor: p.spread ?? '' },
              })),
            }
          : {}),
        ...(svc.deploy.placement.maxReplicas ? { MaxReplicas: svc.deploy.placement.maxReplicas } : {}),
      },
      Networks: convertServiceNetworks(ns, svc, config, fail),
    },
    Mode: convertMode(svc, fail),
    EndpointSpec: convertEndpoint(svc.deploy.endpointMode, svc.ports ?? []),
  };
  const task = spec.TaskTemplate as NonNullable<ServiceSpec['TaskTemplate']>;
  const rp = convertRestartPolicy(svc, fail);
  if (rp) task.RestartPolicy = rp;
  if (svc.logging) {
    task.LogDriver = {
      Name: svc.logging.driver ?? '',
      ...(svc.logging.options ? { Options: { ...svc.logging.options } } : {}),
    };
  }
  const uc = convertUpdate(svc.deploy.updateConfig);
  if (uc) spec.UpdateConfig = uc;
  const rc = convertUpdate(svc.deploy.rollbackConfig);
  if (rc) spec.RollbackConfig = rc;
  return spec;
}

function convertRefs(
  ns: string,
  refs: FileReference[],
  defs: Map<string, FileObjectConfig>,
  kind: 'secret' | 'config',
  fail: Fail,
  externals: Set<string>,
): { name: string; file: { Name: string; UID: string; GID: string; Mode: number } }[] {
  const out: { name: string; file: { Name: string; UID: string; GID: string; Mode: number } }[] = [];
  refs.forEach((r, i) => {
    const obj = defs.get(r.source);
    if (!obj) {
      fail([`${kind}s`, i], `undefined ${kind} ${JSON.stringify(r.source)}`);
      return;
    }
    const name = obj.name ? obj.name : scope(ns, r.source);
    if (obj.external.external) externals.add(name);
    out.push({
      name,
      file: {
        Name: r.target ? r.target : r.source,
        UID: r.uid ? r.uid : '0',
        GID: r.gid ? r.gid : '0',
        Mode: r.mode ?? 0o444,
      },
    });
  });
  return out;
}

function convertEnvironment(env: Map<string, string | null>): string[] {
  const out: string[] = [];
  for (const [k, v] of env) out.push(v === null ? k : `${k}=${v}`);
  return out.sort(compare);
}

function convertCredentialSpec(svc: ServiceConfig, fail: Fail): CredentialSpec | undefined {
  const c = svc.credentialSpec;
  if (!c) return undefined;
  const set: string[] = [];
  if (c.config) set.push('"Config"');
  if (c.file) set.push('"File"');
  if (c.registry) set.push('"Registry"');
  if (set.length === 0) return undefined;
  if (set.length === 2) {
    fail(['credential_spec'], `invalid credential spec: cannot specify both ${set[0]} and ${set[1]}`);
    return undefined;
  }
  if (set.length > 2) {
    fail(
      ['credential_spec'],
      `invalid credential spec: cannot specify both ${set.slice(0, -1).join(', ')}, and ${set[set.length - 1]}`,
    );
    return undefined;
  }
  // A `config` credential spec names the config's ID, which only deploy knows; keep the name.
  return {
    ...(c.config ? { Config: c.config } : {}),
    ...(c.file ? { File: c.file } : {}),
    ...(c.registry ? { Registry: c.registry } : {}),
  };
}

/** Docker's EffectiveCapAddCapDrop: upper case, `CAP_` prefix, ALL wins, added caps are not dropped, sorted. */
export function effectiveCaps(add: string[], drop: string[]): [string[], string[]] {
  const norm = (c: string) => {
    const u = c.trim().toUpperCase();
    return u === 'ALL' || u === 'RESET' || u.startsWith('CAP_') ? u : `CAP_${u}`;
  };
  let addSet = new Set(add.map(norm));
  let dropSet = new Set(drop.map(norm));
  if (addSet.has('ALL')) addSet = new Set(['ALL']);
  if (dropSet.has('ALL')) dropSet = new Set(['ALL']);
  const capDrop = [...dropSet].filter((c) => !addSet.has(c) && c !== 'RESET').sort(compare);
  const capAdd = [...addSet].filter((c) => c !== 'RESET').sort(compare);
  return [capAdd, capDrop];
}

function convertUlimits(svc: ServiceConfig): Ulimit[] {
  const out: Ulimit[] = [];
  for (const [name, u] of svc.ulimits ?? []) {
    if (u.single) out.push({ Name: name, Soft: u.single, Hard: u.single });
    else out.push({ Name: name, Soft: u.soft ?? 0, Hard: u.hard ?? 0 });
  }
  return out.sort((a, b) => compare(a.Name ?? '', b.Name ?? ''));
}

function convertVolumes(ns: string, vols: ServiceVolumeConfig[], defs: Map<string, VolumeConfig>, fail: Fail): Mount[] {
  const out: Mount[] = [];
  vols.forEach((v, i) => {
    const path: KeyPath = ['volumes', i];
    const m: Mount = { Type: v.type || 'volume' };
    if (v.source) m.Source = v.source;
    if (v.target) m.Target = v.target;
    if (v.readOnly) m.ReadOnly = true;
    if (v.consistency) m.Consistency = v.consistency;
    const incompatible = (opt: string, type: string) => fail(path, `${opt} options are incompatible with type ${type}`);
    switch (v.type) {
      case 'volume':
      case '': {
        if (v.tmpfs) return incompatible('tmpfs', 'volume');
        if (v.bind) return incompatible('bind', 'volume');
        m.Type = v.type === '' ? '' : 'volume';
        if (v.type === '') delete m.Type;
        if (!v.source) {
          out.push(m);
          return;
        }
        const def = defs.get(v.source);
        if (!def) return fail(path, `undefined volume ${JSON.stringify(v.source)}`);
        m.Source = def.name ? def.name : scope(ns, v.source);
        m.VolumeOptions = {};
        if (v.volume?.nocopy) m.VolumeOptions.NoCopy = true;
        if (v.volume?.subpath) m.VolumeOptions.Subpath = v.volume.subpath;
        if (!def.external.external) {
          m.VolumeOptions.Labels = addStackLabel(ns, def.labels);
          if (def.driver || def.driverOpts !== undefined)
            m.VolumeOptions.DriverConfig = {
              ...(def.driver ? { Name: def.driver } : {}),
              ...(def.driverOpts ? { Options: { ...def.driverOpts } } : {}),
            };
        }
        out.push(m);
        return;
      }
      case 'bind':
        if (!v.source) return fail(path, 'invalid bind source, source cannot be empty');
        if (v.volume) return incompatible('volume', 'bind');
        if (v.tmpfs) return incompatible('tmpfs', 'bind');
        if (v.bind) m.BindOptions = v.bind.propagation ? { Propagation: v.bind.propagation } : {};
        out.push(m);
        return;
      case 'tmpfs':
        if (v.source) return fail(path, 'invalid tmpfs source, source must be empty');
        if (v.bind) return incompatible('bind', 'tmpfs');
        if (v.volume) return incompatible('volume', 'tmpfs');
        if (v.tmpfs) m.TmpfsOptions = v.tmpfs.size ? { SizeBytes: v.tmpfs.size } : {};
        out.push(m);
        return;
      case 'npipe':
        if (!v.source) return fail(path, 'invalid npipe source, source cannot be empty');
        if (v.volume) return incompatible('volume', 'npipe');
        if (v.tmpfs) return incompatible('tmpfs', 'npipe');
        if (v.bind) m.BindOptions = v.bind.propagation ? { Propagation: v.bind.propagation } : {};
        out.push(m);
        return;
      case 'cluster': {
        if (!v.source) return fail(path, 'invalid cluster source, source cannot be empty');
        if (v.tmpfs) return incompatible('tmpfs', 'cluster');
        if (v.bind) return incompatible('bind', 'cluster');
        if (v.volume) return incompatible('volume', 'cluster');
        if (!v.source.startsWith('group:')) {
          const def = defs.get(v.source);
          if (!def) return fail(path, `undefined volume ${JSON.stringify(v.source)}`);
          m.Source = def.name ? def.name : scope(ns, v.source);
        }
        out.push(m);
        return;
      }
      default:
        fail(path, 'volume type must be volume, bind, tmpfs, npipe, or cluster');
    }
  });
  return out;
}

function convertHealthcheck(h: HealthCheckConfig | undefined, fail: Fail): HealthConfig | undefined {
  if (!h) return undefined;
  if (h.disable) {
    if (h.test && h.test.length > 0) {
      fail(['healthcheck'], "test and disable can't be set at the same time");
      return undefined;
    }
    return { Test: ['NONE'] };
  }
  const out: HealthConfig = {};
  if (h.test && h.test.length > 0) out.Test = h.test;
  if (h.interval) out.Interval = h.interval;
  if (h.timeout) out.Timeout = h.timeout;
  if (h.startPeriod) out.StartPeriod = h.startPeriod;
  if (h.startInterval) out.StartInterval = h.startInterval;
  if (h.retries) out.Retries = h.retries;
  return out;
}

function convertResources(r: { limits?: ResourceSpec; reservations?: ResourceSpec }, fail: Fail): ResourceRequirements {
  const out: ResourceRequirements = {};
  const cpus = (spec: ResourceSpec, which: string): number => {
    if (spec.cpus === undefined || spec.cpus === '') return 0;
    try {
      return parseCPUs(spec.cpus);
    } catch (e) {
      fail(['deploy', 'resources', which, 'cpus'], (e as Error).message);
      return 0;
    }
  };
  if (r.limits) {
    const nano = cpus(r.limits, 'limits');
    out.Limits = {
      ...(nano ? { NanoCPUs: nano } : {}),
      ...(r.limits.memory ? { MemoryBytes: r.limits.memory } : {}),
      ...(r.limits.pids ? { Pids: r.limits.pids } : {}),
    };
  }
  if (r.reservations) {
    const nano = cpus(r.reservations, 'reservations');
    const generic = (r.reservations.genericResources ?? []).map((g) =>
      g.discreteResourceSpec
        ? {
            DiscreteResourceSpec: {
              ...(g.discreteResourceSpec.kind ? { Kind: g.discreteResourceSpec.kind } : {}),
              Value: g.discreteResourceSpec.value ?? 0,
            },
          }
        : {},
    );
    out.Reservations = {
      ...(nano ? { NanoCPUs: nano } : {}),
      ...(r.reservations.memory ? { MemoryBytes: r.reservations.memory } : {}),
      ...(generic.length > 0 ? { GenericResources: generic } : {}),
    };
  }
  return out;
}

/** Docker's restart policy: deploy.restart_policy as given, else the legacy `restart` key mapped. */
function convertRestartPolicy(svc: ServiceConfig, fail: Fail): RestartPolicy | undefined {
  const rp = svc.deploy.restartPolicy;
  if (rp) {
    return {
      ...(rp.condition ? { Condition: rp.condition } : {}),
      ...(rp.delay !== undefined ? { Delay: rp.delay } : {}),
      ...(rp.maxAttempts !== undefined ? { MaxAttempts: rp.maxAttempts } : {}),
      ...(rp.window !== undefined ? { Window: rp.window } : {}),
    };
  }
  const restart = svc.restart ?? '';
  if (restart === '' || restart === 'no') return undefined;
  if (restart === 'always' || restart === 'unless-stopped') return { Condition: 'any' };
  const m = /^on-failure(?::(.*))?$/.exec(restart);
  if (m) {
    const n = m[1];
    if (n !== undefined && !/^[+-]?[0-9]+$/.test(n)) {
      fail(['restart'], `invalid restart policy format: maximum retry count must be an integer`);
      return undefined;
    }
    return { Condition: 'on-failure', MaxAttempts: n === undefined ? 0 : Number(n) };
  }
  if (restart.includes(':') && ['always', 'unless-stopped', 'no'].includes(restart.split(':')[0] ?? '')) {
    fail(['restart'], `invalid restart policy format: maximum retry count can only be used with 'on-failure'`);
    return undefined;
  }
  fail(['restart'], `unknown restart policy: ${restart}`);
  return undefined;
}

function convertUpdate(u: UpdateConfig | undefined): SwarmUpdateConfig | undefined {
  if (!u) return undefined;
  return {
    Parallelism: u.parallelism ?? 1,
    ...(u.delay ? { Delay: u.delay } : {}),
    ...(u.failureAction ? { FailureAction: u.failureAction } : {}),
    ...(u.monitor ? { Monitor: u.monitor } : {}),
    MaxFailureRatio: u.maxFailureRatio ?? 0,
    Order: u.order ?? '',
  };
}

function convertEndpoint(mode: string | undefined, ports: ComposePort[]): EndpointSpec {
  const out: PortConfig[] = ports.map((p) => ({
    // long syntax passes the protocol as written; Docker's daemon stores it lower-case
    ...(p.protocol ? { Protocol: p.protocol.toLowerCase() } : {}),
    ...(p.target ? { TargetPort: p.target } : {}),
    ...(p.published ? { PublishedPort: p.published } : {}),
    ...(p.mode ? { PublishMode: p.mode } : {}),
  }));
  // Go's sort.Slice is not stable; ties (same published port) keep file order here.
  out.sort((a, b) => (a.PublishedPort ?? 0) - (b.PublishedPort ?? 0));
  return { ...(mode ? { Mode: mode.toLowerCase() } : {}), ...(out.length > 0 ? { Ports: out } : {}) };
}

function convertMode(svc: ServiceConfig, fail: Fail): ServiceMode {
  const { mode = '', replicas } = svc.deploy;
  switch (mode) {
    case 'global':
    case 'global-job':
      if (replicas !== undefined)
        fail(['deploy', 'replicas'], 'replicas can only be used with replicated or replicated-job mode');
      return mode === 'global' ? { Global: {} } : { GlobalJob: {} };
    case 'replicated-job':
      return { ReplicatedJob: replicas !== undefined ? { MaxConcurrent: replicas, TotalCompletions: replicas } : {} };
    case 'replicated':
    case '':
      return { Replicated: replicas !== undefined ? { Replicas: replicas } : {} };
    default:
      fail(['deploy', 'mode'], `Unknown mode: ${mode}`);
      return { Replicated: {} };
  }
}

function convertServiceNetworks(
  ns: string,
  svc: ServiceConfig,
  config: ComposeConfig,
  fail: Fail,
): NetworkAttachmentConfig[] {
  const nets = svc.networks && svc.networks.size > 0 ? svc.networks : new Map([['default', null]]);
  const out: NetworkAttachmentConfig[] = [];
  for (const [key, cfg] of nets) {
    const def = config.networks.get(key);
    if (!def && key !== 'default') {
      fail(['networks', key], `undefined network ${JSON.stringify(key)}`);
      continue;
    }
    const target = def?.name ? def.name : scope(ns, key);
    const aliases = [...(cfg?.aliases ?? [])];
    if (isUserDefinedNetwork(target)) aliases.push(svc.name);
    out.push({
      Target: target,
      ...(aliases.length > 0 ? { Aliases: aliases } : {}),
      ...(cfg?.driverOpts ? { DriverOpts: { ...cfg.driverOpts } } : {}),
    });
  }
  return out.sort((a, b) => compare(a.Target ?? '', b.Target ?? ''));
}
