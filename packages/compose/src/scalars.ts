/**
 * Plain YAML scalars resolved the way go-yaml v3 (Docker CLI 28's parser) resolves them when it
 * decodes into an untyped value: YAML 1.2 booleans and nulls (`yes`/`no`/`on` stay strings),
 * but integers through Go's `strconv.ParseInt(s, 0, 64)` after removing `_`, so `0755` is
 * octal (493), `0x10` is 16, `0b11` is 3 and `1_000` is 1000; `08` is not octal and becomes the
 * float 8. Timestamps stay strings.
 */

/** A float as go-yaml v3 read it (so that it can be printed the way Go prints a float64). */
export type Resolved = string | number | boolean | null;

const SPECIAL = new Map<string, Resolved>([
  ['', null],
  ['~', null],
  ['null', null],
  ['Null', null],
  ['NULL', null],
  ['true', true],
  ['True', true],
  ['TRUE', true],
  ['false', false],
  ['False', false],
  ['FALSE', false],
  ['.nan', Number.NaN],
  ['.NaN', Number.NaN],
  ['.NAN', Number.NaN],
  ['.inf', Number.POSITIVE_INFINITY],
  ['.Inf', Number.POSITIVE_INFINITY],
  ['.INF', Number.POSITIVE_INFINITY],
  ['+.inf', Number.POSITIVE_INFINITY],
  ['+.Inf', Number.POSITIVE_INFINITY],
  ['+.INF', Number.POSITIVE_INFINITY],
  ['-.inf', Number.NEGATIVE_INFINITY],
  ['-.Inf', Number.NEGATIVE_INFINITY],
  ['-.INF', Number.NEGATIVE_INFINITY],
]);

const YAML_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const DIGITS: Record<number, RegExp> = { 2: /^[01]+$/, 8: /^[0-7]+$/, 10: /^[0-9]+$/, 16: /^[0-9a-fA-F]+$/ };
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Go's `strconv.ParseInt(s, 0, 64)` / `ParseUint` without the range check: a BigInt or undefined. */
export function goParseIntBase0(s: string, allowSign = true): bigint | undefined {
  let body = s;
  let neg = false;
  if (body.startsWith('+') || body.startsWith('-')) {
    if (!allowSign) return undefined;
    neg = body.startsWith('-');
    body = body.slice(1);
  }
  let base = 10;
  if (/^0[xX]/.test(body)) {
    base = 16;
    body = body.slice(2);
  } else if (/^0[bB]/.test(body)) {
    base = 2;
    body = body.slice(2);
  } else if (/^0[oO]/.test(body)) {
    base = 8;
    body = body.slice(2);
  } else if (body.length > 1 && body.startsWith('0')) {
    base = 8;
    body = body.slice(1);
  }
  if (body === '' || !DIGITS[base]?.test(body)) return undefined;
  const prefix = base === 16 ? '0x' : base === 8 ? '0o' : base === 2 ? '0b' : '';
  const v = BigInt(prefix + body);
  return neg ? -v : v;
}

/** Resolves a plain (unquoted, untagged) scalar as go-yaml v3 does. `float` tells a float from an int. */
export function resolvePlain(text: string): { value: Resolved; float: boolean } {
  const special = SPECIAL.get(text);
  if (special !== undefined || SPECIAL.has(text)) return { value: special ?? null, float: typeof special === 'number' };
  const c = text.charCodeAt(0);
  const isDigit = c >= 48 && c <= 57;
  if (text.startsWith('.')) {
    if (YAML_FLOAT.test(text)) return { value: Number(text), float: true };
    return { value: text, float: false };
  }
  if (!isDigit && !text.startsWith('+') && !text.startsWith('-')) return { value: text, float: false };
  const plain = text.replaceAll('_', '');
  const i = goParseIntBase0(plain);
  if (i !== undefined) {
    if (i >= INT64_MIN && i <= INT64_MAX) return { value: Number(i), float: false };
    if (i > 0n && i <= UINT64_MAX) return { value: Number(i), float: false };
  }
  if (YAML_FLOAT.test(plain)) return { value: Number(plain), float: true };
  return { value: text, float: false };
}

/** What a plain scalar `text` reads as (go-yaml v3): a string, number, boolean or null. */
export function resolvePlainScalar(text: string): Resolved {
  return resolvePlain(text).value;
}

/** Resolves a scalar carrying an explicit core tag (`!!int`, `!!bool`, ...). */
export function resolveTagged(text: string, tag: string): { value: Resolved; float: boolean } {
  switch (tag) {
    case 'tag:yaml.org,2002:str':
      return { value: text, float: false };
    case 'tag:yaml.org,2002:float': {
      const r = resolvePlain(text);
      return typeof r.value === 'number' ? { value: r.value, float: true } : r;
    }
    default:
      return resolvePlain(text);
  }
}

/**
 * A number printed the way Go's `fmt.Sprint` prints it: integers in decimal, float64 values in
 * the shortest `%g` form (`1.5`, `1e+06`, `1.234567e+06`, `+Inf`, `NaN`).
 */
export function goNumberString(n: number, float: boolean): string {
  if (!float && Number.isInteger(n)) return BigInt(n).toString();
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  // toExponential() gives the shortest round-trip digits, as Go's precision -1 does.
  const [mant, e] = n.toExponential().split('e') as [string, string];
  const x = Number(e);
  if (x < -4 || x >= 6) {
    const abs = Math.abs(x);
    return `${mant}e${x < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
  }
  return String(n);
}
