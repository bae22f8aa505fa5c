import type { Diagnostics } from './errors.js';
import { interpolationPath, type KeyPath } from './positions.js';
import { goParseIntBase0 } from './scalars.js';
import { substituteCompat, substituteDocker, type Lookup } from './template.js';
import { isDict, isFloat, markFloat, setOwn, type Dict, type ParsedFile, type Value } from './yaml.js';

type Cast = (s: string) => { value: Value } | { error: string };

/** Go's strconv.Atoi: decimal only, optional sign, no spaces. */
function toInt(s: string): { value: Value } | { error: string } {
  if (/^[+-]?[0-9]+$/.test(s)) {
    const v = BigInt(s);
    if (v >= -(2n ** 63n) && v <= 2n ** 63n - 1n) return { value: Number(v) };
    return { error: `strconv.Atoi: parsing ${JSON.stringify(s)}: value out of range` };
  }
  return { error: `strconv.Atoi: parsing ${JSON.stringify(s)}: invalid syntax` };
}

/** Go's strconv.ParseFloat(s, 64), near enough (decimal, exponent, inf, nan, hex not supported). */
function toFloat(s: string): { value: Value } | { error: string } {
  const t = s.replaceAll('_', '');
  if (/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(t)) return { value: Number(t) };
  if (/^[+-]?(inf|infinity)$/i.test(s)) return { value: s.startsWith('-') ? -Infinity : Infinity };
  if (/^nan$/i.test(s)) return { value: Number.NaN };
  if (goParseIntBase0(s) !== undefined && /^[+-]?0[xX]/.test(s)) return { value: Number(goParseIntBase0(s)) };
  return { error: `strconv.ParseFloat: parsing ${JSON.stringify(s)}: invalid syntax` };
}

function toBool(s: string): { value: Value } | { error: string } {
  switch (s.toLowerCase()) {
    case 'y':
    case 'yes':
    case 'true':
    case 'on':
      return { value: true };
    case 'n':
    case 'no':
    case 'false':
    case 'off':
      return { value: false };
    default:
      return { error: `invalid boolean: ${s}` };
  }
}

const S = ['services', '*'];
/** The paths whose substituted strings Docker casts back to numbers or booleans. */
const CASTS: [string[], Cast][] = [
  [[...S, 'configs', '[]', 'mode'], toInt],
  [[...S, 'secrets', '[]', 'mode'], toInt],
  [[...S, 'healthcheck', 'retries'], toInt],
  [[...S, 'healthcheck', 'disable'], toBool],
  [[...S, 'deploy', 'replicas'], toInt],
  [[...S, 'deploy', 'update_config', 'parallelism'], toInt],
  [[...S, 'deploy', 'update_config', 'max_failure_ratio'], toFloat],
  [[...S, 'deploy', 'rollback_config', 'parallelism'], toInt],
  [[...S, 'deploy', 'rollback_config', 'max_failure_ratio'], toFloat],
  [[...S, 'deploy', 'restart_policy', 'max_attempts'], toInt],
  [[...S, 'deploy', 'placement', 'max_replicas_per_node'], toInt],
  [[...S, 'ports', '[]', 'target'], toInt],
  [[...S, 'ports', '[]', 'published'], toInt],
  [[...S, 'ulimits', '*'], toInt],
  [[...S, 'ulimits', '*', 'hard'], toInt],
  [[...S, 'ulimits', '*', 'soft'], toInt],
  [[...S, 'privileged'], toBool],
  [[...S, 'oom_score_adj'], toInt],
  [[...S, 'read_only'], toBool],
  [[...S, 'stdin_open'], toBool],
  [[...S, 'tty'], toBool],
  [[...S, 'volumes', '[]', 'read_only'], toBool],
  [[...S, 'volumes', '[]', 'volume', 'nocopy'], toBool],
  [['networks', '*', 'external'], toBool],
  [['networks', '*', 'internal'], toBool],
  [['networks', '*', 'attachable'], toBool],
  [['volumes', '*', 'external'], toBool],
  [['secrets', '*', 'external'], toBool],
  [['configs', '*', 'external'], toBool],
];

function casterFor(path: KeyPath): Cast | undefined {
  outer: for (const [pattern, cast] of CASTS) {
    if (pattern.length !== path.length) continue;
    for (let i = 0; i < pattern.length; i++) {
      const p = pattern[i];
      const seg = path[i];
      if (p === '*') {
        // Docker matches `*` against any segment, including a list's `[]`.
        continue;
      }
      if (p === '[]' ? typeof seg !== 'number' : seg !== p) continue outer;
    }
    return cast;
  }
  return undefined;
}

export interface InterpolateOptions {
  lookup: Lookup;
  /** Compose-spec substitution (`${A:-${B}}`, `${A:+x}`) instead of Docker's. */
  compat?: boolean;
}

/**
 * Substitutes variables in every string value of a parsed file (keys are never touched) and
 * casts the values Docker casts. Reports every failure with its position; returns the new dict.
 */
export function interpolateFile(
  parsed: ParsedFile,
  opts: InterpolateOptions,
  diags: Diagnostics,
  failed: string[][] = [],
): Dict {
  const substitute = opts.compat ? substituteCompat : substituteDocker;
  const walk = (value: Value, path: (string | number)[]): Value => {
    if (typeof value === 'string') {
      if (!value.includes('$')) return value;
      const r = substitute(value, opts.lookup);
      const where = interpolationPath(path);
      if (r.error) {
        diags.add(
          parsed.positions.value(path),
          where,
          `invalid interpolation format for ${where}: ${JSON.stringify(r.error.template)}; you may need to escape any $ with another $`,
        );
        failed.push(path.map(String));
        return value;
      }
      if (r.value === value) return value;
      const cast = casterFor(path);
      if (!cast) return r.value;
      const c = cast(r.value);
      if ('error' in c) {
        diags.add(
          parsed.positions.value(path),
          where,
          `error while interpolating ${where}: failed to cast to expected type: ${c.error}`,
        );
        failed.push(path.map(String));
        return r.value;
      }
      return c.value;
    }
    // Containers are copied only when something in them changed (copy on write): the result
    // shares every unchanged part with the parsed file, which nothing modifies.
    if (Array.isArray(value)) {
      // One path array, extended and restored around each child (read only while in it).
      let out: Value[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const v = value[i] as Value;
        path.push(i);
        const r = walk(v, path);
        path.pop();
        if (r !== v && out === undefined) {
          out = value.slice(0, i);
          for (let j = 0; j < i; j++) if (isFloat(value, j)) markFloat(out, j);
        }
        if (out !== undefined) {
          out.push(r);
          if (isFloat(value, i)) markFloat(out, i);
        }
      }
      return out ?? value;
    }
    if (isDict(value)) {
      let out: Dict | undefined;
      for (const k in value) {
        const v = value[k] as Value;
        path.push(k);
        const r = walk(v, path);
        path.pop();
        if (r !== v && out === undefined) {
          out = {};
          for (const j in value) {
            if (j === k) break;
            setOwn(out, j, value[j] as Value);
            if (isFloat(value, j)) markFloat(out, j);
          }
        }
        if (out !== undefined) {
          setOwn(out, k, r);
          if (isFloat(value, k)) markFloat(out, k);
        }
      }
      return out ?? value;
    }
    return value;
  };
  return walk(parsed.dict, []) as Dict;
}
