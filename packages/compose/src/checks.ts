import type { ServiceSpec } from '@shoal/api';
import { Diagnostics, type SourcePos } from './errors.js';
import type { KeyPath } from './positions.js';
import type { ComposeConfig } from './types.js';
import type { StackSpecs } from './convert.js';

/**
 * Checks Docker leaves to the daemon (so that `stack deploy` there half-deploys before it
 * fails), done here before anything is created. Messages carry the daemon's wording.
 */
export function checkStack(specs: StackSpecs, config: ComposeConfig, locate: (path: KeyPath) => SourcePos): void {
  const diags = new Diagnostics();
  const svcByName = new Map(config.services.map((s) => [s.name, s]));
  const shortName = (s: ServiceSpec) => (s.Name ?? '').slice(specs.namespace.length + 1);

  for (const n of specs.networks) {
    const key = [...config.networks].find(([k, v]) => (v.name ? v.name : `${specs.namespace}_${k}`) === n.Name)?.[0];
    const at = () => locate(key ? ['networks', key] : ['services']);
    const nameProblem = dnsNameProblem(n.Name ?? '');
    if (nameProblem)
      diags.add(at(), `networks.${key ?? ''}`, `failed to create network ${n.Name ?? ''}: ${nameProblem}`);
    const driver = n.DriverConfiguration?.Name ?? '';
    if (driver === 'bridge' || driver === 'host' || driver === 'null' || driver === 'macvlan' || driver === 'ipvlan')
      diags.add(
        at(),
        `networks.${key ?? ''}.driver`,
        `The network ${n.Name ?? ''} cannot be used with services. Only networks scoped to the swarm can be used, such as those created with the overlay driver.`,
      );
  }
  for (const [kind, list] of [
    ['secret', specs.secrets],
    ['config', specs.configs],
  ] as const) {
    const defs = kind === 'secret' ? config.secrets : config.configs;
    for (const o of list) {
      const key = [...defs].find(([k, v]) => (v.name ? v.name : `${specs.namespace}_${k}`) === o.Name)?.[0] ?? '';
      if (!/^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/.test(o.Name ?? '') || (o.Name ?? '').length > 64)
        diags.add(
          locate([`${kind}s`, key]),
          `${kind}s.${key}`,
          `failed to create ${kind} ${o.Name ?? ''}: invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]`,
        );
      const max = kind === 'secret' ? 500 * 1024 : 1000 * 1024;
      if ((o.Data?.length ?? 0) >= max)
        diags.add(
          locate([`${kind}s`, key, 'file']),
          `${kind}s.${key}.file`,
          `failed to create ${kind} ${o.Name ?? ''}: ${kind} data must be larger than 0 and less than ${max / 1024}KB`,
        );
    }
  }

  // The services are checked in file order: of two services publishing one port, the later one
  // is reported (Docker creates services in Go map order, so either can fail there). Only that
  // check depends on the order, and only when it fails, so they are checked in spec order first
  // (file positions are not needed) and again in file order when anything was found.
  const probe = new Diagnostics();
  checkServices(specs.services, specs.namespace, svcByName, locate, probe);
  if (probe.size === 0) {
    diags.throwIfAny();
    return;
  }
  const where = (s: ServiceSpec) => locate(['services', shortName(s)]);
  const inFileOrder = [...specs.services].sort((a, b) => {
    const pa = where(a);
    const pb = where(b);
    return pa.file === pb.file ? pa.line - pb.line || pa.column - pb.column : 0;
  });
  checkServices(inFileOrder, specs.namespace, svcByName, locate, diags);
  diags.throwIfAny();
}

/** The per-service checks, in the order given (see checkStack). */
function checkServices(
  services: readonly ServiceSpec[],
  namespace: string,
  svcByName: ReadonlyMap<string, unknown>,
  locate: (path: KeyPath) => SourcePos,
  diags: Diagnostics,
): void {
  const shortName = (s: ServiceSpec) => (s.Name ?? '').slice(namespace.length + 1);
  const ingressPorts = new Map<string, string>();
  for (const s of services) {
    const name = shortName(s);
    const fail = (path: KeyPath, message: string) =>
      diags.add(
        locate(['services', name, ...path]),
        ['services', name, ...path].join('.'),
        `service ${name}: ${message}`,
      );
    if (!svcByName.has(name)) continue;
    const nameProblem = dnsNameProblem(s.Name ?? '');
    if (nameProblem) fail([], nameProblem);
    const task = s.TaskTemplate ?? {};
    const c = task.ContainerSpec ?? {};

    const rp = task.RestartPolicy;
    if (rp?.Condition !== undefined && !['none', 'on-failure', 'any'].includes(rp.Condition))
      fail(['deploy', 'restart_policy', 'condition'], `invalid RestartCondition: ${JSON.stringify(rp.Condition)}`);
    if (rp?.Delay !== undefined && rp.Delay < 0)
      fail(['deploy', 'restart_policy', 'delay'], 'TaskSpec: restart-delay cannot be negative');
    if (rp?.Window !== undefined && rp.Window < 0)
      fail(['deploy', 'restart_policy', 'window'], 'TaskSpec: restart-window cannot be negative');

    for (const [key, uc] of [
      ['update_config', s.UpdateConfig],
      ['rollback_config', s.RollbackConfig],
    ] as const) {
      if (!uc) continue;
      if (uc.FailureAction && !['pause', 'continue', 'rollback'].includes(uc.FailureAction))
        fail(['deploy', key, 'failure_action'], `unrecognized update failure action ${uc.FailureAction}`);
      if (uc.Delay !== undefined && uc.Delay < 0)
        fail(['deploy', key, 'delay'], 'TaskSpec: update-delay cannot be negative');
      if (uc.Monitor !== undefined && uc.Monitor < 0)
        fail(['deploy', key, 'monitor'], 'TaskSpec: update-monitor cannot be negative');
      if (uc.MaxFailureRatio !== undefined && (uc.MaxFailureRatio < 0 || uc.MaxFailureRatio > 1))
        fail(
          ['deploy', key, 'max_failure_ratio'],
          'TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1',
        );
    }

    for (const [key, r] of [
      ['limits', task.Resources?.Limits],
      ['reservations', task.Resources?.Reservations],
    ] as const) {
      const cpus = r?.NanoCPUs ?? 0;
      if (cpus !== 0 && cpus < 1e6)
        fail(
          ['deploy', 'resources', key, 'cpus'],
          `invalid cpu value ${goFloat(cpus / 1e9)}: Must be at least ${goFloat(1e6 / 1e9)}`,
        );
      const memory = r?.MemoryBytes ?? 0;
      if (memory !== 0 && memory < 4 * 1024 * 1024)
        fail(['deploy', 'resources', key, 'memory'], `invalid memory value ${memory}: Must be at least 4MiB`);
    }

    (task.Placement?.Constraints ?? []).forEach((expr, i) => {
      const problem = constraintProblem(expr);
      if (problem) fail(['deploy', 'placement', 'constraints', i], problem);
    });

    const mounts = new Set<string>();
    for (const m of c.Mounts ?? []) {
      const target = m.Target ?? '';
      if (mounts.has(target)) fail(['volumes'], `ContainerSpec: duplicate mount point: ${target}`);
      mounts.add(target);
      if (target === '') fail(['volumes'], 'ContainerSpec: mount target must not be empty');
    }

    const hc = c.Healthcheck;
    if (hc) {
      for (const [field, key] of [
        ['Interval', 'interval'],
        ['Timeout', 'timeout'],
        ['StartPeriod', 'start_period'],
        ['StartInterval', 'start_interval'],
      ] as const) {
        const v = hc[field];
        if (v !== undefined && v !== 0 && v < 1_000_000)
          fail(['healthcheck', key], `${field} in Healthcheck cannot be less than 1ms`);
      }
      if (hc.Retries !== undefined && hc.Retries < 0)
        fail(['healthcheck', 'retries'], 'Retries in Healthcheck cannot be negative');
    }

    // CLI 28's wording (its ParseSecrets / ParseConfigs), checked before the daemon's
    const targets = new Set<string>();
    for (const r of c.Secrets ?? []) {
      const t = r.File?.Name ?? '';
      if (targets.has(t)) fail(['secrets'], `duplicate secret target for ${r.SecretName ?? ''} not allowed`);
      targets.add(t);
    }
    const ctargets = new Set<string>();
    for (const r of c.Configs ?? []) {
      if (!r.File) continue;
      const t = r.File.Name ?? '';
      if (ctargets.has(t)) fail(['configs'], `duplicate config target for ${r.ConfigName ?? ''} not allowed`);
      ctargets.add(t);
    }

    const ep = s.EndpointSpec ?? {};
    const seen = new Set<string>();
    for (const p of ep.Ports ?? []) {
      const mode = p.PublishMode ?? 'ingress';
      const proto = p.Protocol ?? 'tcp';
      if (ep.Mode === 'dnsrr' && mode === 'ingress')
        fail(['ports'], "EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
      if (!p.PublishedPort) continue;
      const key = `${p.PublishedPort}/${proto}/${mode}`;
      if (seen.has(key)) fail(['ports'], 'EndpointSpec: duplicate published ports provided');
      seen.add(key);
      if (mode !== 'ingress') continue;
      const owner = ingressPorts.get(`${p.PublishedPort}/${proto}`);
      if (owner !== undefined && owner !== s.Name)
        fail(['ports'], `port '${p.PublishedPort}' is already in use by service '${owner}' as an ingress port`);
      else ingressPorts.set(`${p.PublishedPort}/${proto}`, s.Name ?? '');
    }
  }
}

/** Go's %g for a float64: the shortest digits, in exponent form below 1e-4 and from 1e6 up. */
export function goFloat(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const [mant = '', e = '0'] = x.toExponential().split('e');
  const exp = Number(e);
  if (exp < -4 || exp >= 6) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(x);
}

/** swarmkit's name rule for services and networks, or undefined when fine. */
export function dnsNameProblem(name: string): string | undefined {
  if (name.length > 63) return 'name must be 63 characters or fewer';
  if (!/^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/.test(name)) return 'name must be valid as a DNS name component';
  return undefined;
}

const CONSTRAINT_KEY = /^[a-z_][a-z0-9\-_.]+$/i;
const CONSTRAINT_VALUE = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i;

/** swarmkit's constraint parser: `key==value` or `key!=value` with its key and value alphabets. */
export function constraintProblem(expr: string): string | undefined {
  for (const op of ['==', '!=']) {
    const at = expr.indexOf(op);
    if (at < 0) continue;
    const key = expr.slice(0, at).trim();
    const value = expr.slice(at + op.length).trim();
    if (!CONSTRAINT_KEY.test(key)) return `key '${key}' is invalid`;
    if (!CONSTRAINT_VALUE.test(value)) return `value '${value}' is invalid`;
    return undefined;
  }
  return 'constraint expected one operator from ==, !=';
}
