/**
 * The value syntaxes of docker's service flags, parsed as the docker CLI parses them: Go
 * durations (`1m30s`, in nanoseconds), memory sizes in binary units (`512m`, `1.5GiB`), CPU
 * counts as exact decimals (`0.25` → 250000000 NanoCPUs) and unsigned integers. A bad value is
 * one line naming the flag and the value, docker's `invalid argument "V" for "--flag" flag: ...`.
 */
import { InvalidArgumentError } from '@shoal/common';

/** The one-line refusal of a flag value. */
export function flagError(flag: string, value: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid argument ${JSON.stringify(value)} for "${flag}" flag: ${why}`);
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * A Go duration (`300ms`, `1.5h`, `2h45m`, `-1s`, `0`) in nanoseconds. A bare number other than
 * 0 has no unit and is refused, as Go's time.ParseDuration refuses it.
 */
export function parseGoDuration(flag: string, value: string): number {
  const s = value.trim();
  const sign = s.startsWith('-') ? -1 : 1;
  const body = s.replace(/^[-+]/, '');
  if (body === '0') return 0;
  if (body === '') throw flagError(flag, value, `time: invalid duration ${JSON.stringify(value)}`);
  let total = 0;
  let rest = body;
  while (rest !== '') {
    const m = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/.exec(rest);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) {
      const why = /^\d+(\.\d*)?$/.test(rest) ? 'missing unit in duration' : 'invalid duration';
      throw flagError(flag, value, `time: ${why} ${JSON.stringify(value)}`);
    }
    const unit = DURATION_UNITS[m[3] ?? ''];
    if (unit === undefined)
      throw flagError(flag, value, `time: unknown unit ${JSON.stringify(m[3])} in duration ${JSON.stringify(value)}`);
    const whole = Number(m[1] || '0');
    const frac = m[2] ? Number(`0.${m[2]}`) : 0;
    total += whole * unit + Math.round(frac * unit);
    rest = rest.slice(m[0].length);
  }
  if (!Number.isSafeInteger(total)) throw flagError(flag, value, `time: invalid duration ${JSON.stringify(value)}`);
  return sign * total;
}

/** A duration that may not be negative (docker's PositiveDurationOpt: the health flags). */
export function parsePositiveDuration(flag: string, value: string): number {
  const ns = parseGoDuration(flag, value);
  if (ns < 0) throw flagError(flag, value, 'duration cannot be negative');
  return ns;
}

const RAM_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/**
 * A memory size as docker's RAMInBytes reads it: a number, an optional space, an optional unit
 * letter (k, m, g, t, p: powers of 1024, any case), an optional `i` and an optional `b`.
 */
export function parseRamInBytes(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value);
  const num = m ? Number(m[1]) : NaN;
  if (!m || !Number.isFinite(num)) throw flagError(flag, value, `invalid size: '${value}'`);
  const bytes = Math.trunc(num * (RAM_UNITS[(m[2] ?? '').toLowerCase()] ?? 1));
  if (!Number.isSafeInteger(bytes)) throw flagError(flag, value, `invalid size: '${value}' is too large`);
  return bytes;
}

/**
 * A CPU count in NanoCPUs (`1.5` → 1500000000), exact as docker's big.Rat parsing: a decimal or
 * a fraction `a/b`; finer than a billionth is "too precise".
 */
export function parseNanoCpus(flag: string, value: string): number {
  const frac = /^(\d+)\/(\d+)$/.exec(value);
  if (frac) {
    const num = Number(frac[1]);
    const den = Number(frac[2]);
    if (den === 0) throw flagError(flag, value, `failed to parse ${value} as a rational number`);
    const nano = (num * 1e9) / den;
    if (!Number.isInteger(nano)) throw flagError(flag, value, 'value is too precise');
    return nano;
  }
  const m = /^(\d*)(?:\.(\d*))?$/.exec(value);
  if (!m || (m[1] === '' && (m[2] ?? '') === ''))
    throw flagError(flag, value, `failed to parse ${value} as a rational number`);
  const digits = (m[2] ?? '').replace(/0+$/, '');
  if (digits.length > 9) throw flagError(flag, value, 'value is too precise');
  const nano = Number(m[1] || '0') * 1e9 + Number(digits.padEnd(9, '0') || '0');
  if (!Number.isSafeInteger(nano)) throw flagError(flag, value, 'value out of range');
  return nano;
}

/** An unsigned integer (decimal, or 0x/0o/0b as Go's ParseUint with base 0). */
export function parseUint(flag: string, value: string): number {
  const s = value.trim();
  let n: number;
  if (/^\d+$/.test(s)) n = Number(s);
  else if (/^0[xX][0-9a-fA-F]+$/.test(s) || /^0[oO][0-7]+$/.test(s) || /^0[bB][01]+$/.test(s)) n = Number(s);
  else throw flagError(flag, value, `strconv.ParseUint: parsing ${JSON.stringify(value)}: invalid syntax`);
  if (!Number.isSafeInteger(n)) throw flagError(flag, value, 'value out of range');
  return n;
}

/** A signed integer in decimal. */
export function parseInt64(flag: string, value: string): number {
  if (!/^[-+]?\d+$/.test(value.trim()))
    throw flagError(flag, value, `strconv.ParseInt: parsing ${JSON.stringify(value)}: invalid syntax`);
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n)) throw flagError(flag, value, 'value out of range');
  return n;
}

/** Bytes in docker's human units (`64MiB`, `1.5GiB`), as `service inspect --pretty` prints them. */
export function bytesSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i] ?? 'B'}`;
}

/** Nanoseconds as a Go duration string (`1m30s`, `500ms`, `0s`), for `--pretty`. */
export function goDurationString(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let rest = Math.abs(ns);
  if (rest < 1e9) {
    const [unit, size] = rest < 1e3 ? ['ns', 1] : rest < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    return `${neg ? '-' : ''}${Number((rest / size).toFixed(6))}${unit}`;
  }
  const h = Math.floor(rest / 3600e9);
  rest -= h * 3600e9;
  const m = Math.floor(rest / 60e9);
  rest -= m * 60e9;
  const s = Number((rest / 1e9).toFixed(9));
  return `${neg ? '-' : ''}${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`;
}
