import { isPortSpec, parseDuration } from './units.js';

/**
 * The ajv formats Docker's Compose schemas use, shared by the compiled validators and the
 * precompiled (standalone) ones in `packages/compose/validators/`, which load this module.
 */
export const composeFormats = {
  duration: { type: 'string', validate: (s: string) => parseDuration(s) !== undefined },
  ports: { type: 'string', validate: (s: string) => isPortSpec(s) },
  'ports-number': { type: 'number', validate: (n: number) => isPortSpec(ratNumerator(n)) },
  // gojsonschema ignores formats it does not know, such as `expose`.
  expose: { type: 'string', validate: () => true },
} as const;

/** The ajv options the validators are built with (the same for compiled and standalone ones). */
export const AJV_OPTIONS = { allErrors: true, strict: false, validateSchema: false, addUsedSchema: false } as const;

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

/** Number-typed `ports` items get their own format name, since an ajv format has one type. */
export function adaptSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(adaptSchema);
  if (typeof schema === 'object' && schema !== null) {
    const o = schema as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = adaptSchema(v);
    if (o['format'] === 'ports' && o['type'] === 'number') out['format'] = 'ports-number';
    return out;
  }
  return schema;
}
