/**
 * The structured values of docker's service flags: `--mount`, `--secret`, `--config` and
 * `--publish` (comma-separated key=value fields, with CSV quoting), `--ulimit`, `--cap-add` /
 * `--cap-drop`, `--env` / `--env-file`, labels and `--placement-pref`. Each parser returns the
 * API object docker's CLI would build, or throws one line naming the flag and the value.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  parseConstraint,
  type ConfigReference,
  type Mount,
  type NetworkAttachmentConfig,
  type PlacementPreference,
  type PortConfig,
  type SecretReference,
  type Ulimit,
} from '@shoal/api';
import { InvalidArgumentError, errnoCode } from '@shoal/common';
import { flagError, parseRamInBytes } from './units.js';

/** One CSV record as Go's encoding/csv reads it: fields split on commas, `"..."` quoting with `""`. */
export function splitCsv(flag: string, value: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= value.length) throw flagError(flag, value, 'extraneous or missing " in quoted-field');
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += value[i];
        i++;
      }
      if (i < value.length && value[i] !== ',') throw flagError(flag, value, 'extraneous or missing " in quoted-field');
    } else {
      const end = value.indexOf(',', i);
      field = value.slice(i, end < 0 ? value.length : end);
      if (field.includes('"')) throw flagError(flag, value, 'bare " in non-quoted-field');
      i = end < 0 ? value.length : end;
    }
    fields.push(field);
    if (i >= value.length) return fields;
    i++; // the comma
  }
}

/** `k=v` or `k` into a map, later keys winning (docker's ConvertKVStringsToMap). */
export function kvMap(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq < 0) out[v] = '';
    else out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** `--label` / `--container-label`: `key[=value]`, the key not empty. */
export function parseLabel(flag: string, v: string): string {
  const key = (v.split('=')[0] ?? '').trimStart();
  if (key === '') throw flagError(flag, v, `invalid label '${v}': empty name`);
  return v;
}

/** `--env KEY=value`, or `--env KEY` taking KEY's value here when set (docker's ValidateEnv). */
export function parseEnvFlag(flag: string, v: string, env: NodeJS.ProcessEnv = process.env): string {
  const eq = v.indexOf('=');
  const key = eq < 0 ? v : v.slice(0, eq);
  if (key === '') throw flagError(flag, v, `invalid environment variable: ${v}`);
  if (eq >= 0) return v;
  const value = env[key];
  return value === undefined ? v : `${key}=${value}`;
}

/**
 * An `--env-file`: one `KEY=value` per line; blank lines and `#` comments skipped; a bare `KEY`
 * takes KEY's value here, or is dropped when unset (docker's ParseEnvFile).
 */
export function readEnvFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  read: (p: string) => Buffer = readFileSync,
): string[] {
  let data: Buffer;
  try {
    data = read(path);
  } catch (err) {
    const code = errnoCode(err);
    throw flagError('--env-file', path, code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? 'error'})`);
  }
  const text = data.toString('utf8');
  if (Buffer.from(text, 'utf8').compare(data) !== 0) throw flagError('--env-file', path, 'the file is not valid UTF-8');
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trimStart();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '') throw flagError('--env-file', path, `no variable name on line ${i + 1} '${raw}'`);
    if (/\s/.test(key)) throw flagError('--env-file', path, `variable '${key}' contains whitespaces (line ${i + 1})`);
    if (eq >= 0) out.push(`${key}=${line.slice(eq + 1)}`);
    else if (env[key] !== undefined) out.push(`${key}=${env[key]}`);
  });
  return out;
}

/**
 * Env files then `--env` entries, in order, one entry per variable: a later value of a variable
 * replaces the earlier one and moves to the end (docker's makeEnv).
 */
export function mergeEnv(entries: readonly string[]): string[] {
  let out: string[] = [];
  for (const e of entries) {
    if (out.includes(e)) continue;
    const key = e.split('=')[0] ?? '';
    out = out.filter((c) => !c.startsWith(`${key}=`) && c !== key);
    out.push(e);
  }
  return out;
}

/** `--placement-pref spread=node.labels.zone`. */
export function parsePlacementPref(flag: string, v: string): PlacementPreference {
  const fields = v.split('=');
  if (fields.length !== 2) throw flagError(flag, v, 'placement preference must be of the format "<strategy>=<arg>"');
  if (fields[0] !== 'spread')
    throw flagError(flag, v, `unsupported placement preference ${fields[0] ?? ''} (only spread is supported)`);
  if (!fields[1]) throw flagError(flag, v, 'the spread descriptor is empty (e.g. spread=node.labels.zone)');
  return { Spread: { SpreadDescriptor: fields[1] } };
}

/** `--constraint node.role==worker`: checked here (the daemon checks it too), kept as given. */
export function checkConstraint(flag: string, v: string): string {
  try {
    parseConstraint(v);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    throw flagError(flag, v, err.message.replace(/^invalid constraint "[^"]*": /, ''));
  }
  return v;
}

function boolField(flag: string, value: string, key: string, val: string | undefined): boolean {
  if (val === undefined || val === '1' || val === 'true') return true;
  if (val === '0' || val === 'false') return false;
  throw flagError(
    flag,
    value,
    `invalid value for '${key}': invalid boolean value (${JSON.stringify(val)}): must be one of "true", "1", "false", or "0" (default "true")`,
  );
}

/** Go's ParseUint with base 0: `0o755`, `0755` (octal), `0x1ed`, or decimal. */
function parseUintBase0(s: string): number | undefined {
  let n: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) n = parseInt(s.slice(2), 16);
  else if (/^0[oO][0-7]+$/.test(s)) n = parseInt(s.slice(2), 8);
  else if (/^0[bB][01]+$/.test(s)) n = parseInt(s.slice(2), 2);
  else if (/^0[0-7]+$/.test(s)) n = parseInt(s, 8);
  else if (/^\d+$/.test(s)) n = Number(s);
  else return undefined;
  return n <= 0xffffffff ? n : undefined;
}

/**
 * `--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,volume-label=k=v]...`
 * (docker's MountOpt): the type defaults to volume; options of one type may not go with another.
 */
export function parseMount(v: string, cwd: string = process.cwd()): Mount {
  const flag = '--mount';
  const value = v.trim();
  if (value === '') throw flagError(flag, v, 'value is empty');
  const m: Mount = { Type: 'volume' };
  const bind = (): NonNullable<Mount['BindOptions']> => (m.BindOptions ??= {});
  const vol = (): NonNullable<Mount['VolumeOptions']> => (m.VolumeOptions ??= {});
  const tmpfs = (): NonNullable<Mount['TmpfsOptions']> => (m.TmpfsOptions ??= {});
  for (const field of splitCsv(flag, value)) {
    const eq = field.indexOf('=');
    const rawKey = eq < 0 ? field : field.slice(0, eq);
    const val = eq < 0 ? undefined : field.slice(eq + 1);
    if (rawKey.trim() !== rawKey)
      throw flagError(flag, v, `invalid option '${rawKey.trim()}' in '${field}': option should not have whitespace`);
    if (val !== undefined) {
      if (val.trim() === '') throw flagError(flag, v, `invalid value for '${rawKey}': value is empty`);
      if (val.trim() !== val)
        throw flagError(flag, v, `invalid value for '${rawKey}' in '${field}': value should not have whitespace`);
    }
    const key = rawKey.toLowerCase();
    if (val === undefined && !['readonly', 'ro', 'volume-nocopy', 'bind-create-src'].includes(key))
      throw flagError(flag, v, `invalid field '${field}' must be a key=value pair`);
    const need = (): string => val ?? '';
    switch (key) {
      case 'type':
        m.Type = need().toLowerCase();
        break;
      case 'source':
      case 'src':
        m.Source = need().startsWith('.') ? resolve(cwd, need()) : need();
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.Target = need();
        break;
      case 'readonly':
      case 'ro':
        m.ReadOnly = boolField(flag, v, key, val);
        break;
      case 'consistency':
        m.Consistency = need().toLowerCase();
        break;
      case 'bind-propagation':
        bind().Propagation = need().toLowerCase();
        break;
      case 'bind-recursive':
        if (val === 'disabled') bind().NonRecursive = true;
        else if (val === 'writable') bind().ReadOnlyNonRecursive = true;
        else if (val === 'readonly') bind().ReadOnlyForceRecursive = true;
        else if (val === 'enabled') bind();
        else
          throw flagError(
            flag,
            v,
            `invalid value for ${key}: ${need()} (must be "enabled", "disabled", "writable", or "readonly")`,
          );
        break;
      case 'bind-create-src':
        bind().CreateMountpoint = boolField(flag, v, key, val);
        break;
      case 'volume-subpath':
        vol().Subpath = need();
        break;
      case 'volume-nocopy':
        vol().NoCopy = boolField(flag, v, key, val);
        break;
      case 'volume-label': {
        const o = vol();
        o.Labels = { ...o.Labels, ...kvMap([need()]) };
        break;
      }
      case 'volume-driver': {
        const o = vol();
        o.DriverConfig = { ...o.DriverConfig, Name: need() };
        break;
      }
      case 'volume-opt': {
        const o = vol();
        o.DriverConfig = { ...o.DriverConfig, Options: { ...o.DriverConfig?.Options, ...kvMap([need()]) } };
        break;
      }
      case 'tmpfs-size':
        try {
          tmpfs().SizeBytes = parseRamInBytes(flag, need());
        } catch (err) {
          if (!(err instanceof InvalidArgumentError)) throw err;
          throw flagError(flag, v, `invalid value for ${key}: ${need()}`);
        }
        break;
      case 'tmpfs-mode': {
        const mode = /^[0-7]+$/.test(need()) ? parseInt(need(), 8) : NaN;
        if (!Number.isInteger(mode) || mode > 0xffffffff)
          throw flagError(flag, v, `invalid value for ${key}: ${need()}`);
        tmpfs().Mode = mode;
        break;
      }
      default:
        throw flagError(flag, v, `unknown option '${key}' in '${field}'`);
    }
  }
  const type = m.Type ?? '';
  if (!['bind', 'volume', 'tmpfs'].includes(type))
    throw flagError(flag, v, `invalid mount type '${type}': expected bind, volume or tmpfs`);
  for (const [opts, t] of [
    [m.BindOptions, 'bind'],
    [m.VolumeOptions, 'volume'],
    [m.TmpfsOptions, 'tmpfs'],
  ] as const)
    if (opts !== undefined && type !== t)
      throw flagError(flag, v, `cannot mix '${t}-*' options with mount type '${type}'`);
  if (m.BindOptions?.ReadOnlyNonRecursive && !m.ReadOnly)
    throw flagError(flag, v, "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction");
  if (m.BindOptions?.ReadOnlyForceRecursive) {
    if (!m.ReadOnly)
      throw flagError(flag, v, "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction");
    if (m.BindOptions.Propagation !== 'rprivate')
      throw flagError(
        flag,
        v,
        "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction",
      );
  }
  if (!m.Target) throw flagError(flag, v, 'target is required');
  if (!m.Target.startsWith('/')) throw flagError(flag, v, `target '${m.Target}' must be an absolute path`);
  if (type === 'bind' && !m.Source) throw flagError(flag, v, 'a bind mount needs source=/path/on/the/node');
  if (type === 'bind' && !(m.Source ?? '').startsWith('/'))
    throw flagError(flag, v, `bind source '${m.Source ?? ''}' must be an absolute path`);
  if (type === 'tmpfs' && m.Source) throw flagError(flag, v, 'a tmpfs mount takes no source');
  return m;
}

/** A `--secret` / `--config` reference: `NAME` or `source=NAME[,target=T][,uid=U][,gid=G][,mode=M]`. */
function parseFileRef(
  flag: string,
  v: string,
): { name: string; file: { Name: string; UID: string; GID: string; Mode: number } } {
  const fields = splitCsv(flag, v);
  const file = { Name: '', UID: '0', GID: '0', Mode: 0o444 };
  if (fields.length === 1 && !(fields[0] ?? '').includes('=')) {
    const name = fields[0] ?? '';
    if (name === '') throw flagError(flag, v, 'source is required');
    return { name, file: { ...file, Name: name } };
  }
  let name = '';
  const what = flag === '--config' || flag.startsWith('--config') ? 'config' : 'secret';
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw flagError(flag, v, `invalid field '${field}' must be a key=value pair`);
    const key = field.slice(0, eq).toLowerCase();
    const val = field.slice(eq + 1);
    switch (key) {
      case 'source':
      case 'src':
        name = val;
        break;
      case 'target':
        file.Name = val;
        break;
      case 'uid':
        if (!/^\d+$/.test(val)) throw flagError(flag, v, `invalid uid '${val}': expected a number`);
        file.UID = val;
        break;
      case 'gid':
        if (!/^\d+$/.test(val)) throw flagError(flag, v, `invalid gid '${val}': expected a number`);
        file.GID = val;
        break;
      case 'mode': {
        const mode = parseUintBase0(val);
        if (mode === undefined) throw flagError(flag, v, `invalid mode specified: '${val}'`);
        file.Mode = mode;
        break;
      }
      default:
        throw flagError(flag, v, `invalid field in ${what} request: ${key}`);
    }
  }
  if (name === '') throw flagError(flag, v, 'source is required');
  if (file.Name === '') file.Name = name;
  return { name, file };
}

/** `--secret`: a SecretReference by name (the ID is filled in from the daemon before sending). */
export function parseSecretRef(flag: string, v: string): SecretReference {
  const { name, file } = parseFileRef(flag, v);
  return { File: file, SecretName: name };
}

/** `--config`: a ConfigReference by name. */
export function parseConfigRef(flag: string, v: string): ConfigReference {
  const { name, file } = parseFileRef(flag, v);
  return { File: file, ConfigName: name };
}

const PROTOCOLS = ['tcp', 'udp', 'sctp'];

function portNumber(flag: string, v: string, what: string, s: string): number {
  if (!/^\d+$/.test(s) || Number(s) > 65535)
    throw flagError(flag, v, `invalid ${what} port (${s}): value must be an integer from 0 to 65535`);
  return Number(s);
}

function portRange(flag: string, v: string, what: string, s: string): [number, number] {
  const [a = '', b] = s.split('-');
  const lo = portNumber(flag, v, what, a);
  const hi = b === undefined ? lo : portNumber(flag, v, what, b);
  if (hi < lo) throw flagError(flag, v, `invalid ${what} port range ${s}`);
  return [lo, hi];
}

/**
 * `--publish`: the long syntax `mode=host,published=8080,target=80,protocol=udp` or the short
 * `[PUBLISHED:]TARGET[/PROTOCOL]` with ranges (`8080-8081:80-81`). Defaults: tcp, ingress.
 */
export function parsePublish(flag: string, v: string): PortConfig[] {
  if (/\w+=\w+(,\w+=\w+)*/.test(v)) {
    const p: PortConfig = { Protocol: 'tcp', PublishMode: 'ingress' };
    for (const field of splitCsv(flag, v)) {
      const lower = field.toLowerCase();
      const eq = lower.indexOf('=');
      if (eq <= 0) throw flagError(flag, v, `invalid field: ${field}`);
      const key = lower.slice(0, eq);
      const val = lower.slice(eq + 1);
      if (key === 'protocol') {
        if (!PROTOCOLS.includes(val)) throw flagError(flag, v, `invalid protocol value '${val}'`);
        p.Protocol = val;
      } else if (key === 'mode') {
        if (val !== 'ingress' && val !== 'host')
          throw flagError(flag, v, `invalid publish mode value (${val}): must be either 'ingress' or 'host'`);
        p.PublishMode = val;
      } else if (key === 'target') p.TargetPort = portNumber(flag, v, 'target', val);
      else if (key === 'published') p.PublishedPort = portNumber(flag, v, 'published', val);
      else throw flagError(flag, v, `invalid field key: ${key}`);
    }
    if (!p.TargetPort) throw flagError(flag, v, "missing mandatory field 'target'");
    return [p];
  }
  const slash = v.lastIndexOf('/');
  const proto = slash < 0 ? 'tcp' : v.slice(slash + 1).toLowerCase();
  if (!PROTOCOLS.includes(proto)) throw flagError(flag, v, `invalid proto: ${proto}`);
  const parts = (slash < 0 ? v : v.slice(0, slash)).split(':');
  if (parts.length > 2) throw flagError(flag, v, 'hostip is not supported');
  const target = parts[parts.length - 1] ?? '';
  const published = parts.length === 2 ? (parts[0] ?? '') : '';
  if (target === '') throw flagError(flag, v, 'no port specified');
  const [tlo, thi] = portRange(flag, v, 'target', target);
  if (tlo === 0) throw flagError(flag, v, 'invalid target port (0)');
  const [plo, phi] = published === '' ? [0, 0] : portRange(flag, v, 'published', published);
  if (published !== '' && phi - plo !== thi - tlo && phi !== plo)
    throw flagError(flag, v, 'invalid ranges specified for container and host Ports');
  const out: PortConfig[] = [];
  for (let t = tlo; t <= thi; t++)
    out.push({
      Protocol: proto,
      TargetPort: t,
      PublishedPort: published === '' ? 0 : phi === plo ? plo : plo + (t - tlo),
      PublishMode: 'ingress',
    });
  return out;
}

const ULIMITS = [
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
];

/** `--ulimit nofile=1024[:2048]` (soft, then hard; one value sets both). */
export function parseUlimit(flag: string, v: string): Ulimit {
  const eq = v.indexOf('=');
  if (eq <= 0) throw flagError(flag, v, `invalid ulimit argument: ${v}`);
  const name = v.slice(0, eq);
  if (!ULIMITS.includes(name)) throw flagError(flag, v, `invalid ulimit type: ${name}`);
  const limits = v.slice(eq + 1).split(':');
  if (limits.length > 2 || limits.some((l) => !/^-?\d+$/.test(l)))
    throw flagError(flag, v, `too many limits or not numbers: ${v.slice(eq + 1)}`);
  const soft = Number(limits[0]);
  const hard = limits.length === 2 ? Number(limits[1]) : soft;
  if (soft > hard)
    throw flagError(flag, v, `ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: name, Hard: hard, Soft: soft };
}

/** Ulimits by name, later flags winning, sorted by name. */
export function ulimitList(values: readonly Ulimit[]): Ulimit[] {
  const byName = new Map(values.map((u) => [u.Name ?? '', u]));
  return [...byName.values()].sort((a, b) => (a.Name ?? '').localeCompare(b.Name ?? ''));
}

/** `NET_ADMIN`, `net_admin` and `CAP_NET_ADMIN` are one capability; ALL and RESET stay. */
export function normalizeCapability(c: string): string {
  const up = c.trim().toUpperCase();
  if (up === 'ALL' || up === 'RESET') return up;
  return up.startsWith('CAP_') ? up : `CAP_${up}`;
}

/**
 * The capabilities to add and drop, as docker's EffectiveCapAddCapDrop: normalized, ALL on one
 * side replaces the rest of that side, one both added and dropped is only added, RESET is
 * dropped, both lists sorted.
 */
export function effectiveCaps(add: readonly string[], drop: readonly string[]): { add: string[]; drop: string[] } {
  let a = new Set(add.map(normalizeCapability));
  let d = new Set(drop.map(normalizeCapability));
  if (a.has('ALL')) a = new Set(['ALL']);
  if (d.has('ALL')) d = new Set(['ALL']);
  const outDrop = [...d].filter((c) => !a.has(c) && c !== 'RESET').sort();
  const outAdd = [...a].filter((c) => c !== 'RESET').sort();
  return { add: outAdd, drop: outDrop };
}

/** `--sysctl key=value`. */
export function parseSysctl(flag: string, v: string): string {
  if (v.indexOf('=') <= 0) throw flagError(flag, v, 'expected key=value');
  return v;
}

/** Duplicate-target check of docker's ParseSecrets / ParseConfigs. */
export function checkDuplicateTargets(
  kind: 'secret' | 'config',
  refs: readonly (SecretReference | ConfigReference)[],
): void {
  const seen = new Set<string>();
  for (const r of refs) {
    const target = r.File?.Name ?? '';
    const name = 'SecretName' in r ? r.SecretName : (r as ConfigReference).ConfigName;
    if (seen.has(target))
      throw new InvalidArgumentError(
        `duplicate ${kind} target for ${name ?? target} not allowed (--${kind} target=${target})`,
      );
    seen.add(target);
  }
}

/**
 * `--network NAME` or `--network name=NAME,alias=A[,alias=B][,driver-opt=K=V]` (docker's
 * NetworkOpt): the attachment the manager resolves to the network's ID.
 */
export function parseNetworkAttachment(flag: string, v: string): NetworkAttachmentConfig {
  if (!v.includes('=')) {
    if (v.trim() === '') throw flagError(flag, v, 'empty network name');
    return { Target: v };
  }
  const out: NetworkAttachmentConfig = { Target: '' };
  for (const field of splitCsv(flag, v)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) throw flagError(flag, v, `invalid field '${field}' must be a key=value pair`);
    switch (key) {
      case 'name':
      case 'target':
        out.Target = value;
        break;
      case 'alias':
        out.Aliases = [...(out.Aliases ?? []), value];
        break;
      case 'driver-opt': {
        const e = value.indexOf('=');
        if (e <= 0) throw flagError(flag, v, `invalid driver-opt '${value}': expected KEY=VALUE`);
        out.DriverOpts = { ...out.DriverOpts, [value.slice(0, e)]: value.slice(e + 1) };
        break;
      }
      default:
        throw flagError(flag, v, `invalid field key '${key}'`);
    }
  }
  if (out.Target === '') throw flagError(flag, v, 'network name is missing (name=NAME)');
  return out;
}
