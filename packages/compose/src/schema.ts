import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import AjvDraft04 from 'ajv-draft-04';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Diagnostics } from './errors.js';
import { dotted, type KeyPath } from './positions.js';
import { AJV_OPTIONS, adaptSchema, composeFormats } from './schemaformats.js';
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
const requireHere = createRequire(import.meta.url);

function getAjv(): InstanceType<typeof Ajv> {
  if (ajv) return ajv;
  ajv = new Ajv({ ...AJV_OPTIONS });
  for (const [name, f] of Object.entries(composeFormats)) ajv.addFormat(name, f);
  return ajv;
}

/** True if Docker CLI 28 has a schema for `version`. */
export function hasSchema(version: string): boolean {
  return (SCHEMA_VERSIONS as readonly string[]).includes(version);
}

/**
 * The validator for one schema version, loaded (once per process) from the precompiled ajv
 * standalone code in `packages/compose/validators/` (`npm run compose:validators` makes it from
 * `schemas/compose/`; a drift test keeps them equal), so no run pays ajv's compilation.
 */
export function validatorFor(version: string): ValidateFunction {
  let v = compiled.get(version);
  if (!v) {
    if (!hasSchema(version)) throw new Error(`no Compose schema for version ${version}`);
    v = requireHere(`../validators/v${version}.js`) as ValidateFunction;
    compiled.set(version, v);
  }
  return v;
}

/** The same validator compiled by ajv from the schema file (the benchmark's comparison). */
export function compileValidator(version: string): ValidateFunction {
  const text = readFileSync(new URL(`config_schema_v${version}.json`, SCHEMA_DIR), 'utf8');
  return getAjv().compile(adaptSchema(JSON.parse(text)) as object);
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
