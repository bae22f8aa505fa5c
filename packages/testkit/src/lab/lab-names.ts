/**
 * Names and addresses of a lab's parts. Interface names must fit IFNAMSIZ (15 characters), so a
 * lab has a short `tag`: its name when that has at most 8 characters, else 2 characters, '_' and
 * a 5-hex hash ('_' cannot occur in a lab name, so the two kinds never clash).
 */
import { createHash } from 'node:crypto';
import { isValidName } from '@shoal/common';
import { LabHostCountError, LabInvalidNameError } from '../errors.js';

export const MAX_HOSTS = 64;
export const DEFAULT_HOSTS = 3;
/** The underlay range of every lab (RFC 2544 benchmarking addresses). */
export const UNDERLAY = '198.18.0.0/15';
/** Port of a lab's registry on its gateway address. */
export const REGISTRY_PORT = 5000;
/** /24 blocks in 198.18.0.0/15; block 0 (198.18.0.0/24) is left to other tools. */
/**
 * Lab underlays take /24 blocks 1..383 of 198.18.0.0/15 (198.18.1.0 to 198.19.127.0); blocks
 * 384..511 (198.19.128.0/17) no underlay ever uses: the overlay pool takes the lower half, the
 * upper half (198.19.192.0/18) is left to node-local subnets (the gateway bridge) and to the
 * subnets tests give `network create --subnet`.
 */
export const SUBNET_BLOCKS = 384;

/**
 * The overlay address pool of lab clusters (DefaultAddrPool at init): 198.19.128.0/18, 64
 * networks of /24. It must not reach LAB_GATEWAY_SUBNET: a node refuses an overlay that overlaps
 * its gateway bridge.
 */
export const LAB_OVERLAY_POOL = '198.19.128.0/18';

/**
 * The gateway bridge subnet of lab shoalds (`--gwbridge-subnet`): node-local (each host is its own
 * namespace), the top /24 of 198.18.0.0/15, outside LAB_OVERLAY_POOL and every lab underlay.
 */
export const LAB_GATEWAY_SUBNET = '198.19.255.0/24';

/** Throws LabInvalidNameError unless `name` is a valid lab name. */
export function checkLabName(name: string): void {
  if (!isValidName(name)) throw new LabInvalidNameError('lab', name);
}

/** Parses a host count given on the command line (1..64). */
export function parseHostCount(value: string | number): number {
  const text = String(value).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new LabHostCountError(text);
  return n;
}

/** `h1`..`h64` */
export function hostName(index: number): string {
  return `h${index}`;
}

/** The index of a host name, or undefined if it is not `h<N>`. */
export function hostIndex(name: string): number | undefined {
  const m = /^h([1-9]\d?)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The lab's short tag used inside interface names. */
export function labTag(lab: string): string {
  if (lab.length <= 8) return lab;
  return `${lab.slice(0, 2)}_${createHash('sha256').update(lab).digest('hex').slice(0, 5)}`;
}

/** The network namespace of a host: `shoal-<lab>-<host>`. */
export function netnsName(lab: string, host: string): string {
  return `shoal-${lab}-${host}`;
}

/** Matches the namespaces of one lab (and of no other: host names are always h<N>). */
export function netnsPattern(lab: string): RegExp {
  return new RegExp(`^shoal-${lab.replace(/-/g, '\\-')}-h[1-9]\\d?$`);
}

/** The underlay bridge in the root namespace: `shl-<tag>` (at most 12 characters). */
export function bridgeName(lab: string): string {
  return `shl-${labTag(lab)}`;
}

/** The root-namespace end of a host's veth: `sv<tag>-<N>` (at most 13 characters). */
export function vethName(lab: string, index: number): string {
  return `sv${labTag(lab)}-${index}`;
}

/** Matches the root-namespace veth ends of one lab (`sv`, and `sd`/`sr` of delay relays). */
export function vethPattern(lab: string): RegExp {
  return new RegExp(`^s[vdr]${labTag(lab).replace(/-/g, '\\-')}-[1-9]\\d?$`);
}

/** The /24 of block `index` (1..511) of 198.18.0.0/15, as its first three octets. */
export function blockPrefix(index: number): string {
  return `198.${18 + Math.floor(index / 256)}.${index % 256}`;
}

/** The block a 198.18.0.0/15 address falls in, or undefined outside the range. */
export function blockOf(address: string): number | undefined {
  const m = /^198\.(18|19)\.(\d+)\.\d+/.exec(address);
  return m ? (Number(m[1]) - 18) * 256 + Number(m[2]) : undefined;
}

/** The gateway (bridge) address of a block. */
export function gatewayAddress(block: number): string {
  return `${blockPrefix(block)}.1`;
}

/** The underlay address of host `index` in a block: .11 for h1 up to .74 for h64. */
export function hostAddress(block: number, index: number): string {
  return `${blockPrefix(block)}.${10 + index}`;
}

/** The block a lab prefers (a hash of its name), so a lab tends to keep its subnet across runs. */
export function preferredBlock(lab: string): number {
  const h = createHash('sha256').update(lab).digest().readUInt32BE(0);
  return 1 + (h % (SUBNET_BLOCKS - 1));
}
