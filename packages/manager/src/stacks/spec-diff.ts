/**
 * A readable diff of two specs for `stack deploy --dry-run`: one line per changed leaf,
 * `Path: old -> new`. Empty values (absent, '', 0, false, [], {}) count as equal, as proto3
 * encodes them alike; byte fields show their size, registry credentials are never shown.
 */

const HIDDEN = new Set(['RegistryAuth', 'Data']);
const MAX_VALUE = 120;

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === 0 || v === false) return true;
  if (v instanceof Uint8Array) return v.length === 0;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.values(v).every(isEmpty);
  return false;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** A value as one short line (JSON; bytes as their size). */
function show(v: unknown): string {
  if (isEmpty(v)) return '(none)';
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  const s = JSON.stringify(v, (_k, x: unknown) =>
    x instanceof Uint8Array || (isPlain(x) && x['type'] === 'Buffer') ? '<bytes>' : x,
  );
  return s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE - 3)}...` : s;
}

function same(a: unknown, b: unknown): boolean {
  if (isEmpty(a) && isEmpty(b)) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(b);
  if (isPlain(a) && isPlain(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => same(a[k], b[k]));
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  return a === b;
}

/** The changed leaves from `before` to `after`, sorted by path. */
export function specDiff(before: unknown, after: unknown, path = ''): string[] {
  if (same(before, after)) return [];
  const at = (k: string): string => (path === '' ? k : `${path}.${k}`);
  if (isPlain(before) && isPlain(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) =>
      HIDDEN.has(k) ? (same(before[k], after[k]) ? [] : [`${at(k)}: changed`]) : specDiff(before[k], after[k], at(k)),
    );
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return before.flatMap((x, i) => specDiff(x, after[i], `${path}[${i}]`));
  }
  return [`${path || '(root)'}: ${show(before)} -> ${show(after)}`];
}
