/**
 * Checks of the addresses and values the cluster commands take, done before any call so that bad
 * input fails with one line and changes nothing.
 */
import { isIP } from 'node:net';
import { InvalidArgumentError } from '@shoal/common';

export const CLUSTER_PORT = 2377;

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Splits `host`, `host:port`, `[v6]:port` or `v6`; the port is undefined when not given. */
function splitHostPort(flag: string, v: string): { host: string; port?: number } {
  let host = v;
  let port: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(v);
  if (v6) {
    host = v6[1] ?? '';
    port = v6[2];
  } else if ((v.match(/:/g) ?? []).length === 1) {
    [host, port] = v.split(':') as [string, string];
  }
  const bad = (why: string): InvalidArgumentError =>
    new InvalidArgumentError(`invalid ${flag} ${JSON.stringify(v)}: ${why}`);
  if (host === '') throw bad('no host');
  if (!isIP(host) && !HOSTNAME.test(host)) throw bad('host is neither an IP address nor a host or interface name');
  if (port === undefined) return { host };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    throw bad(`port ${JSON.stringify(port)} is not a number from 1 to 65535`);
  return { host, port: Number(port) };
}

function join(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `--listen-addr HOST[:PORT]` → `HOST:PORT` (default port 2377). */
export function parseListenAddr(v: string): string {
  const { host, port } = splitHostPort('--listen-addr', v);
  return join(host, port ?? CLUSTER_PORT);
}

/** `--advertise-addr HOST[:PORT]` (an IP, a host name or an interface name), as given. */
export function parseAdvertiseAddr(v: string): string {
  splitHostPort('--advertise-addr', v);
  return v;
}

/** A manager's address to join through: `HOST[:PORT]` → `HOST:PORT` (default 2377). */
export function parseRemoteAddr(v: string): string {
  const { host, port } = splitHostPort('remote address', v);
  return join(host, port ?? CLUSTER_PORT);
}

/** `--availability active|pause|drain`. */
export function parseAvailability(v: string): string {
  const a = v.toLowerCase();
  if (a !== 'active' && a !== 'pause' && a !== 'drain')
    throw new InvalidArgumentError(`invalid --availability ${JSON.stringify(v)}: expected active, pause or drain`);
  return a;
}

/** `--role worker|manager`. */
export function parseRole(v: string): string {
  const r = v.toLowerCase();
  if (r !== 'worker' && r !== 'manager')
    throw new InvalidArgumentError(`invalid --role ${JSON.stringify(v)}: expected worker or manager`);
  return r;
}

/** An IPv4 CIDR (`198.19.0.0/16`) in canonical form; host bits must be zero. */
export function parseCidr(flag: string, v: string): { cidr: string; prefix: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(v.trim());
  const bad = (why: string): InvalidArgumentError =>
    new InvalidArgumentError(`invalid ${flag} ${JSON.stringify(v)}: ${why}`);
  if (!m) throw bad('expected an IPv4 CIDR such as 10.0.0.0/8');
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) throw bad('not a valid address or prefix length');
  const n = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  if (n % size !== 0) throw bad(`host bits are set (the network is ${intToIp(n - (n % size))}/${prefix})`);
  return { cidr: `${octets.join('.')}/${prefix}`, prefix };
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** `--default-addr-pool` values (repeatable, comma lists) with `--default-addr-pool-mask-length`. */
export function parseAddrPools(
  values: readonly string[],
  maskLength: string | undefined,
): {
  pools: string[];
  subnetSize?: number;
} {
  const pools = values.flatMap((v) => v.split(',')).filter((v) => v.trim() !== '');
  const parsed = pools.map((p) => parseCidr('--default-addr-pool', p));
  if (maskLength === undefined) return { pools: parsed.map((p) => p.cidr) };
  if (!/^\d{1,2}$/.test(maskLength) || Number(maskLength) > 29 || Number(maskLength) < 1)
    throw new InvalidArgumentError(
      `invalid --default-addr-pool-mask-length ${JSON.stringify(maskLength)}: expected a number from 1 to 29`,
    );
  const size = Number(maskLength);
  for (const p of parsed)
    if (p.prefix > size)
      throw new InvalidArgumentError(
        `invalid --default-addr-pool-mask-length ${size}: larger subnets than the pool ${p.cidr} itself`,
      );
  return { pools: parsed.map((p) => p.cidr), subnetSize: size };
}
