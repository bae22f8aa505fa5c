import { readFileSync } from 'node:fs';
import AjvDraft04 from 'ajv-draft-04';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Diagnostics } from './errors.js';
import { dotted, type KeyPath } from './positions.js';
import { isPortSpec, parseDuration } from './units.js';
import type { Dict, ParsedFile } from './yaml.js';

/** Schema versions Docker CLI 28 ships (cli/compose/schema/data). */
export const SCHEMA_VERSIONS = [
  '3.0',
  '3.1',
  '3.2',
  '3.3',
  '3.4',
  '3.5',
  '3.6',
  '3.7',
  '3.8',
  '3.9',
  '3.10',
  '3.11',
  '3.12',
  '3.13',
] as const;
export const DEFAULT_VERSION = '3.13';

/** Where the schema data files live: `<repo>/schemas/compose/`. */
const SCHEMA_DIR = new URL('../../../schemas/compose/', import.meta.url);

/** Docker's version normalisation: missing, empty or "3" mean the newest 3.x. */
export function normalizeVersion(v: string): string {
  return v === '' || v === '3' ? DEFAULT_VERSION : v;
}

const Ajv = AjvDraft04 as unknown as typeof AjvDraft04.default;
let ajv: InstanceType<typeof Ajv> | undefined;
const compiled = new Map<string, ValidateFunction>();

/** The number a number-typed port is checked as: Go's big.Rat string cut at `/`. */
function ratNumerator(n: number): string {
  if (Number.isInteger(n)) return BigInt(n).toString();
  const [int, frac = ''] = String(n).split('.') as [string, string?];
  let num = BigInt(int + frac);
  const den = 10n ** BigInt(frac.length);
  const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? (a < 0n ? -a : a) : gcd(b, a % b));
  const g = gcd(num, den);
  num /= g;
  return num.toString();
}

function getAjv(): InstanceType<typeof Ajv> {
  if (ajv) return ajv;
  ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false, addUsedSchema: false });
  ajv.addFormat('duration', { type: 'string', validate: (s: string) => parseDuration(s) !== undefined });
  ajv.addFormat('ports', { type: 'string', validate: (s: string) => isPortSpec(s) });
  ajv.addFormat('ports-number', { type: 'number', validate: (n: number) => isPortSpec(ratNumerator(n)) });
  // gojsonschema ignores formats it does not know, such as `expose`.
  ajv.addFormat('expose', { type: 'string', validate: () => true });
  return ajv;
}

/** Number-typed `ports` items get their own format name, since an ajv format has one type. */
function adapt(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(adapt);
  if (typeof schema === 'object' && schema !== null) {
    const o = schema as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = adapt(v);
    if (o['format'] === 'ports' && o['type'] === 'number') out['format'] = 'ports-number';
    return out;
  }
  return schema;
}

/** True if Docker CLI 28 has a schema for `version`. */
export function hasSchema(version: string): boolean {
  return (SCHEMA_VERSIONS as readonly string[]).includes(version);
}

/** The compiled validator for one schema version (compiled once per process). */
export function validatorFor(version: string): ValidateFunction {
  let v = compiled.get(version);
  if (!v) {
    const text = readFileSync(new URL(`config_schema_v${version}.json`, SCHEMA_DIR), 'utf8');
    v = getAjv().compile(adapt(JSON.parse(text)) as object);
    compiled.set(version, v);
  }
  return v;
}

function pointerToPath(ptr: string): (string | number)[] {
  if (ptr === '') return [];
  return ptr
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function humanType(t: string): string {
  if (t === 'object') return 'mapping';
  if (t === 'array') return 'list';
  return t;
}

/** gojsonschema-style description of one ajv error, as Docker prints it after the path. */
function describe(e: ErrorObject, field: string): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `Additional property ${String(p['additionalProperty'])} is not allowed`;
    case 'type': {
      const t = p['type'];
      const types = Array.isArray(t) ? (t as string[]) : String(t).split(',');
      const names = types.map(humanType);
      return `must be a ${names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names[0]}`;
    }
    case 'enum':
      return `${field} must be one of the following: ${(p['allowedValues'] as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`;
    case 'format':
      return `Does not match format '${String(p['format']) === 'ports-number' ? 'ports' : String(p['format'])}'`;
    case 'required':
      return `${String(p['missingProperty'])} is required`;
    case 'uniqueItems': {
      const i = Number(p['i']);
      const j = Number(p['j']);
      return `array items[${Math.min(i, j)},${Math.max(i, j)}] must be unique`;
    }
    case 'oneOf':
      return 'Must validate one and only one schema (oneOf)';
    case 'anyOf':
      return 'Must validate at least one schema (anyOf)';
    case 'minimum':
      return `Must be greater than or equal to ${String(p['limit'])}`;
    case 'maximum':
      return `Must be less than or equal to ${String(p['limit'])}`;
    case 'minItems':
      return `Array must have at least ${String(p['limit'])} items`;
    case 'pattern':
      return `Does not match pattern '${String(p['pattern'])}'`;
    default:
      return e.message ?? e.keyword;
  }
}

function depth(e: ErrorObject): number {
  return e.instancePath === '' ? 1 : e.instancePath.split('/').length;
}

/**
 * Out of the errors of one failed oneOf/anyOf, the one Docker would show: gojsonschema keeps
 * the errors of the branch that got furthest (here: the branch that did not fail on its type
 * at the oneOf's own path), then the most specific of them (deepest; a type error wins a tie).
 */
function pickBranchError(parent: ErrorObject, children: ErrorObject[]): ErrorObject {
  if (children.length === 0) return parent;
  const prefix = parent.schemaPath + '/';
  const branches = new Map<string, ErrorObject[]>();
  for (const c of children) {
    const b = c.schemaPath.startsWith(prefix) ? (c.schemaPath.slice(prefix.length).split('/')[0] ?? '?') : '?';
    let list = branches.get(b);
    if (!list) branches.set(b, (list = []));
    list.push(c);
  }
  let best: ErrorObject[] | undefined;
  for (const list of branches.values()) {
    const typeFailedHere = list.some((c) => c.keyword === 'type' && c.instancePath === parent.instancePath);
    if (!typeFailedHere) {
      best = list;
      break;
    }
  }
  best ??= [...branches.values()][0] ?? children;
  let chosen = best[0] as ErrorObject;
  for (const c of best) {
    if (depth(c) > depth(chosen) || (depth(c) === depth(chosen) && c.keyword === 'type' && chosen.keyword !== 'type'))
      chosen = c;
  }
  return chosen;
}

/**
 * Validates one interpolated file against the schema of `version`. Every error is reported,
 * each in Docker's `<path> <description>` form at the position of the offending key or value.
 */
export function validateSchema(
  dict: Dict,
  version: string,
  parsed: ParsedFile,
  diags: Diagnostics,
  skip: readonly (readonly string[])[] = [],
): boolean {
  const validate = validatorFor(version);
  if (validate(dict)) return true;
  const errors = validate.errors ?? [];
  // ajv reports a oneOf's branch errors right before the oneOf error: fold them into one.
  let pending: ErrorObject[] = [];
  for (const e of errors) {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf') {
      const inside = (c: ErrorObject) =>
        c.instancePath === e.instancePath || c.instancePath.startsWith(e.instancePath + '/');
      const children = pending.filter(inside);
      pending = pending.filter((c) => !inside(c));
      pending.push(pickBranchError(e, children));
      continue;
    }
    pending.push(e);
  }
  const seen = new Set<string>();
  for (const e of pending) {
    const path: KeyPath = pointerToPath(e.instancePath);
    const full =
      e.keyword === 'additionalProperties'
        ? [...path, String((e.params as Record<string, unknown>)['additionalProperty'])]
        : path;
    // Values already reported (failed interpolation, forbidden keys) are not reported again.
    if (skip.some((s) => s.length <= full.length && s.every((seg, i) => String(full[i]) === seg))) continue;
    const field = dotted(path);
    const message = `${field} ${describe(e, field)}`;
    let pos;
    if (e.keyword === 'additionalProperties') {
      pos = parsed.positions.key([...path, String((e.params as Record<string, unknown>)['additionalProperty'])]);
    } else pos = parsed.positions.value(path);
    const key = `${pos.line}:${pos.column}:${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    diags.add(pos, field, message);
  }
  return false;
}
