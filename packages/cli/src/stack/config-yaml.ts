/**
 * `shoal stack config`: the merged, interpolated configuration printed as YAML, as Docker's
 * `stack config` marshals its typed config: compose key names, durations as Go durations
 * (`1m30s`), `services`, `networks`, `volumes`, `secrets`, `configs` in that order, empty
 * values left out, keys of each mapping sorted.
 */
import type { ComposeConfig, ServiceConfig } from '@shoal/compose';

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

const DURATIONS = new Set([
  'timeout',
  'interval',
  'start_period',
  'start_interval',
  'stop_grace_period',
  'delay',
  'window',
  'monitor',
]);

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (v instanceof Map) return v.size === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

/** A plain, YAML-ready value: compose keys, Maps as mappings, durations as strings, empties dropped. */
function plain(v: unknown, key = ''): unknown {
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[String(k)] = x === null ? null : plain(x, String(k));
    return o;
  }
  if (Array.isArray(v)) return v.map((x) => plain(x));
  if (typeof v === 'number' && DURATIONS.has(key)) return goDuration(v);
  if (v === null || typeof v !== 'object') return v;
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'extras') {
      for (const [ek, ex] of Object.entries((x ?? {}) as Record<string, unknown>)) o[ek] = plain(ex);
      continue;
    }
    const sk = k === 'readOnly' ? 'read_only' : snake(k);
    if (k === 'external' && typeof x === 'object' && x !== null && 'external' in x) {
      const ext = x as { external: boolean; name?: string };
      if (ext.external) o['external'] = ext.name !== undefined ? { name: ext.name } : true;
      continue;
    }
    const p = plain(x, sk);
    if (!isEmpty(p)) o[sk] = p;
  }
  return o;
}

function service(s: ServiceConfig): unknown {
  const { name: _name, envFile: _envFile, ...rest } = s;
  const o = plain(rest) as Record<string, unknown>;
  // environment as Docker prints it: NAME: value (a variable without a value: null)
  if (s.environment.size > 0) o['environment'] = Object.fromEntries(s.environment);
  return o;
}

/** The config as one plain object in Docker's top-level order. */
export function configObject(c: ComposeConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { version: c.version };
  const services: Record<string, unknown> = {};
  for (const s of c.services) services[s.name] = service(s);
  out['services'] = services;
  for (const [k, m] of [
    ['networks', c.networks],
    ['volumes', c.volumes],
    ['secrets', c.secrets],
    ['configs', c.configs],
  ] as const) {
    if (m.size > 0) out[k] = plain(m);
  }
  for (const [k, x] of Object.entries(c.extras ?? {})) out[k] = plain(x);
  return out;
}

const PLAIN_SCALAR = /^[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*$/;
/** Strings YAML would read as numbers. */
const NUMBER_LIKE = /^[-+]?(\.?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0[xob][0-9a-fA-F_]+|\.inf|\.nan)$/i;
const RESERVED = /^(true|false|yes|no|on|off|null|y|n|~)$/i;

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  if (PLAIN_SCALAR.test(s) && !RESERVED.test(s) && !NUMBER_LIKE.test(s) && !s.endsWith(':')) return s;
  return JSON.stringify(s);
}

function emit(v: unknown, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const x of v) {
      if (x !== null && typeof x === 'object' && !isEmpty(x)) {
        const inner: string[] = [];
        emit(x, `${indent}  `, inner);
        out.push(`${indent}- ${(inner[0] ?? '').trimStart()}`, ...inner.slice(1));
      } else out.push(`${indent}- ${isEmpty(x) && x !== null ? (Array.isArray(x) ? '[]' : '{}') : scalar(x)}`);
    }
    return;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  const top = indent === '' ? keys : keys.sort();
  for (const k of top) {
    const x = o[k];
    const key = scalar(k);
    if (x !== null && typeof x === 'object') {
      if (isEmpty(x)) out.push(`${indent}${key}: ${Array.isArray(x) ? '[]' : '{}'}`);
      else {
        out.push(`${indent}${key}:`);
        emit(x, `${indent}  `, out);
      }
    } else out.push(`${indent}${key}: ${scalar(x)}`);
  }
}

/** The YAML text `stack config` prints. */
export function configYaml(c: ComposeConfig): string {
  const out: string[] = [];
  emit(configObject(c), '', out);
  return out.join('\n') + '\n';
}
