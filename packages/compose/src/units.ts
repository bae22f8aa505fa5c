/** Go-compatible parsers for the value syntaxes Compose files use (durations, sizes, CPUs, ports, shell words). */

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5
  μs: 1e3, // U+03BC
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * A number as Go's float32 holds it, written as the shortest decimal that is the same float32:
 * what Docker's JSON prints for a float32 field (`max_failure_ratio: 0.3` → 0.3, not
 * 0.30000001192092896). The wire's 32-bit float is the same either way.
 */
export function float32(x: number): number {
  const f = Math.fround(x);
  if (!Number.isFinite(f)) return f;
  for (let p = 1; p <= 9; p++) {
    const n = Number(f.toPrecision(p));
    if (Math.fround(n) === f) return n;
  }
  return f;
}

/** Go's time.ParseDuration: nanoseconds, or undefined when `s` is not a valid duration. */
export function parseDuration(s: string): number | undefined {
  let rest = s;
  let neg = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    neg = rest.startsWith('-');
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  const re = /^([0-9]*)(\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)/u;
  while (rest !== '') {
    const m = re.exec(rest);
    if (!m) return undefined;
    const int = m[1] ?? '';
    const frac = m[3] ?? '';
    if (int === '' && frac === '') return undefined;
    const unit = DURATION_UNITS[m[4] ?? ''] ?? 0;
    total += Number(int === '' ? '0' : int) * unit + (frac === '' ? 0 : Number(`0.${frac}`) * unit);
    rest = rest.slice(m[0].length);
  }
  total = Math.trunc(total);
  return neg ? -total : total;
}

const SIZE = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/;
const BINARY: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** go-units RAMInBytes: `512`, `50M`, `1.5G`, `512MB`, `2 GiB` (powers of 1024). */
export function parseRAMInBytes(s: string): number | undefined {
  const m = SIZE.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!Number.isFinite(n)) return undefined;
  const mult = m[2] ? (BINARY[m[2].toLowerCase()] ?? 1) : 1;
  return Math.trunc(n * mult);
}

/**
 * Docker's ParseCPUs: a rational number (`0.5`, `1/4`, `1e-1`) times 1e9, exact. Throws with
 * Docker's message when it is not a number or has more than 9 decimals.
 */
export function parseCPUs(value: string): number {
  const r = parseRational(value);
  if (!r) throw new Error(`failed to parse ${value} as a rational number`);
  const [num, den] = r;
  const scaled = num * 1_000_000_000n;
  if (scaled % den !== 0n) throw new Error('value is too precise');
  return Number(scaled / den);
}

function parseRational(s: string): [bigint, bigint] | undefined {
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const a = s.slice(0, slash);
    const b = s.slice(slash + 1);
    if (!/^[+-]?[0-9]+$/.test(a) || !/^[0-9]+$/.test(b)) return undefined;
    const d = BigInt(b);
    if (d === 0n) return undefined;
    return [BigInt(a), d];
  }
  const m = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/.exec(s);
  if (!m || ((m[2] ?? '') === '' && (m[3] ?? '') === '')) return undefined;
  const digits = `${m[2] ?? ''}${m[3] ?? ''}` || '0';
  let num = BigInt(digits);
  if (m[1] === '-') num = -num;
  const exp = -(m[3] ?? '').length + Number(m[4] ?? '0');
  let den = 1n;
  if (exp >= 0) num *= 10n ** BigInt(exp);
  else den = 10n ** BigInt(-exp);
  return [num, den];
}

/** A port spec go-connections would refuse. */
export class PortSpecError extends Error {}

/** One port mapping, as Docker's ConvertPortToPortConfig produces it. */
export interface PortMapping {
  protocol: string;
  target: number;
  published: number;
  mode: 'ingress';
  hostIP: string;
}

function parsePortRange(s: string): [number, number] | undefined {
  if (s === '') return undefined;
  const parse = (x: string) => (/^[0-9]+$/.test(x) && Number(x) <= 65535 ? Number(x) : undefined);
  if (!s.includes('-')) {
    const v = parse(s);
    return v === undefined ? undefined : [v, v];
  }
  const parts = s.split('-');
  if (parts.length !== 2) return undefined;
  const a = parse(parts[0] ?? '');
  const b = parse(parts[1] ?? '');
  if (a === undefined || b === undefined || b < a) return undefined;
  return [a, b];
}

function isIP(s: string): boolean {
  if (/^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/.test(s))
    return true;
  if (!s.includes(':')) return false;
  return /^[0-9a-fA-F:.]+$/.test(s) && (s.match(/::/g) ?? []).length <= 1;
}

/**
 * A short-syntax port (`[ip:][published[-range]:]target[-range][/proto]`) expanded into one
 * mapping per published port, in Docker's order (container ports sorted as `port/proto`
 * strings). Throws with go-connections' message on a bad spec.
 */
export function parsePortSpec(raw: string): PortMapping[] {
  let proto = 'tcp';
  let rest = raw;
  const slash = raw.split('/');
  if (slash.length > 1 && slash[1] !== '') {
    proto = slash[1] ?? 'tcp';
    rest = slash[0] ?? '';
  } else if (slash.length > 1) {
    rest = slash[0] ?? '';
  }
  proto = proto.toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw new PortSpecError(`invalid proto: ${proto}`);
  const parts = rest.split(':');
  const n = parts.length;
  const containerPort = parts[n - 1] ?? '';
  let ip = '';
  let hostPort = '';
  if (n === 2) hostPort = parts[0] ?? '';
  else if (n === 3) {
    ip = parts[0] ?? '';
    hostPort = parts[1] ?? '';
  } else if (n > 3) {
    ip = parts.slice(0, n - 2).join(':');
    hostPort = parts[n - 2] ?? '';
  }
  if (ip !== '' && !isIP(ip.replace(/^\[/, '').replace(/\]$/, '')))
    throw new PortSpecError(`invalid IP address: ${ip}`);
  if (containerPort === '') throw new PortSpecError(`no port specified: ${raw}<empty>`);
  const cr = parsePortRange(containerPort);
  if (!cr) throw new PortSpecError(`invalid containerPort: ${containerPort}`);
  let hr: [number, number] = [0, 0];
  if (hostPort !== '') {
    const h = parsePortRange(hostPort);
    if (!h) throw new PortSpecError(`invalid hostPort: ${hostPort}`);
    hr = h;
    if (cr[1] - cr[0] !== hr[1] - hr[0] && cr[1] !== cr[0])
      throw new PortSpecError(
        `invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`,
      );
  }
  const entries: { key: string; target: number; hostStart: number; hostEnd: number; hasHost: boolean }[] = [];
  for (let i = 0; i <= cr[1] - cr[0]; i++) {
    const target = cr[0] + i;
    let hs = 0;
    let he = 0;
    if (hostPort !== '') {
      if (cr[1] === cr[0] && hr[1] !== hr[0]) {
        hs = hr[0];
        he = hr[1];
      } else {
        hs = he = hr[0] + i;
      }
    }
    entries.push({ key: `${target}/${proto}`, target, hostStart: hs, hostEnd: he, hasHost: hostPort !== '' });
  }
  entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const out: PortMapping[] = [];
  for (const e of entries) {
    for (let p = e.hostStart; p <= e.hostEnd; p++) {
      out.push({ protocol: proto, target: e.target, published: e.hasHost ? p : 0, mode: 'ingress', hostIP: ip });
    }
  }
  return out;
}

/** True when `raw` is a valid port spec (the schema's `ports` format). */
export function isPortSpec(raw: string): boolean {
  try {
    parsePortSpec(raw);
    return true;
  } catch (e) {
    if (e instanceof PortSpecError) return false;
    throw e;
  }
}

/**
 * google/shlex word splitting, as Docker splits a string `command` or `entrypoint`: blanks
 * separate words, '...' is literal, "..." and bare backslashes escape the next character,
 * `#` at the start of a word starts a comment. Throws on an unclosed quote or trailing escape.
 */
export function shlexSplit(s: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  const blank = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  while (i < s.length) {
    const c = s[i] as string;
    if (word === undefined) {
      if (blank(c)) {
        i++;
        continue;
      }
      if (c === '#') {
        while (i < s.length && s[i] !== '\n') i++;
        continue;
      }
      word = '';
    }
    if (blank(c)) {
      words.push(word);
      word = undefined;
      i++;
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= s.length) throw new Error('EOF found after escape character');
      word += s[i + 1];
      i += 2;
      continue;
    }
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error('EOF found when expecting closing quote');
      word += s.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new Error('EOF found when expecting closing quote');
        const d = s[i] as string;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\') {
          if (i + 1 >= s.length) throw new Error('EOF found after escape character');
          word += s[i + 1];
          i += 2;
          continue;
        }
        word += d;
        i++;
      }
      continue;
    }
    word += c;
    i++;
  }
  if (word !== undefined) words.push(word);
  return words;
}
