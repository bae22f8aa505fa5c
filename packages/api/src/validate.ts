import { InvalidArgumentError } from '@shoal/common';
import {
  BIND_PROPAGATIONS,
  ENDPOINT_MODES,
  MOUNT_TYPES,
  PORT_PROTOCOLS,
  PUBLISH_MODES,
  RESTART_CONDITIONS,
  UPDATE_FAILURE_ACTIONS,
  UPDATE_ORDERS,
} from './enums.js';
import type { ContainerSpec, HealthConfig, Mount } from './gen/shoal/container.js';
import type { NetworkSpec } from './gen/shoal/network.js';
import type { ConfigSpec, SecretSpec } from './gen/shoal/secret.js';
import type { EndpointSpec, ServiceSpec, UpdateConfig } from './gen/shoal/service.js';

/** One thing wrong in a spec: where (a Docker JSON key path) and what. */
export interface SpecProblem {
  path: string;
  message: string;
}

/** Service and network names: a DNS label of letters, digits, '-' and '_' (up to 63). */
const DNS_NAME = /^[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*$/;
/** Secret and config names: letters, digits, '-', '_' and '.', starting and ending alnum (≤ 64). */
const OBJECT_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;

/** Why `name` is not a valid service or network name, or undefined when it is. */
export function dnsNameProblem(name: string | undefined): string | undefined {
  if (!name) return 'name must be provided';
  if (name.length > 63) return `name "${name}" is too long: a DNS name component has at most 63 characters`;
  if (!DNS_NAME.test(name))
    return `name "${name}" must be valid as a DNS name component: letters, digits, '-' and '_', starting and ending with a letter or digit`;
  return undefined;
}

/** True when `name` is a valid service or network name (a DNS name component). */
export function isValidDnsName(name: string): boolean {
  return dnsNameProblem(name) === undefined;
}

/** Why `name` is not a valid secret or config name, or undefined when it is. */
export function objectNameProblem(name: string | undefined): string | undefined {
  if (!name) return 'name must be provided';
  if (name.length > 64) return `name "${name}" is too long: at most 64 characters`;
  if (!OBJECT_NAME.test(name))
    return `name "${name}" is invalid: letters, digits, '-', '_' and '.', starting and ending with a letter or digit`;
  return undefined;
}

/** A placement constraint, parsed: `node.labels.zone != b`. */
export interface Constraint {
  key: string;
  operator: '==' | '!=';
  value: string;
}

const CONSTRAINT = /^\s*([a-zA-Z0-9_.-]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*$/;
const CONSTRAINT_KEYS =
  /^(node\.(id|hostname|role|ip|platform\.os|platform\.arch|labels\.[^\s]+)|engine\.labels\.[^\s]+)$/;

/** Parses a constraint; throws InvalidArgumentError naming what is wrong. */
export function parseConstraint(expr: string): Constraint {
  const m = CONSTRAINT.exec(expr);
  if (!m) throw new InvalidArgumentError(`invalid constraint "${expr}": expected KEY==VALUE or KEY!=VALUE`);
  const [, key = '', operator, value = ''] = m;
  if (!CONSTRAINT_KEYS.test(key))
    throw new InvalidArgumentError(
      `invalid constraint "${expr}": unknown key "${key}" (node.id, node.hostname, node.role, node.ip, node.platform.os, node.platform.arch, node.labels.*, engine.labels.*)`,
    );
  return { key, operator: operator === '!=' ? '!=' : '==', value };
}

class Problems {
  readonly list: SpecProblem[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
  oneOf(path: string, list: readonly string[], value: string | undefined): void {
    if (value !== undefined && value !== '' && !list.includes(value))
      this.add(path, `invalid value "${value}": expected one of ${list.join(', ')}`);
  }
  nonNegative(path: string, value: number | undefined): void {
    if (value !== undefined && value < 0) this.add(path, `must not be negative (got ${value})`);
  }
}

function checkUpdateConfig(p: Problems, path: string, c: UpdateConfig | undefined): void {
  if (!c) return;
  p.oneOf(`${path}.FailureAction`, UPDATE_FAILURE_ACTIONS, c.FailureAction);
  p.oneOf(`${path}.Order`, UPDATE_ORDERS, c.Order);
  p.nonNegative(`${path}.Delay`, c.Delay);
  p.nonNegative(`${path}.Monitor`, c.Monitor);
  if (c.MaxFailureRatio !== undefined && (c.MaxFailureRatio < 0 || c.MaxFailureRatio > 1))
    p.add(`${path}.MaxFailureRatio`, `must be between 0 and 1 (got ${c.MaxFailureRatio})`);
}

function checkEndpoint(p: Problems, e: EndpointSpec | undefined): void {
  if (!e) return;
  p.oneOf('EndpointSpec.Mode', ENDPOINT_MODES, e.Mode);
  const seen = new Set<string>();
  (e.Ports ?? []).forEach((port, i) => {
    const path = `EndpointSpec.Ports[${i}]`;
    p.oneOf(`${path}.Protocol`, PORT_PROTOCOLS, port.Protocol);
    p.oneOf(`${path}.PublishMode`, PUBLISH_MODES, port.PublishMode);
    const target = port.TargetPort ?? 0;
    const published = port.PublishedPort ?? 0;
    if (target < 1 || target > 65535) p.add(`${path}.TargetPort`, `port ${target} is out of range 1-65535`);
    if (published < 0 || published > 65535) p.add(`${path}.PublishedPort`, `port ${published} is out of range 0-65535`);
    const mode = port.PublishMode || 'ingress';
    if (e.Mode === 'dnsrr' && mode === 'ingress' && published !== 0)
      p.add(path, `port ${published} published in ingress mode can't be used with endpoint mode dnsrr`);
    if (published !== 0) {
      const key = `${published}/${port.Protocol || 'tcp'}/${mode}`;
      if (seen.has(key)) p.add(path, `published port ${published}/${port.Protocol || 'tcp'} is used more than once`);
      seen.add(key);
    }
  });
}

function checkMount(p: Problems, path: string, m: Mount): void {
  if (!m.Type) p.add(`${path}.Type`, 'mount type must be provided');
  else p.oneOf(`${path}.Type`, MOUNT_TYPES, m.Type);
  if (!m.Target) p.add(`${path}.Target`, 'mount target must be provided');
  else if (!m.Target.startsWith('/')) p.add(`${path}.Target`, `mount target "${m.Target}" must be an absolute path`);
  if (m.Type === 'bind') {
    if (!m.Source) p.add(`${path}.Source`, 'a bind mount needs a source path');
    else if (!m.Source.startsWith('/')) p.add(`${path}.Source`, `bind source "${m.Source}" must be an absolute path`);
    p.oneOf(`${path}.BindOptions.Propagation`, BIND_PROPAGATIONS, m.BindOptions?.Propagation);
  }
  if (m.Type === 'tmpfs' && m.Source) p.add(`${path}.Source`, 'a tmpfs mount takes no source');
  if (m.BindOptions && m.Type !== 'bind') p.add(`${path}.BindOptions`, `BindOptions need type bind (got ${m.Type})`);
  if (m.VolumeOptions && m.Type !== 'volume')
    p.add(`${path}.VolumeOptions`, `VolumeOptions need type volume (got ${m.Type})`);
  if (m.TmpfsOptions && m.Type !== 'tmpfs')
    p.add(`${path}.TmpfsOptions`, `TmpfsOptions need type tmpfs (got ${m.Type})`);
  p.nonNegative(`${path}.TmpfsOptions.SizeBytes`, m.TmpfsOptions?.SizeBytes);
}

const MS_NS = 1_000_000;

function checkHealth(p: Problems, path: string, h: HealthConfig | undefined): void {
  if (!h) return;
  const first = h.Test?.[0];
  if (first !== undefined && !['NONE', 'CMD', 'CMD-SHELL'].includes(first))
    p.add(`${path}.Test`, `test must start with NONE, CMD or CMD-SHELL (got "${first}")`);
  for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval'] as const) {
    const v = h[key];
    if (v !== undefined && v !== 0 && v < MS_NS) p.add(`${path}.${key}`, `must be 0 or at least 1ms (got ${v}ns)`);
  }
  p.nonNegative(`${path}.Retries`, h.Retries);
}

function checkContainer(p: Problems, c: ContainerSpec | undefined): void {
  const path = 'TaskTemplate.ContainerSpec';
  if (!c?.Image) {
    p.add(`${path}.Image`, 'image must be provided');
    return;
  }
  p.nonNegative(`${path}.StopGracePeriod`, c.StopGracePeriod);
  (c.Env ?? []).forEach((e, i) => {
    if (e === '' || e.startsWith('='))
      p.add(`${path}.Env[${i}]`, `invalid environment entry "${e}": expected KEY=value`);
  });
  const targets = new Map<string, number>();
  (c.Mounts ?? []).forEach((m, i) => {
    checkMount(p, `${path}.Mounts[${i}]`, m);
    if (m.Target) {
      if (targets.has(m.Target)) p.add(`${path}.Mounts[${i}].Target`, `duplicate mount point "${m.Target}"`);
      targets.set(m.Target, i);
    }
  });
  checkHealth(p, `${path}.Healthcheck`, c.Healthcheck);
  const files = new Set<string>();
  (c.Secrets ?? []).forEach((s, i) => {
    const sp = `${path}.Secrets[${i}]`;
    if (!s.SecretName && !s.SecretID) p.add(sp, 'secret reference needs a name');
    if (s.File) {
      if (!s.File.Name) p.add(`${sp}.File.Name`, 'secret file name must be provided');
      else if (files.has(s.File.Name))
        p.add(`${sp}.File.Name`, `secret target "${s.File.Name}" is used more than once`);
      else files.add(s.File.Name);
    }
  });
  const configFiles = new Set<string>();
  (c.Configs ?? []).forEach((s, i) => {
    const sp = `${path}.Configs[${i}]`;
    if (!s.ConfigName && !s.ConfigID) p.add(sp, 'config reference needs a name');
    if (s.File?.Name) {
      if (configFiles.has(s.File.Name))
        p.add(`${sp}.File.Name`, `config target "${s.File.Name}" is used more than once`);
      configFiles.add(s.File.Name);
    }
  });
}

/**
 * Everything wrong in a service spec, each with its key path: names, image, mode, restart and
 * update policies, ports (including dnsrr with ingress ports), mounts (including duplicate
 * targets), health check, secrets and configs, placement constraints. Empty when valid.
 */
export function serviceSpecProblems(spec: ServiceSpec): SpecProblem[] {
  const p = new Problems();
  const nameProblem = dnsNameProblem(spec.Name);
  if (nameProblem) p.add('Name', nameProblem);
  const t = spec.TaskTemplate;
  checkContainer(p, t?.ContainerSpec);
  const modes = Object.values(spec.Mode ?? {}).filter((m) => m !== undefined);
  if (modes.length > 1) p.add('Mode', 'only one of Replicated, Global, ReplicatedJob or GlobalJob may be set');
  const rp = t?.RestartPolicy;
  if (rp) {
    p.oneOf('TaskTemplate.RestartPolicy.Condition', RESTART_CONDITIONS, rp.Condition);
    p.nonNegative('TaskTemplate.RestartPolicy.Delay', rp.Delay);
    p.nonNegative('TaskTemplate.RestartPolicy.Window', rp.Window);
  }
  const res = t?.Resources;
  p.nonNegative('TaskTemplate.Resources.Limits.NanoCPUs', res?.Limits?.NanoCPUs);
  p.nonNegative('TaskTemplate.Resources.Limits.MemoryBytes', res?.Limits?.MemoryBytes);
  p.nonNegative('TaskTemplate.Resources.Reservations.NanoCPUs', res?.Reservations?.NanoCPUs);
  p.nonNegative('TaskTemplate.Resources.Reservations.MemoryBytes', res?.Reservations?.MemoryBytes);
  (t?.Placement?.Constraints ?? []).forEach((c, i) => {
    try {
      parseConstraint(c);
    } catch (err) {
      p.add(`TaskTemplate.Placement.Constraints[${i}]`, (err as Error).message);
    }
  });
  (t?.Placement?.Preferences ?? []).forEach((pref, i) => {
    if (!pref.Spread?.SpreadDescriptor)
      p.add(`TaskTemplate.Placement.Preferences[${i}]`, 'spread descriptor must be provided');
  });
  (t?.Networks ?? []).forEach((n, i) => {
    if (!n.Target) p.add(`TaskTemplate.Networks[${i}].Target`, 'network must be provided');
  });
  checkUpdateConfig(p, 'UpdateConfig', spec.UpdateConfig);
  checkUpdateConfig(p, 'RollbackConfig', spec.RollbackConfig);
  checkEndpoint(p, spec.EndpointSpec);
  return p.list;
}

/** Everything wrong in a network spec. */
export function networkSpecProblems(spec: NetworkSpec): SpecProblem[] {
  const p = new Problems();
  const nameProblem = dnsNameProblem(spec.Name);
  if (nameProblem) p.add('Name', nameProblem);
  (spec.IPAMOptions?.Configs ?? []).forEach((c, i) => {
    if (c.Subnet && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(c.Subnet))
      p.add(`IPAMOptions.Configs[${i}].Subnet`, `invalid subnet "${c.Subnet}": expected CIDR such as 198.19.1.0/24`);
  });
  return p.list;
}

/** Everything wrong in a secret spec (max 500 KiB of data). */
export function secretSpecProblems(spec: SecretSpec): SpecProblem[] {
  const p = new Problems();
  const nameProblem = objectNameProblem(spec.Name);
  if (nameProblem) p.add('Name', nameProblem);
  const size = spec.Data?.length ?? 0;
  if (!spec.Driver?.Name && size === 0) p.add('Data', 'secret data must be provided');
  if (size >= 500 * 1024) p.add('Data', `secret data must be smaller than 500 KiB (got ${size} bytes)`);
  return p.list;
}

/** Everything wrong in a config spec (max 1000 KiB of data). */
export function configSpecProblems(spec: ConfigSpec): SpecProblem[] {
  const p = new Problems();
  const nameProblem = objectNameProblem(spec.Name);
  if (nameProblem) p.add('Name', nameProblem);
  const size = spec.Data?.length ?? 0;
  if (size >= 1000 * 1024) p.add('Data', `config data must be smaller than 1000 KiB (got ${size} bytes)`);
  return p.list;
}

/** Throws InvalidArgumentError listing every problem (`what` names the object). */
export function assertNoProblems(what: string, problems: readonly SpecProblem[]): void {
  if (problems.length === 0) return;
  const text = problems.map((x) => `${x.path}: ${x.message}`).join('; ');
  throw new InvalidArgumentError(`invalid ${what}: ${text}`);
}
