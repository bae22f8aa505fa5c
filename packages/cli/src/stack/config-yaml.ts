/**
 * `shoal stack config`: the merged, interpolated configuration printed as YAML, byte for byte as
 * Docker CLI 28's `docker stack config` marshals its typed config with go-yaml v3: the fields of
 * each object in the order of Docker's Go structs (compose/types), map keys sorted, empty values
 * left out (`omitempty`), extension fields (`x-*`) after the fields, durations as Go durations
 * (`1m30s`), sizes as quoted byte counts, `external` as `true` or `{name: …}`, and strings quoted
 * only where go-yaml v3 quotes them. Compared with Docker's own output on the parity corpus
 * (test/compose-parity, `config-golden.json`).
 */
import { goNumberString, resolvePlainScalar, type ComposeConfig, type ServiceConfig } from '@shoal/compose';

/** Go's time.Duration.String() for `ns` nanoseconds. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  let n = Math.abs(ns);
  const frac = (v: number, unit: number): string => {
    const whole = Math.floor(v / unit);
    const rest = v % unit;
    if (rest === 0) return String(whole);
    const digits = String(unit).length - 1;
    return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
  };
  if (n < 1e3) return `${sign}${n}ns`;
  if (n < 1e6) return `${sign}${frac(n, 1e3)}µs`;
  if (n < 1e9) return `${sign}${frac(n, 1e6)}ms`;
  let out = '';
  const h = Math.floor(n / 3.6e12);
  n -= h * 3.6e12;
  const m = Math.floor(n / 6e10);
  n -= m * 6e10;
  if (h > 0) out += `${h}h`;
  if (h > 0 || m > 0) out += `${m}m`;
  return `${sign}${out}${frac(n, 1e9)}s`;
}

/** A YAML node: an ordered mapping, a list or a scalar. */
type YNode = YMap | YNode[] | YScalar;
type YMap = { map: [string, YNode][]; keep?: boolean };
type YScalar = { s: string | number | boolean | null; float?: boolean; keep?: boolean };

const isMap = (n: YNode): n is YMap => typeof n === 'object' && !Array.isArray(n) && 'map' in n;
const scalar = (s: string | number | boolean | null, float = false): YScalar => ({ s, float });

/** go-yaml v3's omitempty: nil, "", 0, false, empty lists and mappings are left out. */
function empty(n: YNode | undefined): boolean {
  if (n === undefined) return true;
  if (Array.isArray(n)) return n.length === 0;
  if (isMap(n)) return !n.keep && n.map.length === 0;
  if (n.keep) return false;
  return n.s === null || n.s === '' || n.s === 0 || n.s === false;
}

/** A struct: fields in order, empty ones omitted, then the extension fields (sorted). */
function struct(fields: [string, YNode | undefined][], extras?: Record<string, unknown>): YMap {
  const out: [string, YNode][] = [];
  for (const [k, v] of fields) if (v !== undefined && !empty(v)) out.push([k, v]);
  if (extras) for (const k of Object.keys(extras).sort(compare)) out.push([k, raw(extras[k])]);
  return { map: out };
}

/** A struct that is a pointer in Go: printed (as `{}` when empty) whenever it is set. */
function ptr(fields: [string, YNode | undefined][] | undefined): YNode | undefined {
  if (fields === undefined) return undefined;
  return { ...struct(fields), keep: true };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A Go map: keys sorted. */
function gomap<T>(entries: Iterable<[string, T]>, f: (v: T) => YNode): YMap {
  return { map: [...entries].sort((a, b) => compare(a[0], b[0])).map(([k, v]) => [k, f(v)]) };
}

const str = (v: string | undefined): YNode | undefined => (v === undefined ? undefined : scalar(v));
const num = (v: number | undefined): YNode | undefined => (v === undefined ? undefined : scalar(v));
const bool = (v: boolean | undefined): YNode | undefined => (v === undefined ? undefined : scalar(v));
const list = (v: readonly string[] | undefined): YNode | undefined => v?.map((x) => scalar(x));
const strmap = (v: Record<string, string> | undefined): YNode | undefined =>
  v === undefined ? undefined : gomap(Object.entries(v), (x) => scalar(x));
const dur = (v: number | undefined): YNode | undefined => (v === undefined ? undefined : scalar(goDuration(v)));
/** A pointer to a number or duration: printed even when 0. */
const keep = (n: YNode | undefined): YNode | undefined =>
  n === undefined ? undefined : isMap(n) || Array.isArray(n) ? n : { ...n, keep: true };

/** A value kept as parsed (extension fields). */
function raw(v: unknown): YNode {
  if (Array.isArray(v)) return v.map(raw);
  if (v !== null && typeof v === 'object') return gomap(Object.entries(v), raw);
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return scalar(v);
  return scalar(null);
}

function external(e: { external: boolean; name?: string }): YNode | undefined {
  if (e.name !== undefined && e.name !== '') return { map: [['name', scalar(e.name)]] };
  return e.external ? scalar(true) : undefined;
}

function update(u: ServiceConfig['deploy']['updateConfig']): YNode | undefined {
  if (!u) return undefined;
  return ptr([
    ['parallelism', keep(num(u.parallelism))],
    ['delay', u.delay ? dur(u.delay) : undefined],
    ['failure_action', str(u.failureAction)],
    ['monitor', u.monitor ? dur(u.monitor) : undefined],
    ['max_failure_ratio', u.maxFailureRatio === undefined ? undefined : scalar(u.maxFailureRatio, true)],
    ['order', str(u.order)],
  ]);
}

type Resource = NonNullable<ServiceConfig['deploy']['resources']['limits']>;
function resource(r: Resource | undefined, reservation: boolean): YNode | undefined {
  if (!r) return undefined;
  return ptr([
    ['cpus', str(r.cpus)],
    ['memory', r.memory ? scalar(String(r.memory)) : undefined],
    ...(reservation
      ? ([
          [
            'generic_resources',
            r.genericResources?.map((g) =>
              struct([
                [
                  'discrete_resource_spec',
                  g.discreteResourceSpec
                    ? ptr([
                        ['kind', str(g.discreteResourceSpec.kind)],
                        ['value', num(g.discreteResourceSpec.value)],
                      ])
                    : undefined,
                ],
              ]),
            ),
          ],
        ] as [string, YNode | undefined][])
      : ([['pids', num(r.pids)]] as [string, YNode | undefined][])),
  ]);
}

function deploy(d: ServiceConfig['deploy']): YNode {
  const rp = d.restartPolicy;
  return struct([
    ['mode', str(d.mode)],
    ['replicas', keep(num(d.replicas))],
    ['labels', strmap(d.labels)],
    ['update_config', update(d.updateConfig)],
    ['rollback_config', update(d.rollbackConfig)],
    [
      'resources',
      struct([
        ['limits', resource(d.resources.limits, false)],
        ['reservations', resource(d.resources.reservations, true)],
      ]),
    ],
    [
      'restart_policy',
      rp
        ? ptr([
            ['condition', str(rp.condition)],
            ['delay', keep(dur(rp.delay))],
            ['max_attempts', keep(num(rp.maxAttempts))],
            ['window', keep(dur(rp.window))],
          ])
        : undefined,
    ],
    [
      'placement',
      struct([
        ['constraints', list(d.placement.constraints)],
        ['preferences', d.placement.preferences?.map((p) => struct([['spread', str(p.spread)]]))],
        ['max_replicas_per_node', num(d.placement.maxReplicas)],
      ]),
    ],
    ['endpoint_mode', str(d.endpointMode)],
  ]);
}

function fileRefs(refs: ServiceConfig['secrets']): YNode | undefined {
  return refs?.map((r) =>
    struct([
      ['source', str(r.source)],
      ['target', str(r.target)],
      ['uid', str(r.uid)],
      ['gid', str(r.gid)],
      ['mode', keep(num(r.mode))],
    ]),
  );
}

function service(s: ServiceConfig): YNode {
  const h = s.healthcheck;
  const k = s.kept ?? {};
  const b = k.build;
  return struct(
    [
      [
        'build',
        b
          ? struct([
              ['context', str(b.context)],
              ['dockerfile', str(b.dockerfile)],
              ['args', b.args ? gomap(b.args, (v) => scalar(v)) : undefined],
              ['labels', strmap(b.labels)],
              ['cache_from', list(b.cacheFrom)],
              ['extra_hosts', list(b.extraHosts)],
              ['network', str(b.network)],
              ['target', str(b.target)],
            ])
          : undefined,
      ],
      ['cap_add', list(s.capAdd)],
      ['cap_drop', list(s.capDrop)],
      ['cgroupns_mode', str(k.cgroupnsMode)],
      ['cgroup_parent', str(k.cgroupParent)],
      ['command', list(s.command)],
      ['configs', fileRefs(s.configs)],
      ['container_name', str(k.containerName)],
      [
        'credential_spec',
        s.credentialSpec
          ? struct([
              ['config', str(s.credentialSpec.config)],
              ['file', str(s.credentialSpec.file)],
              ['registry', str(s.credentialSpec.registry)],
            ])
          : undefined,
      ],
      ['depends_on', list(k.dependsOn)],
      ['deploy', deploy(s.deploy)],
      ['devices', list(k.devices)],
      ['dns', list(s.dns)],
      ['dns_search', list(s.dnsSearch)],
      ['domainname', str(k.domainname)],
      ['entrypoint', list(s.entrypoint)],
      ['environment', gomap(s.environment, (v) => scalar(v))],
      ['env_file', list(s.envFile)],
      ['expose', list(k.expose)],
      ['external_links', list(k.externalLinks)],
      ['extra_hosts', list(s.extraHosts)],
      ['hostname', str(s.hostname)],
      [
        'healthcheck',
        h
          ? ptr([
              ['test', list(h.test)],
              ['timeout', keep(dur(h.timeout))],
              ['interval', keep(dur(h.interval))],
              ['retries', keep(num(h.retries))],
              ['start_period', keep(dur(h.startPeriod))],
              ['start_interval', keep(dur(h.startInterval))],
              ['disable', bool(h.disable)],
            ])
          : undefined,
      ],
      ['image', str(s.image)],
      ['init', keep(bool(s.init))],
      ['ipc', str(k.ipc)],
      ['isolation', str(s.isolation)],
      ['labels', strmap(s.labels)],
      ['links', list(k.links)],
      [
        'logging',
        s.logging
          ? ptr([
              ['driver', str(s.logging.driver)],
              ['options', strmap(s.logging.options)],
            ])
          : undefined,
      ],
      ['mac_address', str(k.macAddress)],
      ['network_mode', str(k.networkMode)],
      [
        'networks',
        s.networks
          ? gomap(s.networks, (n) =>
              n === null
                ? scalar(null)
                : (ptr([
                    ['aliases', list(n.aliases)],
                    ['driver_opts', strmap(n.driverOpts)],
                    ['ipv4_address', str(n.ipv4Address)],
                    ['ipv6_address', str(n.ipv6Address)],
                  ]) ?? { map: [] }),
            )
          : undefined,
      ],
      ['pid', str(k.pid)],
      [
        'ports',
        s.ports?.map((p) =>
          struct([
            ['mode', str(p.mode)],
            ['target', num(p.target)],
            ['published', num(p.published)],
            ['protocol', str(p.protocol)],
          ]),
        ),
      ],
      ['privileged', bool(k.privileged)],
      ['read_only', bool(s.readOnly)],
      ['restart', str(s.restart)],
      ['secrets', fileRefs(s.secrets)],
      ['security_opt', list(k.securityOpt)],
      ['shm_size', str(k.shmSize)],
      ['stdin_open', bool(s.stdinOpen)],
      ['stop_grace_period', keep(dur(s.stopGracePeriod))],
      ['stop_signal', str(s.stopSignal)],
      ['sysctls', strmap(s.sysctls)],
      ['tmpfs', list(k.tmpfs)],
      ['tty', bool(s.tty)],
      [
        'ulimits',
        s.ulimits
          ? gomap(s.ulimits, (u) =>
              u.single
                ? scalar(u.single)
                : struct([
                    ['single', num(u.single)],
                    ['soft', num(u.soft)],
                    ['hard', num(u.hard)],
                  ]),
            )
          : undefined,
      ],
      ['user', str(s.user)],
      // oom_score_adj: Docker 28.2's struct field has no key name of its own (`oomscoreadj`), so
      // its loader never fills it and `stack config` never prints it
      ['userns_mode', str(k.usernsMode)],
      [
        'volumes',
        s.volumes?.map((v) =>
          struct([
            ['type', str(v.type)],
            ['source', str(v.source)],
            ['target', str(v.target)],
            ['read_only', bool(v.readOnly)],
            ['consistency', str(v.consistency)],
            ['bind', v.bind ? ptr([['propagation', str(v.bind.propagation)]]) : undefined],
            [
              'volume',
              v.volume
                ? ptr([
                    ['nocopy', bool(v.volume.nocopy)],
                    ['subpath', str(v.volume.subpath)],
                  ])
                : undefined,
            ],
            ['tmpfs', v.tmpfs ? ptr([['size', num(v.tmpfs.size)]]) : undefined],
          ]),
        ),
      ],
      ['working_dir', str(s.workingDir)],
    ],
    s.extras,
  );
}

/** The config as Docker's `stack config` marshals it. */
export function configNode(c: ComposeConfig): YMap {
  const objects = (m: ComposeConfig['secrets']) =>
    gomap(m, (o) =>
      struct(
        [
          ['name', str(o.name)],
          ['file', str(o.file)],
          ['external', external(o.external)],
          ['labels', strmap(o.labels)],
          ['driver', str(o.driver)],
          ['driver_opts', strmap(o.driverOpts)],
          ['template_driver', str(o.templateDriver)],
        ],
        o.extras,
      ),
    );
  return struct(
    [
      ['version', scalar(c.version)],
      [
        'services',
        gomap(
          c.services.map((s) => [s.name, s] as [string, ServiceConfig]),
          service,
        ),
      ],
      [
        'networks',
        gomap(c.networks, (n) =>
          struct(
            [
              ['name', str(n.name)],
              ['driver', str(n.driver)],
              ['driver_opts', strmap(n.driverOpts)],
              [
                'ipam',
                n.ipam
                  ? struct([
                      ['driver', str(n.ipam.driver)],
                      ['config', n.ipam.config?.map((p) => ptr([['subnet', str(p.subnet)]]) ?? { map: [] })],
                    ])
                  : undefined,
              ],
              ['external', external(n.external)],
              ['internal', bool(n.internal)],
              ['attachable', bool(n.attachable)],
              ['labels', strmap(n.labels)],
            ],
            n.extras,
          ),
        ),
      ],
      [
        'volumes',
        gomap(c.volumes, (v) =>
          struct(
            [
              ['name', str(v.name)],
              ['driver', str(v.driver)],
              ['driver_opts', strmap(v.driverOpts)],
              ['external', external(v.external)],
              ['labels', strmap(v.labels)],
            ],
            v.extras,
          ),
        ),
      ],
      ['secrets', objects(c.secrets)],
      ['configs', objects(c.configs)],
    ],
    c.extras,
  );
}

// ---- go-yaml v3's scalar styles ----

/** YAML 1.1 booleans go-yaml v3 still quotes (isOldBool). */
const OLD_BOOL = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/;
const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;
/** go-yaml v3's timestamp forms (resolved as !!timestamp when plain). */
const TIMESTAMP =
  /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?$/;

/** True if a plain `s` would not read back as the same string (go-yaml v3 then double-quotes it). */
function needsTag(s: string): boolean {
  if (s === '<<' || OLD_BOOL.test(s) || BASE60_FLOAT.test(s) || TIMESTAMP.test(s)) return true;
  return resolvePlainScalar(s) !== s;
}

function printable(c: number): boolean {
  return (
    c === 0x0a ||
    (c >= 0x20 && c <= 0x7e) ||
    c === 0x85 ||
    (c >= 0xa0 && c <= 0xd7ff) ||
    (c >= 0xe000 && c <= 0xfffd && c !== 0xfeff) ||
    c >= 0x10000
  );
}

const BLANKZ = (c: number | undefined) => c === undefined || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** libyaml's analysis of a scalar: may it be plain in block context, or single-quoted? */
function analyse(s: string): { plain: boolean; single: boolean } {
  if (s.startsWith('---') || s.startsWith('...')) return { plain: false, single: true };
  const cps = [...s].map((c) => c.codePointAt(0) ?? 0);
  let blockIndicators = false;
  let special = false;
  let lineBreaks = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let prevSpace = false;
  let prevBreak = false;
  let precededByWhitespace = true;
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i] as number;
    const followed = BLANKZ(cps[i + 1]);
    const ch = String.fromCodePoint(c);
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) blockIndicators = true;
      if ((ch === '?' || ch === ':' || ch === '-') && followed) blockIndicators = true;
    } else {
      if (ch === ':' && followed) blockIndicators = true;
      if (ch === '#' && precededByWhitespace) blockIndicators = true;
    }
    if (!printable(c)) special = true;
    if (c === 0x0a || c === 0x0d || c === 0x85 || c === 0x2028 || c === 0x2029) lineBreaks = true;
    if (c === 0x20) {
      if (i === 0) leadingSpace = true;
      if (i === cps.length - 1) trailingSpace = true;
      if (prevBreak) breakSpace = true;
      prevSpace = true;
      prevBreak = false;
    } else if (c === 0x0a || c === 0x0d || c === 0x85 || c === 0x2028 || c === 0x2029) {
      if (i === 0) leadingBreak = true;
      if (i === cps.length - 1) trailingBreak = true;
      if (prevSpace) spaceBreak = true;
      prevBreak = true;
      prevSpace = false;
    } else {
      prevSpace = false;
      prevBreak = false;
    }
    precededByWhitespace = BLANKZ(c);
  }
  let plain = true;
  let single = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) plain = false;
  if (breakSpace) {
    plain = false;
    single = false;
  }
  if (spaceBreak || special) {
    plain = false;
    single = false;
  }
  if (lineBreaks) plain = false;
  if (blockIndicators) plain = false;
  return { plain, single };
}

const ESC: Record<number, string> = {
  0: '\\0',
  7: '\\a',
  8: '\\b',
  9: '\\t',
  10: '\\n',
  11: '\\v',
  12: '\\f',
  13: '\\r',
  27: '\\e',
  0x22: '\\"',
  0x5c: '\\\\',
  0x85: '\\N',
  0xa0: '\\_',
  0x2028: '\\L',
  0x2029: '\\P',
};

function doubleQuoted(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    const e = ESC[c];
    if (e !== undefined) out += e;
    else if (!printable(c) || c === 0xfeff) {
      const hex = c.toString(16).toUpperCase();
      out +=
        c <= 0xff
          ? `\\x${hex.padStart(2, '0')}`
          : c <= 0xffff
            ? `\\u${hex.padStart(4, '0')}`
            : `\\U${hex.padStart(8, '0')}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** A string as go-yaml v3 writes it (not multi-line: see `emit`). */
function quote(s: string, key = false): string {
  if (s === '') return key ? "''" : '""';
  if (needsTag(s)) return doubleQuoted(s);
  const a = analyse(s);
  if (a.plain) return s;
  if (a.single) return `'${s.replaceAll("'", "''")}'`;
  return doubleQuoted(s);
}

/** go-yaml v3's float: the shortest form, float32 precision for Docker's float32 fields. */
function float32String(x: number): string {
  if (Number.isInteger(x)) return goNumberString(x, true);
  for (let p = 1; p <= 9; p++) {
    const t = Number(x.toPrecision(p));
    if (Math.fround(t) === x) return goNumberString(t, true);
  }
  return goNumberString(x, true);
}

function scalarText(n: YScalar): string {
  const v = n.s;
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return n.float ? float32String(v) : goNumberString(v, false);
  return quote(v);
}

/** A string go-yaml v3 writes in literal style: several lines, nothing the style cannot hold. */
function multiline(x: YNode): x is YScalar & { s: string } {
  if (Array.isArray(x) || isMap(x) || typeof x.s !== 'string' || !x.s.includes('\n')) return false;
  for (const ch of x.s) if (!printable(ch.codePointAt(0) ?? 0)) return false;
  return !/ \n| $/.test(x.s);
}

function literalHead(x: YScalar & { s: string }): string {
  const s = x.s;
  const chomp = s.endsWith('\n') ? (s.endsWith('\n\n') ? '+' : '') : '-';
  return `|${s.startsWith(' ') || s.startsWith('\n') ? '2' : ''}${chomp}`;
}

function literalBody(x: YScalar & { s: string }, indent: string): string[] {
  const lines = x.s.split('\n');
  if (x.s.endsWith('\n')) lines.pop();
  return lines.map((l) => (l === '' ? '' : `${indent}${l}`));
}

function emit(n: YNode, indent: string, out: string[]): void {
  if (Array.isArray(n)) {
    for (const x of n) {
      if ((Array.isArray(x) && x.length > 0) || (isMap(x) && x.map.length > 0)) {
        const inner: string[] = [];
        emit(x, `${indent}  `, inner);
        out.push(`${indent}- ${(inner[0] ?? '').trimStart()}`, ...inner.slice(1));
      } else if (multiline(x)) out.push(`${indent}- ${literalHead(x)}`, ...literalBody(x, `${indent}  `));
      else out.push(`${indent}- ${inline(x)}`);
    }
    return;
  }
  if (!isMap(n)) return;
  for (const [k, x] of n.map) {
    const key = quote(k, true);
    if ((Array.isArray(x) && x.length > 0) || (isMap(x) && x.map.length > 0)) {
      out.push(`${indent}${key}:`);
      emit(x, Array.isArray(x) ? indent + '  ' : `${indent}  `, out);
    } else if (multiline(x)) out.push(`${indent}${key}: ${literalHead(x)}`, ...literalBody(x, `${indent}  `));
    else out.push(`${indent}${key}: ${inline(x)}`);
  }
}

/** An empty collection or a scalar on the line of its key or dash. */
function inline(x: YNode): string {
  if (Array.isArray(x)) return '[]';
  if (isMap(x)) return '{}';
  return scalarText(x);
}

/** The YAML text `stack config` prints. */
export function configYaml(c: ComposeConfig): string {
  const out: string[] = [];
  emitTop(configNode(c), out);
  return out.join('\n') + '\n';
}

function emitTop(n: YMap, out: string[]): void {
  emit(n, '', out);
}
