// Objects as Docker's JSON prints them (`docker service inspect` and friends): decoded wire
// objects carry zero values for every unset scalar, and a few Shoal-only fields; Docker's JSON
// omits empty fields (`omitempty`) except some it always prints, prints non-pointer structs
// even when empty, and prints []byte as base64.

export type InspectKind = 'node' | 'service' | 'task' | 'network' | 'secret' | 'config' | 'cluster';

/** Shoal-only fields, by kind: dotted paths from the object ('*' matches any key or index). */
const INTERNAL: Readonly<Record<InspectKind, readonly string[]>> = {
  node: ['Certificate', 'ManagerStatus.RaftID', 'Attachments'],
  service: ['SpecVersion', 'PendingDelete'],
  task: ['SpecVersion', 'Endpoint', 'ServiceName', 'NetworksAttachments.*.Aliases'],
  network: [],
  secret: [],
  config: [],
  cluster: ['RootCA', 'UnlockKey'],
};
/** Shoal-only fields whose name is unique in the API: dropped wherever they appear. */
const INTERNAL_ANYWHERE = new Set(['PullOptions']);

/** Fields Docker prints even when zero (no omitempty), as path suffixes. */
const ALWAYS = [
  'ID',
  'CreatedAt',
  'UpdatedAt',
  'Version.Index',
  'JobIteration.Index',
  'Spec.Labels',
  'PreviousSpec.Labels',
  'UpdateConfig.Parallelism',
  'UpdateConfig.MaxFailureRatio',
  'UpdateConfig.Order',
  'RollbackConfig.Parallelism',
  'RollbackConfig.MaxFailureRatio',
  'RollbackConfig.Order',
  'TaskTemplate.ForceUpdate',
  'RestartPolicy.MaxAttempts',
  'ServiceStatus.RunningTasks',
  'ServiceStatus.DesiredTasks',
  'ServiceStatus.CompletedTasks',
  'Raft.ElectionTick',
  'Raft.HeartbeatTick',
  'EncryptionConfig.AutoLockManagers',
  'JoinTokens.Worker',
  'JoinTokens.Manager',
  'Privileges.NoNewPrivileges',
];
const ALWAYS_BY_KIND: Readonly<Record<InspectKind, readonly string[]>> = {
  node: [],
  service: [],
  task: ['Labels', 'Spec.ForceUpdate'],
  network: [],
  secret: [],
  config: [],
  cluster: ['RootRotationInProgress', 'DefaultAddrPool', 'SubnetSize', 'DataPathPort'],
};
/** Non-pointer structs Docker prints as {} when empty, by kind. */
const STRUCTS: Readonly<Record<InspectKind, readonly string[]>> = {
  node: ['Spec', 'Description', 'Status'],
  service: ['Spec', 'Endpoint', 'Endpoint.Spec'],
  task: ['Spec', 'Status', 'Status.ContainerStatus', 'Status.PortStatus'],
  network: ['Spec', 'DriverState'],
  secret: ['Spec'],
  config: ['Spec'],
  cluster: [
    'Spec',
    'Spec.Orchestration',
    'Spec.Raft',
    'Spec.Dispatcher',
    'Spec.CAConfig',
    'Spec.TaskDefaults',
    'Spec.EncryptionConfig',
    'TLSInfo',
    'JoinTokens',
  ],
};

function matches(pattern: string, path: string[]): boolean {
  const parts = pattern.split('.');
  if (parts.length !== path.length) return false;
  return parts.every((p, i) => p === '*' || p === path[i]);
}

function endsWith(suffix: string, path: string[]): boolean {
  const parts = suffix.split('.');
  if (parts.length > path.length) return false;
  const tail = path.slice(path.length - parts.length);
  return parts.every((p, i) => p === tail[i]);
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === 0 || v === false) return true;
  if (Array.isArray(v) || v instanceof Uint8Array) return v.length === 0;
  return false;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * A JSON-ready copy of a decoded object as Docker prints it: Shoal-only fields dropped, empty
 * fields omitted except those Docker always prints, empty maps omitted (Spec labels kept as {}),
 * maps' keys sorted (Go's JSON sorts them),
 * bytes as base64, structs Docker never omits present. Key order follows the proto, as Docker's
 * follows its Go structs.
 */
export function inspectJson(kind: InspectKind, obj: object): Record<string, unknown> {
  const internal = INTERNAL[kind];
  const always = [...ALWAYS, ...ALWAYS_BY_KIND[kind]];
  const walk = (value: unknown, path: string[]): unknown => {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, String(i)]));
    if (!isPlainObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const p = [...path, key];
      if (INTERNAL_ANYWHERE.has(key) || internal.some((pat) => matches(pat, p))) continue;
      const keep = always.some((s) => endsWith(s, p));
      if (isPlainObject(v)) {
        // a map (string to string) prints every entry, empty values too, keys sorted as Go's JSON
        const inner = MAP_FIELDS.has(key) ? sortedMap(v) : (walk(v, p) as Record<string, unknown>);
        // an empty map is omitted; a message that is set is printed, even empty ("Global": {})
        if (Object.keys(inner).length === 0 && MAP_FIELDS.has(key) && !keep) continue;
        out[key] = inner;
      } else if (!isEmpty(v)) {
        out[key] = FLOAT32_FIELDS.has(key) && typeof v === 'number' ? float32(v) : walk(v, p);
      } else if (keep) {
        out[key] = v ?? zeroOf(key);
      }
    }
    return out;
  };
  const result = walk(obj, []) as Record<string, unknown>;
  for (const s of STRUCTS[kind]) ensure(result, s.split('.'));
  return result;
}

/** Fields that are 32-bit floats on the wire (Go's float32: printed with the fewest digits). */
const FLOAT32_FIELDS = new Set(['MaxFailureRatio']);

/** The shortest decimal that is the same float32 (0.30000001192092896 → 0.3), as Go prints it. */
export function float32(x: number): number {
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const v = Number(f.toPrecision(p));
    if (Math.fround(v) === f) return v;
  }
  return f;
}

function sortedMap(m: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k];
  return out;
}

/** Map-typed fields of the API (all others holding objects are messages). */
const MAP_FIELDS = new Set(['Labels', 'Options', 'Sysctls', 'DriverOpts']);

/** The zero value Docker prints for an always-printed field that is unset. */
function zeroOf(key: string): unknown {
  if (MAP_FIELDS.has(key)) return {};
  if (key === 'DefaultAddrPool') return [];
  if (['AutoLockManagers', 'RootRotationInProgress', 'NoNewPrivileges'].includes(key)) return false;
  if (['ID', 'CreatedAt', 'UpdatedAt', 'Order', 'Worker', 'Manager'].includes(key)) return '';
  return 0;
}

function ensure(obj: Record<string, unknown>, path: string[]): void {
  let cur = obj;
  for (const key of path) {
    const next = cur[key];
    if (!isPlainObject(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
}
