import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { parseEnvFile } from './envfile.js';
import type { Diagnostics, Warning } from './errors.js';
import { dotted, type KeyPath } from './positions.js';
import { goNumberString } from './scalars.js';
import type { Lookup } from './template.js';
import type {
  ComposeConfig,
  DeployConfig,
  External,
  FileObjectConfig,
  FileReference,
  HealthCheckConfig,
  KeptServiceFields,
  NetworkConfig,
  PortConfig,
  ResourceSpec,
  ServiceConfig,
  ServiceNetworkConfig,
  ServiceVolumeConfig,
  UlimitConfig,
  UpdateConfig,
  VolumeConfig,
} from './types.js';
import { PortSpecError, float32, parseDuration, parsePortSpec, parseRAMInBytes, shlexSplit } from './units.js';
import { isDict, isFloat, type Dict, type ParsedFile, type Value } from './yaml.js';

/** What decoding one file needs besides the file. */
export interface DecodeContext {
  parsed: ParsedFile;
  version: string;
  /** Directory relative paths resolve against (the first file's directory). */
  workingDir: string;
  lookup: Lookup;
  diags: Diagnostics;
  warnings: Warning[];
  /** env_file contents already read while decoding this file (each is read once, not per service). */
  envFileCache?: Map<string, Buffer>;
}

/** Go's fmt.Sprint of a scalar taken from `container[key]`. */
function sprint(container: object, key: string | number, v: Value): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goNumberString(v, isFloat(container, key));
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null) return '<nil>';
  return JSON.stringify(v);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `map` or `list of "k<sep>v"` into a record; `allowNil` keeps valueless entries as null. */
function mappingOrList(v: Value | undefined, sep: string, allowNil: boolean): Map<string, string | null> {
  const out = new Map<string, string | null>();
  if (isDict(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (x === null) out.set(k, allowNil ? null : '');
      else out.set(k, sprint(v, k, x));
    }
  } else if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const s = sprint(v, i, item);
      const at = s.indexOf(sep);
      if (at < 0) out.set(s, allowNil ? null : '');
      else out.set(s.slice(0, at), s.slice(at + sep.length));
    });
  }
  return out;
}

function put(r: Record<string, string>, k: string, v: string): void {
  if (k === '__proto__')
    Object.defineProperty(r, k, { value: v, enumerable: true, writable: true, configurable: true });
  else r[k] = v;
}

function record(m: Map<string, string | null>): Record<string, string> {
  const r: Record<string, string> = {};
  for (const [k, v] of m) put(r, k, v ?? '');
  return r;
}

function stringMap(v: Value | undefined): Record<string, string> | undefined {
  if (!isDict(v)) return undefined;
  const r: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) put(r, k, x === null ? '' : sprint(v, k, x));
  return r;
}

function stringList(v: Value | undefined): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.map((x, i) => sprint(v, i, x));
  return undefined;
}

function str(v: Value | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: Value | undefined): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function bool(v: Value | undefined): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}

function extrasOf(d: Dict): Record<string, unknown> | undefined {
  const e: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(d)) {
    if (k.startsWith('x-')) {
      e[k] = v;
      any = true;
    }
  }
  return any ? e : undefined;
}

function external(v: Value | undefined): External {
  if (typeof v === 'boolean') return { external: v };
  if (isDict(v)) {
    const n = v['name'];
    return typeof n === 'string' ? { external: true, name: n } : { external: true };
  }
  return { external: false };
}

/** Docker's absPath: relative paths join the working directory. */
export function absPath(workingDir: string, p: string): string {
  return isAbsolute(p) ? p : join(workingDir, p);
}

/** Decodes the sections of one validated, interpolated file into a typed config. */
export function decodeFile(dict: Dict, ctx: DecodeContext): ComposeConfig {
  const section = (key: string): Dict => {
    const v = dict[key];
    return isDict(v) ? v : {};
  };
  const services: ServiceConfig[] = [];
  for (const [name, def] of Object.entries(section('services'))) {
    services.push(decodeService(name, isDict(def) ? def : {}, ['services', name], ctx));
  }
  services.sort((a, b) => compareStrings(a.name, b.name));
  const extras = extrasOf(dict);
  return {
    version: ctx.version,
    services,
    networks: decodeNetworks(section('networks'), ctx),
    volumes: decodeVolumes(section('volumes'), ctx),
    secrets: decodeFileObjects(section('secrets'), 'secret', ctx),
    configs: decodeFileObjects(section('configs'), 'config', ctx),
    ...(extras ? { extras } : {}),
  };
}

function err(ctx: DecodeContext, path: KeyPath, message: string): void {
  ctx.diags.add(ctx.parsed.positions.value(path), dotted(path), message);
}

function decodeShell(v: Value | undefined, path: KeyPath, ctx: DecodeContext): string[] | undefined {
  if (typeof v === 'string') {
    try {
      return shlexSplit(v);
    } catch (e) {
      err(ctx, path, `${dotted(path)}: ${(e as Error).message}`);
      return undefined;
    }
  }
  if (Array.isArray(v)) return v.map((x, i) => sprint(v, i, x));
  return undefined;
}

function duration(v: Value | undefined, path: KeyPath, ctx: DecodeContext): number | undefined {
  if (typeof v !== 'string') return undefined;
  const d = parseDuration(v);
  if (d === undefined) err(ctx, path, `${dotted(path)}: time: invalid duration ${JSON.stringify(v)}`);
  return d;
}

function decodeService(name: string, d: Dict, path: KeyPath, ctx: DecodeContext): ServiceConfig {
  const at = (...k: (string | number)[]) => [...path, ...k];
  const s: ServiceConfig = { name, environment: new Map(), deploy: decodeDeploy(d['deploy'], at('deploy'), ctx) };
  const setStr = (key: keyof ServiceConfig, yamlKey: string) => {
    const v = str(d[yamlKey]);
    if (v !== undefined) (s as unknown as Record<string, unknown>)[key] = v;
  };
  setStr('image', 'image');
  setStr('hostname', 'hostname');
  setStr('user', 'user');
  setStr('workingDir', 'working_dir');
  setStr('stopSignal', 'stop_signal');
  setStr('isolation', 'isolation');
  setStr('restart', 'restart');
  const command = decodeShell(d['command'], at('command'), ctx);
  if (command) s.command = command;
  const entrypoint = decodeShell(d['entrypoint'], at('entrypoint'), ctx);
  if (entrypoint) s.entrypoint = entrypoint;
  for (const [key, yamlKey] of [
    ['readOnly', 'read_only'],
    ['tty', 'tty'],
    ['stdinOpen', 'stdin_open'],
    ['init', 'init'],
  ] as const) {
    const b = bool(d[yamlKey]);
    if (b !== undefined) s[key] = b;
  }
  const oom = num(d['oom_score_adj']);
  if (oom !== undefined) s.oomScoreAdj = oom;
  const sgp = duration(d['stop_grace_period'], at('stop_grace_period'), ctx);
  if (sgp !== undefined) s.stopGracePeriod = sgp;
  if (d['labels'] !== undefined) s.labels = record(mappingOrList(d['labels'], '=', false));
  if (d['sysctls'] !== undefined) s.sysctls = record(mappingOrList(d['sysctls'], '=', false));
  const envFile = stringList(d['env_file']);
  if (envFile) s.envFile = envFile;
  s.environment = resolveEnvironment(envFile, d['environment'], at('env_file'), Array.isArray(d['env_file']), ctx);
  for (const [key, yamlKey] of [
    ['dns', 'dns'],
    ['dnsSearch', 'dns_search'],
  ] as const) {
    const l = stringList(d[yamlKey]);
    if (l) s[key] = l;
  }
  for (const [key, yamlKey] of [
    ['capAdd', 'cap_add'],
    ['capDrop', 'cap_drop'],
  ] as const) {
    const l = stringList(d[yamlKey]);
    if (l) s[key] = l;
  }
  if (d['extra_hosts'] !== undefined) s.extraHosts = hostsList(d['extra_hosts']);
  if (d['ports'] !== undefined) s.ports = decodePorts(d['ports'], at('ports'), ctx);
  if (d['networks'] !== undefined && d['networks'] !== null) s.networks = decodeServiceNetworks(d['networks']);
  if (Array.isArray(d['volumes'])) s.volumes = decodeServiceVolumes(d['volumes'], at('volumes'), ctx);
  if (Array.isArray(d['secrets'])) s.secrets = decodeRefs(d['secrets']);
  if (Array.isArray(d['configs'])) s.configs = decodeRefs(d['configs']);
  if (isDict(d['healthcheck'])) s.healthcheck = decodeHealthcheck(d['healthcheck'], at('healthcheck'), ctx);
  if (isDict(d['logging'])) {
    const l = d['logging'];
    const driver = str(l['driver']);
    const options = stringMap(l['options']);
    s.logging = { ...(driver !== undefined ? { driver } : {}), ...(options ? { options } : {}) };
  }
  if (isDict(d['ulimits'])) {
    const u = new Map<string, UlimitConfig>();
    for (const [k, v] of Object.entries(d['ulimits'])) {
      if (typeof v === 'number') u.set(k, { single: v });
      else if (isDict(v)) u.set(k, { soft: num(v['soft']) ?? 0, hard: num(v['hard']) ?? 0 });
    }
    s.ulimits = u;
  }
  if (isDict(d['credential_spec'])) {
    const c = d['credential_spec'];
    s.credentialSpec = {};
    for (const k of ['config', 'file', 'registry'] as const) {
      const v = str(c[k]);
      if (v !== undefined) s.credentialSpec[k] = v;
    }
  }
  // Bind-mount sources: `~` expanded from HOME, relative paths joined with the working dir.
  for (const [i, v] of (s.volumes ?? []).entries()) {
    if (v.type !== 'bind') continue;
    if (!v.source) {
      err(ctx, at('volumes', i), 'invalid mount config for type "bind": field Source must not be empty');
      continue;
    }
    let src = v.source;
    if (src.startsWith('~')) {
      const home = ctx.lookup('HOME');
      if (home === undefined)
        ctx.warnings.push({
          message: "cannot expand '~', because the environment lacks HOME",
          pos: ctx.parsed.positions.value(at('volumes', i)),
        });
      else src = home + src.slice(1);
    }
    if (!src.startsWith('/') && !isWindowsAbs(src)) src = absPath(ctx.workingDir, src);
    v.source = src;
  }
  const kept = decodeKept(d);
  if (kept) s.kept = kept;
  const extras = extrasOf(d);
  if (extras) s.extras = extras;
  return s;
}

/** The keys `stack deploy` ignores but `stack config` prints (KeptServiceFields). */
function decodeKept(d: Dict): KeptServiceFields | undefined {
  const k: KeptServiceFields = {};
  let any = false;
  for (const [key, yamlKey] of [
    ['cgroupnsMode', 'cgroupns_mode'],
    ['cgroupParent', 'cgroup_parent'],
    ['containerName', 'container_name'],
    ['domainname', 'domainname'],
    ['ipc', 'ipc'],
    ['macAddress', 'mac_address'],
    ['networkMode', 'network_mode'],
    ['pid', 'pid'],
    ['usernsMode', 'userns_mode'],
  ] as const) {
    const v = str(d[yamlKey]);
    if (v !== undefined) {
      k[key] = v;
      any = true;
    }
  }
  const shm = d['shm_size'];
  if (shm !== undefined && shm !== null) {
    k.shmSize = sprint(d, 'shm_size', shm);
    any = true;
  }
  for (const [key, yamlKey] of [
    ['dependsOn', 'depends_on'],
    ['devices', 'devices'],
    ['expose', 'expose'],
    ['externalLinks', 'external_links'],
    ['links', 'links'],
    ['securityOpt', 'security_opt'],
    ['tmpfs', 'tmpfs'],
  ] as const) {
    const l = stringList(d[yamlKey]);
    if (l) {
      k[key] = l;
      any = true;
    }
  }
  const privileged = bool(d['privileged']);
  if (privileged !== undefined) {
    k.privileged = privileged;
    any = true;
  }
  const b = d['build'];
  if (typeof b === 'string') {
    k.build = { context: b };
    any = true;
  } else if (isDict(b)) {
    const build: NonNullable<KeptServiceFields['build']> = {};
    for (const key of ['context', 'dockerfile', 'network', 'target'] as const) {
      const v = str(b[key]);
      if (v !== undefined) build[key] = v;
    }
    if (b['args'] !== undefined) build.args = mappingOrList(b['args'], '=', true);
    if (b['labels'] !== undefined) build.labels = record(mappingOrList(b['labels'], '=', false));
    const cacheFrom = stringList(b['cache_from']);
    if (cacheFrom) build.cacheFrom = cacheFrom;
    if (b['extra_hosts'] !== undefined) build.extraHosts = hostsList(b['extra_hosts']);
    k.build = build;
    any = true;
  }
  return any ? k : undefined;
}

function isWindowsAbs(p: string): boolean {
  return /^[a-zA-Z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

/** env_file entries first (in order), then `environment` on top; empty or null values fall back to the CLI environment. */
function resolveEnvironment(
  envFiles: string[] | undefined,
  environment: Value | undefined,
  envFilePath: KeyPath,
  listForm: boolean,
  ctx: DecodeContext,
): Map<string, string | null> {
  const env = new Map<string, string | null>();
  const apply = (vars: Map<string, string | null>) => {
    for (const [k, v] of vars) {
      const fromShell = ctx.lookup(k);
      if ((v === null || v === '') && fromShell !== undefined) env.set(k, fromShell);
      else env.set(k, v);
    }
  };
  if (envFiles && envFiles.length > 0) {
    const lines: string[] = [];
    envFiles.forEach((f, i) => {
      const file = absPath(ctx.workingDir, f);
      const p = listForm ? [...envFilePath, i] : envFilePath;
      try {
        const cache = (ctx.envFileCache ??= new Map<string, Buffer>());
        let content = cache.get(file);
        if (!content) cache.set(file, (content = readFileSync(file)));
        lines.push(...parseEnvFile(content, ctx.lookup));
      } catch (e) {
        const code = errnoCode(e);
        const pos = ctx.parsed.positions.value(p);
        if (code === 'ENOENT') ctx.diags.add(pos, dotted(envFilePath), `open ${file}: no such file or directory`);
        else if (code !== undefined) ctx.diags.add(pos, dotted(envFilePath), `open ${file}: ${(e as Error).message}`);
        else ctx.diags.add(pos, dotted(envFilePath), `invalid env file (${file}): ${(e as Error).message}`);
      }
    });
    const vars = new Map<string, string | null>();
    for (const l of lines) {
      const eq = l.indexOf('=');
      vars.set(eq < 0 ? l : l.slice(0, eq), eq < 0 ? null : l.slice(eq + 1));
    }
    apply(vars);
  }
  if (environment !== undefined) apply(mappingOrList(environment, '=', true));
  return env;
}

/** extra_hosts as `host:ip` strings (Docker 28 accepts `host=ip`, `host:ip` and a mapping; `[::1]` loses its brackets). */
function hostsList(v: Value): string[] {
  let entries: string[] = [];
  if (isDict(v)) {
    for (const [k, x] of Object.entries(v)) if (x !== null) entries.push(`${k}:${sprint(v, k, x)}`);
    entries.sort(compareStrings);
  } else if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const s = sprint(v, i, item);
      for (const sep of ['=', ':']) {
        const at = s.indexOf(sep);
        if (at >= 0) {
          entries.push(`${s.slice(0, at)}:${s.slice(at + 1)}`);
          break;
        }
      }
    });
  }
  entries = entries.map((hip) => {
    const at = hip.indexOf(':');
    const host = at < 0 ? hip : hip.slice(0, at);
    let ip = at < 0 ? '' : hip.slice(at + 1);
    if (ip.length > 2 && ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    return `${host}:${ip}`;
  });
  return entries;
}

function decodePorts(v: Value, path: KeyPath, ctx: DecodeContext): PortConfig[] {
  const out: PortConfig[] = [];
  if (!Array.isArray(v)) return out;
  v.forEach((item, i) => {
    if (typeof item === 'number' || typeof item === 'string') {
      const spec = typeof item === 'number' ? sprint(v, i, item) : item;
      try {
        for (const p of parsePortSpec(spec)) {
          if (p.hostIP !== '' && p.hostIP !== '0.0.0.0')
            ctx.warnings.push({
              message: `ignoring IP-address (${spec.includes('/') ? spec : `${spec}/${p.protocol}`}) service will listen on '0.0.0.0'`,
              pos: ctx.parsed.positions.value([...path, i]),
            });
          out.push({ mode: p.mode, target: p.target, published: p.published, protocol: p.protocol });
        }
      } catch (e) {
        if (!(e instanceof PortSpecError)) throw e;
        err(ctx, [...path, i], `${dotted([...path, i])}: ${e.message}`);
      }
    } else if (isDict(item)) {
      const p: PortConfig = {};
      const mode = str(item['mode']);
      if (mode !== undefined) p.mode = mode;
      const target = num(item['target']);
      if (target !== undefined) p.target = target;
      const published = num(item['published']);
      if (published !== undefined) p.published = published;
      const protocol = str(item['protocol']);
      if (protocol !== undefined) p.protocol = protocol;
      out.push(p);
    }
  });
  return out;
}

function decodeServiceNetworks(v: Value): Map<string, ServiceNetworkConfig | null> {
  const out = new Map<string, ServiceNetworkConfig | null>();
  if (Array.isArray(v)) {
    v.forEach((n, i) => out.set(sprint(v, i, n), null));
    return out;
  }
  if (isDict(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (!isDict(x)) {
        out.set(k, null);
        continue;
      }
      const c: ServiceNetworkConfig = {};
      const aliases = stringList(x['aliases']);
      if (aliases) c.aliases = aliases;
      const v4 = str(x['ipv4_address']);
      if (v4 !== undefined) c.ipv4Address = v4;
      const v6 = str(x['ipv6_address']);
      if (v6 !== undefined) c.ipv6Address = v6;
      const opts = stringMap(x['driver_opts']);
      if (opts) c.driverOpts = opts;
      out.set(k, c);
    }
  }
  return out;
}

/** Docker's short volume syntax parser (volumespec.Parse). */
export function parseVolumeSpec(spec: string): ServiceVolumeConfig {
  const vol: ServiceVolumeConfig = { type: 'volume' };
  if (spec.length === 0) throw new Error('invalid empty volume spec');
  const chars = [...spec];
  if (chars.length <= 2) {
    vol.target = spec;
    return vol;
  }
  const isDrive = (buf: string[], c: string) => c === ':' && buf.length === 1 && /^\p{L}$/u.test(buf[0] ?? '');
  let buf: string[] = [];
  const END = '\u0000';
  let stage = 0; // 0: source, 1: target, 2: options
  const fields: { source?: string; target?: string } = {};
  const populate = (c: string) => {
    const s = buf.join('');
    if (buf.length === 0) throw new Error('empty section between colons');
    if (fields.source === undefined && c === END) {
      fields.target = s;
      return;
    }
    if (fields.source === undefined) {
      fields.source = s;
      stage = 1;
      return;
    }
    if (fields.target === undefined) {
      fields.target = s;
      stage = 2;
      return;
    }
    if (c === ':') throw new Error('too many colons');
    for (const opt of s.split(',')) {
      if (opt === 'ro') vol.readOnly = true;
      else if (opt === 'rw') vol.readOnly = false;
      else if (opt === 'nocopy') vol.volume = { nocopy: true };
      else if (['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'].includes(opt))
        vol.bind = { propagation: opt };
    }
  };
  void stage;
  try {
    for (const c of [...chars, END]) {
      if (isDrive(buf, c)) buf.push(c);
      else if (c === ':' || c === END) {
        populate(c);
        buf = [];
      } else buf.push(c);
    }
  } catch (e) {
    throw new Error(`invalid spec: ${spec}: ${(e as Error).message}`, { cause: e });
  }
  if (fields.source !== undefined) vol.source = fields.source;
  if (fields.target !== undefined) vol.target = fields.target;
  vol.type = !vol.source ? 'volume' : isFilePath(vol.source) ? 'bind' : 'volume';
  return vol;
}

function isFilePath(source: string): boolean {
  const c = source[0];
  if (c === '.' || c === '/' || c === '~') return true;
  const runes = [...source];
  if (runes.length === 1) return false;
  if (source.startsWith('\\\\')) return true;
  return /^\p{L}$/u.test(runes[0] ?? '') && runes[1] === ':';
}

function decodeServiceVolumes(v: Value[], path: KeyPath, ctx: DecodeContext): ServiceVolumeConfig[] {
  const out: ServiceVolumeConfig[] = [];
  v.forEach((item, i) => {
    if (typeof item === 'string') {
      try {
        out.push(parseVolumeSpec(item));
      } catch (e) {
        err(ctx, [...path, i], `${dotted([...path, i])}: ${(e as Error).message}`);
      }
      return;
    }
    if (!isDict(item)) return;
    const vol: ServiceVolumeConfig = { type: str(item['type']) ?? '' };
    const source = str(item['source']);
    if (source !== undefined) vol.source = source;
    const target = str(item['target']);
    if (target !== undefined) vol.target = target;
    const ro = bool(item['read_only']);
    if (ro !== undefined) vol.readOnly = ro;
    const consistency = str(item['consistency']);
    if (consistency !== undefined) vol.consistency = consistency;
    const b = item['bind'];
    if (isDict(b)) {
      const propagation = str(b['propagation']);
      vol.bind = propagation !== undefined ? { propagation } : {};
    }
    const vv = item['volume'];
    if (isDict(vv)) {
      vol.volume = {};
      const nocopy = bool(vv['nocopy']);
      if (nocopy !== undefined) vol.volume.nocopy = nocopy;
      const subpath = str(vv['subpath']);
      if (subpath !== undefined) vol.volume.subpath = subpath;
    }
    const t = item['tmpfs'];
    if (isDict(t)) {
      vol.tmpfs = {};
      const size = t['size'];
      if (typeof size === 'number') vol.tmpfs.size = size;
      else if (typeof size === 'string') {
        const n = parseRAMInBytes(size);
        if (n === undefined) err(ctx, [...path, i, 'tmpfs', 'size'], `invalid size: '${size}'`);
        else vol.tmpfs.size = n;
      }
    }
    out.push(vol);
  });
  return out;
}

function decodeRefs(v: Value[]): FileReference[] {
  const out: FileReference[] = [];
  for (const item of v) {
    if (typeof item === 'string') out.push({ source: item });
    else if (isDict(item)) {
      const r: FileReference = { source: str(item['source']) ?? '' };
      const target = str(item['target']);
      if (target !== undefined) r.target = target;
      const uid = str(item['uid']);
      if (uid !== undefined) r.uid = uid;
      const gid = str(item['gid']);
      if (gid !== undefined) r.gid = gid;
      const mode = num(item['mode']);
      if (mode !== undefined) r.mode = mode;
      out.push(r);
    }
  }
  return out;
}

function decodeHealthcheck(h: Dict, path: KeyPath, ctx: DecodeContext): HealthCheckConfig {
  const c: HealthCheckConfig = {};
  const test = h['test'];
  if (typeof test === 'string') c.test = ['CMD-SHELL', test];
  else if (Array.isArray(test)) c.test = test.map((x, i) => sprint(test, i, x));
  for (const [key, yamlKey] of [
    ['timeout', 'timeout'],
    ['interval', 'interval'],
    ['startPeriod', 'start_period'],
    ['startInterval', 'start_interval'],
  ] as const) {
    const d = duration(h[yamlKey], [...path, yamlKey], ctx);
    if (d !== undefined) c[key] = d;
  }
  const retries = num(h['retries']);
  if (retries !== undefined) c.retries = retries;
  const disable = bool(h['disable']);
  if (disable !== undefined) c.disable = disable;
  return c;
}

function decodeUpdate(v: Value | undefined, path: KeyPath, ctx: DecodeContext): UpdateConfig | undefined {
  if (!isDict(v)) return undefined;
  const u: UpdateConfig = {};
  const p = num(v['parallelism']);
  if (p !== undefined) u.parallelism = p;
  const delay = duration(v['delay'], [...path, 'delay'], ctx);
  if (delay !== undefined) u.delay = delay;
  const fa = str(v['failure_action']);
  if (fa !== undefined) u.failureAction = fa;
  const monitor = duration(v['monitor'], [...path, 'monitor'], ctx);
  if (monitor !== undefined) u.monitor = monitor;
  const mfr = num(v['max_failure_ratio']);
  if (mfr !== undefined) u.maxFailureRatio = float32(mfr);
  const order = str(v['order']);
  if (order !== undefined) u.order = order;
  return u;
}

function decodeResource(v: Value | undefined, path: KeyPath, ctx: DecodeContext): ResourceSpec | undefined {
  if (!isDict(v)) return undefined;
  const r: ResourceSpec = {};
  const cpus = v['cpus'];
  if (cpus !== undefined && cpus !== null) r.cpus = sprint(v, 'cpus', cpus);
  const memory = v['memory'];
  if (typeof memory === 'string') {
    const n = parseRAMInBytes(memory);
    if (n === undefined) err(ctx, [...path, 'memory'], `${dotted([...path, 'memory'])}: invalid size: '${memory}'`);
    else r.memory = n;
  } else if (typeof memory === 'number') r.memory = Math.trunc(memory);
  const pids = num(v['pids']);
  if (pids !== undefined) r.pids = pids;
  const gr = v['generic_resources'];
  if (Array.isArray(gr)) {
    r.genericResources = gr.map((g) => {
      const d = isDict(g) ? g['discrete_resource_spec'] : undefined;
      if (!isDict(d)) return {};
      const spec: { kind?: string; value?: number } = {};
      const kind = str(d['kind']);
      if (kind !== undefined) spec.kind = kind;
      const value = num(d['value']);
      if (value !== undefined) spec.value = value;
      return { discreteResourceSpec: spec };
    });
  }
  return r;
}

function decodeDeploy(v: Value | undefined, path: KeyPath, ctx: DecodeContext): DeployConfig {
  const d: DeployConfig = { resources: {}, placement: {} };
  if (!isDict(v)) return d;
  const mode = str(v['mode']);
  if (mode !== undefined) d.mode = mode;
  const replicas = num(v['replicas']);
  if (replicas !== undefined) d.replicas = replicas;
  if (v['labels'] !== undefined) d.labels = record(mappingOrList(v['labels'], '=', false));
  const uc = decodeUpdate(v['update_config'], [...path, 'update_config'], ctx);
  if (uc) d.updateConfig = uc;
  const rc = decodeUpdate(v['rollback_config'], [...path, 'rollback_config'], ctx);
  if (rc) d.rollbackConfig = rc;
  const res = v['resources'];
  if (isDict(res)) {
    const limits = decodeResource(res['limits'], [...path, 'resources', 'limits'], ctx);
    if (limits) d.resources.limits = limits;
    const reservations = decodeResource(res['reservations'], [...path, 'resources', 'reservations'], ctx);
    if (reservations) d.resources.reservations = reservations;
  }
  const rp = v['restart_policy'];
  if (isDict(rp)) {
    d.restartPolicy = {};
    const condition = str(rp['condition']);
    if (condition !== undefined) d.restartPolicy.condition = condition;
    const delay = duration(rp['delay'], [...path, 'restart_policy', 'delay'], ctx);
    if (delay !== undefined) d.restartPolicy.delay = delay;
    const ma = num(rp['max_attempts']);
    if (ma !== undefined) d.restartPolicy.maxAttempts = ma;
    const window = duration(rp['window'], [...path, 'restart_policy', 'window'], ctx);
    if (window !== undefined) d.restartPolicy.window = window;
  }
  const pl = v['placement'];
  if (isDict(pl)) {
    const constraints = stringList(pl['constraints']);
    if (constraints) d.placement.constraints = constraints;
    const prefs = pl['preferences'];
    if (Array.isArray(prefs))
      d.placement.preferences = prefs.map((p) => {
        const spread = isDict(p) ? str(p['spread']) : undefined;
        return spread !== undefined ? { spread } : {};
      });
    const max = num(pl['max_replicas_per_node']);
    if (max !== undefined) d.placement.maxReplicas = max;
  }
  const em = str(v['endpoint_mode']);
  if (em !== undefined) d.endpointMode = em;
  return d;
}

function decodeNetworks(section: Dict, ctx: DecodeContext): Map<string, NetworkConfig> {
  const out = new Map<string, NetworkConfig>();
  for (const [name, def] of Object.entries(section)) {
    const d = isDict(def) ? def : {};
    const n: NetworkConfig = { external: external(d['external']) };
    const nm = str(d['name']);
    if (nm !== undefined) n.name = nm;
    const driver = str(d['driver']);
    if (driver !== undefined) n.driver = driver;
    const opts = stringMap(d['driver_opts']);
    if (opts) n.driverOpts = opts;
    const ipam = d['ipam'];
    if (isDict(ipam)) {
      n.ipam = {};
      const drv = str(ipam['driver']);
      if (drv !== undefined) n.ipam.driver = drv;
      const cfg = ipam['config'];
      if (Array.isArray(cfg))
        n.ipam.config = cfg.map((c) => {
          const subnet = isDict(c) ? str(c['subnet']) : undefined;
          return subnet !== undefined ? { subnet } : {};
        });
    }
    const internal = bool(d['internal']);
    if (internal !== undefined) n.internal = internal;
    const attachable = bool(d['attachable']);
    if (attachable !== undefined) n.attachable = attachable;
    if (d['labels'] !== undefined) n.labels = record(mappingOrList(d['labels'], '=', false));
    if (n.external.external) {
      if (n.external.name) {
        if (n.name) {
          err(
            ctx,
            ['networks', name],
            `network ${name}: network.external.name and network.name conflict; only use network.name`,
          );
        } else {
          if (versionAtLeast(ctx.version, '3.5'))
            ctx.warnings.push({
              message: `network ${name}: network.external.name is deprecated in favor of network.name`,
              pos: ctx.parsed.positions.value(['networks', name, 'external']),
            });
          n.name = n.external.name;
        }
        delete n.external.name;
      } else if (!n.name) n.name = name;
      const extras = extrasOf(d);
      if (extras) n.extras = extras;
    }
    out.set(name, n);
  }
  return out;
}

function decodeVolumes(section: Dict, ctx: DecodeContext): Map<string, VolumeConfig> {
  const out = new Map<string, VolumeConfig>();
  for (const [name, def] of Object.entries(section)) {
    const d = isDict(def) ? def : {};
    const v: VolumeConfig = { external: external(d['external']) };
    const nm = str(d['name']);
    if (nm !== undefined) v.name = nm;
    const driver = str(d['driver']);
    if (driver !== undefined) v.driver = driver;
    const opts = stringMap(d['driver_opts']);
    if (opts) v.driverOpts = opts;
    if (d['labels'] !== undefined) v.labels = record(mappingOrList(d['labels'], '=', false));
    if (v.external.external) {
      const conflict = (key: string) =>
        err(
          ctx,
          ['volumes', name],
          `conflicting parameters "external" and ${JSON.stringify(key)} specified for volume ${JSON.stringify(name)}`,
        );
      if (v.driver) conflict('driver');
      else if (v.driverOpts && Object.keys(v.driverOpts).length > 0) conflict('driver_opts');
      else if (v.labels && Object.keys(v.labels).length > 0) conflict('labels');
      else if (v.external.name) {
        if (v.name)
          err(
            ctx,
            ['volumes', name],
            `volume ${name}: volume.external.name and volume.name conflict; only use volume.name`,
          );
        else {
          if (versionAtLeast(ctx.version, '3.4'))
            ctx.warnings.push({
              message: `volume ${name}: volume.external.name is deprecated in favor of volume.name`,
              pos: ctx.parsed.positions.value(['volumes', name, 'external']),
            });
          v.name = v.external.name;
        }
        delete v.external.name;
      } else if (!v.name) v.name = name;
      const extras = extrasOf(d);
      if (extras) v.extras = extras;
    }
    out.set(name, v);
  }
  return out;
}

function decodeFileObjects(
  section: Dict,
  kind: 'secret' | 'config',
  ctx: DecodeContext,
): Map<string, FileObjectConfig> {
  const out = new Map<string, FileObjectConfig>();
  for (const [name, def] of Object.entries(section)) {
    const d = isDict(def) ? def : {};
    const o: FileObjectConfig = { external: external(d['external']) };
    const nm = str(d['name']);
    if (nm !== undefined) o.name = nm;
    const file = str(d['file']);
    if (file !== undefined) o.file = file;
    if (d['labels'] !== undefined) o.labels = record(mappingOrList(d['labels'], '=', false));
    const driver = str(d['driver']);
    if (driver !== undefined) o.driver = driver;
    const opts = stringMap(d['driver_opts']);
    if (opts) o.driverOpts = opts;
    const td = str(d['template_driver']);
    if (td !== undefined) o.templateDriver = td;
    if (o.external.external) {
      if (o.external.name) {
        if (o.name)
          err(
            ctx,
            [`${kind}s`, name],
            `${kind} ${name}: ${kind}.external.name and ${kind}.name conflict; only use ${kind}.name`,
          );
        else {
          if (versionAtLeast(ctx.version, '3.5'))
            ctx.warnings.push({
              message: `${kind} ${name}: ${kind}.external.name is deprecated in favor of ${kind}.name`,
              pos: ctx.parsed.positions.value([`${kind}s`, name, 'external']),
            });
          o.name = o.external.name;
        }
        delete o.external.name;
      } else if (!o.name) o.name = name;
    } else if (o.driver) {
      if (o.file)
        err(
          ctx,
          [`${kind}s`, name],
          `${kind} ${name}: ${kind}.driver and ${kind}.file conflict; only use ${kind}.driver`,
        );
    } else {
      o.file = absPath(ctx.workingDir, o.file ?? '');
    }
    const extras = extrasOf(d);
    if (extras) o.extras = extras;
    out.set(name, o);
  }
  return out;
}

/** Docker's versions.GreaterThanOrEqualTo on dotted numbers. */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}
