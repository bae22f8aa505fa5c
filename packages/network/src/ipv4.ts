/**
 * IPv4 addresses and CIDR prefixes as unsigned 32-bit numbers: parsing with clear errors,
 * formatting, containment and overlap. Pure.
 */
import { InvalidAddressError } from './errors.js';

/** A parsed IPv4 prefix: `base` has no host bits set. */
export interface Cidr {
  base: number;
  prefix: number;
}

/** Parses a dotted-quad IPv4 address; `what` names the input in the error. */
export function parseIp(text: string, what = 'address'): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255))
    throw new InvalidAddressError(`invalid ${what} "${text}": not an IPv4 address (a.b.c.d)`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The number of addresses in a prefix of length `prefix`. */
export function prefixSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

/**
 * Parses `a.b.c.d/len`. With `strict` (the default) host bits must be zero, as a subnet must be:
 * `198.19.128.5/24` is refused with the subnet it should have been.
 */
export function parseCidr(text: string, what = 'subnet', strict = true): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw new InvalidAddressError(`invalid ${what} "${text}": not a CIDR (a.b.c.d/len)`);
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(lenText) || Number(lenText) > 32)
    throw new InvalidAddressError(`invalid ${what} "${text}": prefix length must be 0..32`);
  const prefix = Number(lenText);
  const addr = parseIp(text.slice(0, slash), what);
  const base = addr - (addr % prefixSize(prefix));
  if (strict && base !== addr)
    throw new InvalidAddressError(
      `invalid ${what} "${text}": host bits are set (did you mean ${formatIp(base)}/${prefix}?)`,
    );
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

/** The last address of a prefix. */
export function lastIp(c: Cidr): number {
  return c.base + prefixSize(c.prefix) - 1;
}

export function contains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip <= lastIp(c);
}

/** True when `inner` lies wholly inside `outer`. */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && contains(outer, inner.base);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= lastIp(b) && b.base <= lastIp(a);
}
