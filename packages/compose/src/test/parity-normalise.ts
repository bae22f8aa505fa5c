// One shape for what Docker created (`docker service|network|secret|config inspect`) and what
// Shoal's converter produces, so that test/compose-parity's goldens can be compared field by
// field. Both sides get the values the daemon fills in when a field is unset (compose.md §9.10:
// stop grace 10s, restart any/5s/0, update and rollback 1/pause/5s/0/stop-first, replicas 1,
// endpoint mode vip, a port's protocol tcp and mode ingress, isolation "default", runtime
// "container", the image's familiar name with ":latest" when untagged), then IDs are dropped, network IDs become names, and null, false, 0, "", [] and {}
// are removed.
import { familiarImage, type ConfigSpec, type NetworkSpec, type SecretSpec, type ServiceSpec } from '@shoal/api';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** A golden: Docker's answer for one case, normalised (test/compose-parity/<case>/golden.json). */
export interface Golden {
  /** The docker CLI and daemon versions that produced it. */
  cli: string;
  daemon: string;
  result: 'accept' | 'reject';
  exitCode: number;
  /** stderr, line by line (Docker's warnings or its error), with the case directory as ".". */
  stderr: string[];
  networks: Record<string, JsonObject>;
  secrets: Record<string, JsonObject>;
  configs: Record<string, JsonObject>;
  services: Record<string, JsonObject>;
}

const SECOND = 1_000_000_000;
/** The vxlan ID the overlay driver allocates. */
const VXLAN_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';
/** The address pools record.sh gives the daemon: subnets from them are the daemon's choice. */
const DAEMON_POOLS = /^198\.(19\.|18\.25[2-5]\.)/;
/** An object ID as swarm makes them (25 characters of base 36), e.g. in a port conflict. */
const SWARM_ID = /\b[a-z0-9]{25}\b/g;
/** stderr lines Docker CLI 28 prints on every deploy, not about the file. */
const NOISE = [
  /^Since --detach=false was not specified, tasks will be created in the background\.$/,
  /^In a future release, --detach=false will become the default\.$/,
];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Plain JSON: bytes as base64 (Docker's []byte), undefined dropped. */
export function toJson(v: unknown): Json {
  if (v === undefined || v === null) return null;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'bigint') return Number(v);
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJson(x);
    return out;
  }
  return v as Json;
}

/** Removes null, false, 0, "", [] and {} everywhere (after the defaults are in). */
export function prune(v: Json): Json | undefined {
  if (v === null || v === false || v === 0 || v === '') return undefined;
  if (Array.isArray(v)) {
    const a = v.map(prune).filter((x): x is Json => x !== undefined);
    return a.length ? a : undefined;
  }
  if (typeof v === 'object') {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) {
      const p = prune(x);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return v;
}

function obj(parent: JsonObject, key: string): JsonObject {
  const v = parent[key];
  if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  const o: JsonObject = {};
  parent[key] = o;
  return o;
}

function fill(o: JsonObject, defaults: JsonObject): void {
  for (const [k, v] of Object.entries(defaults)) if (o[k] === undefined || o[k] === null || o[k] === '') o[k] = v;
}

/** The image as Docker's daemon stores it (api's familiarImage, which the manager applies). */
export { familiarImage };

const UPDATE_DEFAULTS: JsonObject = {
  Parallelism: 1,
  FailureAction: 'pause',
  Monitor: 5 * SECOND,
  MaxFailureRatio: 0,
  Order: 'stop-first',
};

/**
 * A service spec as the daemon stores it. `networkNames` maps network IDs to names (Docker's
 * specs hold IDs; Shoal's converter writes names).
 */
export function normaliseService(spec: unknown, networkNames: Record<string, string> = {}): JsonObject {
  const s = structuredClone(toJson(spec)) as JsonObject;
  const tt = obj(s, 'TaskTemplate');
  const c = obj(tt, 'ContainerSpec');
  if (typeof c['Image'] === 'string') c['Image'] = familiarImage(c['Image']);
  fill(c, { StopGracePeriod: 10 * SECOND, Isolation: 'default' });
  if (c['Isolation'] === 'default') delete c['Isolation'];
  for (const r of (c['Secrets'] ?? []) as JsonObject[]) delete r['SecretID'];
  for (const r of (c['Configs'] ?? []) as JsonObject[]) delete r['ConfigID'];
  fill(obj(tt, 'RestartPolicy'), { Condition: 'any', Delay: 5 * SECOND, MaxAttempts: 0 });
  if (tt['Runtime'] === 'container') delete tt['Runtime'];
  for (const n of (tt['Networks'] ?? []) as JsonObject[]) {
    const t = n['Target'];
    if (typeof t === 'string' && networkNames[t]) n['Target'] = networkNames[t];
  }
  const mode = obj(s, 'Mode');
  if (!mode['Global'] && !mode['ReplicatedJob'] && !mode['GlobalJob']) fill(obj(mode, 'Replicated'), { Replicas: 1 });
  fill(obj(s, 'UpdateConfig'), UPDATE_DEFAULTS);
  fill(obj(s, 'RollbackConfig'), UPDATE_DEFAULTS);
  const ep = obj(s, 'EndpointSpec');
  if (ep['Mode'] === 'vip') delete ep['Mode'];
  for (const p of (ep['Ports'] ?? []) as JsonObject[]) fill(p, { Protocol: 'tcp', PublishMode: 'ingress' });
  return (prune(s) ?? {}) as JsonObject;
}

/** Docker's network inspect: what the stack asked for, without what the daemon allocated. */
export function normaliseDockerNetwork(n: JsonObject): JsonObject {
  const ipam = (n['IPAM'] ?? {}) as JsonObject;
  const out: JsonObject = {
    Name: n['Name'] ?? null,
    Driver: n['Driver'] ?? null,
    Scope: n['Scope'] ?? null,
    EnableIPv6: n['EnableIPv6'] ?? null,
    Internal: n['Internal'] ?? null,
    Attachable: n['Attachable'] ?? null,
    Ingress: n['Ingress'] ?? null,
    ConfigOnly: n['ConfigOnly'] ?? null,
    ConfigFrom: n['ConfigFrom'] ?? null,
    Options: Object.fromEntries(Object.entries((n['Options'] ?? {}) as JsonObject).filter(([k]) => k !== VXLAN_OPTION)),
    Labels: n['Labels'] ?? null,
    IPAM: {
      Driver: ipam['Driver'] === 'default' ? null : (ipam['Driver'] ?? null),
      Options: ipam['Options'] ?? null,
      // subnets the daemon took from its pools (swarm init's 198.19.0.0/16 for overlays,
      // default-address-pools 198.18.252.0/22 for local networks) and gateways it chose
      Config: ((ipam['Config'] ?? []) as JsonObject[])
        .filter((x) => !(typeof x['Subnet'] === 'string' && DAEMON_POOLS.test(x['Subnet'])))
        .map((x) => ({ Subnet: x['Subnet'] ?? null, IPRange: x['IPRange'] ?? null })),
    },
  };
  return (prune(out) ?? {}) as JsonObject;
}

/** Shoal's network spec in the shape of Docker's network inspect. */
export function normaliseShoalNetwork(n: NetworkSpec): JsonObject {
  const ipam = n.IPAMOptions;
  return normaliseDockerNetwork(
    toJson({
      Name: n.Name,
      Driver: n.DriverConfiguration?.Name,
      Scope: n.Scope,
      EnableIPv6: n.IPv6Enabled,
      Internal: n.Internal,
      Attachable: n.Attachable,
      Ingress: n.Ingress,
      ConfigFrom: n.ConfigFrom ? { Network: n.ConfigFrom.Network } : undefined,
      Options: n.DriverConfiguration?.Options,
      Labels: n.Labels,
      IPAM: {
        Driver: ipam?.Driver?.Name ?? 'default',
        Options: ipam?.Driver?.Options,
        Config: (ipam?.Configs ?? []).map((c) => ({ Subnet: c.Subnet, IPRange: c.Range })),
      },
    }) as JsonObject,
  );
}

/** A secret as `docker secret inspect` shows it: never its data. */
export function normaliseSecret(spec: SecretSpec | JsonObject): JsonObject {
  const s = toJson(spec) as JsonObject;
  delete s['Data'];
  return (prune(s) ?? {}) as JsonObject;
}

export function normaliseConfig(spec: ConfigSpec | JsonObject): JsonObject {
  return (prune(toJson(spec)) ?? {}) as JsonObject;
}

/** Docker's stderr as lines, without the CLI's own notices. */
export function normaliseStderr(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => {
      // logrus lines: time="…" level=warning msg="…" → the message
      const m = /^(?:time="[^"]*" )?level=\w+ msg=("(?:[^"\\]|\\.)*")$/.exec(l.trimEnd());
      return (m?.[1] ? (JSON.parse(m[1]) as string) : l.trimEnd()).replace(SWARM_ID, '<id>');
    })
    .filter((l) => l !== '' && !NOISE.some((re) => re.test(l)));
}

/** What record.sh captured for one case and one CLI. */
export interface RawAnswer {
  cli: string;
  daemon: string;
  caseDir: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  networkNames: Record<string, string>;
  services: { Spec: JsonObject }[];
  networks: JsonObject[];
  secrets: { Spec: JsonObject }[];
  configs: { Spec: JsonObject }[];
}

function byName(entries: JsonObject[]): Record<string, JsonObject> {
  const name = (e: JsonObject) => (typeof e['Name'] === 'string' ? e['Name'] : '');
  const out: Record<string, JsonObject> = {};
  for (const e of entries.sort((a, b) => name(a).localeCompare(name(b)))) out[name(e)] = e;
  return out;
}

/** Absolute paths under the case directory written relative to it ("./conf"), as JSON text. */
export function relativeTo<T>(value: T, caseDir: string): T {
  return JSON.parse(JSON.stringify(value).split(caseDir).join('.')) as T;
}

export function goldenFromRaw(raw: RawAnswer): Golden {
  return relativeTo(goldenFromRawAbs(raw), raw.caseDir);
}

function goldenFromRawAbs(raw: RawAnswer): Golden {
  return {
    cli: raw.cli,
    daemon: raw.daemon,
    result: raw.exitCode === 0 ? 'accept' : 'reject',
    exitCode: raw.exitCode,
    stderr: normaliseStderr(raw.stderr),
    networks: byName(raw.networks.map(normaliseDockerNetwork)),
    secrets: byName(raw.secrets.map((s) => normaliseSecret(s.Spec))),
    configs: byName(raw.configs.map((s) => normaliseConfig(s.Spec))),
    services: byName(raw.services.map((s) => normaliseService(s.Spec, raw.networkNames))),
  };
}

/** Shoal's converted specs in the golden's shape. */
export function shoalObjects(specs: {
  networks: NetworkSpec[];
  secrets: SecretSpec[];
  configs: ConfigSpec[];
  services: ServiceSpec[];
}): Pick<Golden, 'networks' | 'secrets' | 'configs' | 'services'> {
  return {
    networks: byName(specs.networks.map(normaliseShoalNetwork)),
    secrets: byName(specs.secrets.map(normaliseSecret)),
    configs: byName(specs.configs.map(normaliseConfig)),
    services: byName(specs.services.map((s) => normaliseService(s))),
  };
}

/** Every difference between two JSON values, one line each: `path: want X, got Y`. */
export function diffJson(want: Json | undefined, got: Json | undefined, path = ''): string[] {
  const show = (v: Json | undefined) => {
    if (v === undefined) return '(absent)';
    const t = JSON.stringify(v);
    return t.length > 120 ? `${t.slice(0, 100)}…" (${t.length} chars)` : t;
  };
  if (isObject(want) && isObject(got)) {
    const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])].sort();
    return keys.flatMap((k) => diffJson(want[k], got[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(want) && Array.isArray(got) && want.length === got.length)
    return want.flatMap((w, i) => diffJson(w, got[i], `${path}[${i}]`));
  return JSON.stringify(want) === JSON.stringify(got) ? [] : [`${path}: Docker ${show(want)}, Shoal ${show(got)}`];
}
