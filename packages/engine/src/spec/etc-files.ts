/**
 * A container's /etc/hosts, /etc/hostname and /etc/resolv.conf, as Docker provides them: files
 * of the container's own (in its state dir) that the engine writes and bind-mounts over the
 * image's.
 *
 * - hostname: the container's host name and a newline.
 * - hosts: with a network namespace of its own, the loopback entries (IPv4 and IPv6), then the
 *   `--add-host` entries, then one line per address of the container naming its host name (the
 *   networking code passes the addresses; with none, no such line, as Docker for `--network
 *   none`). With the host network, a copy of the host's /etc/hosts plus the `--add-host` entries.
 * - resolv.conf: the host's (systemd-resolved's upstream file when the host's only nameserver is
 *   its 127.0.0.53 stub). In a network namespace of its own, loopback nameservers cannot be
 *   reached and are dropped, IPv6 ones too (containers have no IPv6 yet), and when none is left
 *   the public defaults are used, as Docker does. `dns` replaces the nameservers (unfiltered),
 *   `dnsSearch` the search list and `dnsOptions` the options. With the host network and no
 *   overrides, the host's file unchanged.
 *
 * The networking code rewrites hosts and resolv.conf while a container runs (`rewriteHosts`,
 * `rewriteResolvConf`): files are rewritten in place, never renamed, because the container's bind
 * mount holds the inode.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ignoreErrno } from '@shoal/common';
import { InvalidSpecError } from '../errors.js';
import type { OciMount } from './oci.js';

/** A `--add-host` entry: `host` resolves to `ip` inside the container. */
export interface ExtraHost {
  host: string;
  ip: string;
}

export interface EtcFilesInput {
  hostname: string;
  /** `host` shares the host's network (and so its hosts and resolv.conf); anything else is private. */
  hostNetwork: boolean;
  extraHosts?: readonly ExtraHost[];
  /** Addresses of the container on its networks; each gets a `ip hostname` line. */
  addresses?: readonly string[];
  /** Nameservers replacing the host's. */
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  dnsOptions?: readonly string[];
}

/** Where the host files are read (tests point these at fixtures). */
export interface HostFiles {
  hosts?: string;
  resolvConf?: string;
  /** Used instead of `resolvConf` when that file names only 127.0.0.53 (systemd-resolved's stub). */
  resolvedUpstream?: string;
}

const HOST_HOSTS = '/etc/hosts';
const HOST_RESOLV = '/etc/resolv.conf';
const RESOLVED_UPSTREAM = '/run/systemd/resolve/resolv.conf';
const DEFAULT_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];

const LOOPBACK_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::\tip6-localnet',
  'ff00::\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/** Host paths of a container's three files. */
export function etcFilePaths(dir: string): { hostname: string; hosts: string; resolvConf: string } {
  return { hostname: join(dir, 'hostname'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf') };
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    ignoreErrno('ENOENT')(err);
    return '';
  }
}

// ---- validation (shared with the create request) -----------------------------------------

const LABEL = /^[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?$/;

/** A host name of an `--add-host` entry or a search domain: dot-separated labels. */
function isDomain(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => LABEL.test(l));
}

/**
 * `name:ip`, `name=ip` or `name:[ipv6]` (the docker CLI's `--add-host` forms) into an entry.
 * `host-gateway` has no meaning without a bridge network and is refused.
 */
export function parseExtraHost(value: string, field = 'add-host'): ExtraHost {
  const sep = value.includes('=') ? value.indexOf('=') : value.indexOf(':');
  if (sep <= 0) throw new InvalidSpecError(field, `${JSON.stringify(value)} is not host:ip (e.g. db:198.18.0.5)`);
  return checkExtraHost({ host: value.slice(0, sep), ip: value.slice(sep + 1).replace(/^\[(.*)\]$/, '$1') }, field);
}

export function checkExtraHost(e: ExtraHost, field = 'add-host'): ExtraHost {
  if (typeof e?.host !== 'string' || !isDomain(e.host)) {
    throw new InvalidSpecError(field, `${JSON.stringify(e?.host)} is not a valid host name`);
  }
  if (e.ip === 'host-gateway') {
    throw new InvalidSpecError(field, `${e.host}: host-gateway needs a bridge network, which Shoal does not have yet`);
  }
  if (typeof e.ip !== 'string' || isIP(e.ip) === 0) {
    throw new InvalidSpecError(field, `${e.host}: ${JSON.stringify(e.ip)} is not an IP address`);
  }
  return { host: e.host, ip: e.ip };
}

/** Checks `dns`, `dnsSearch` and `dnsOptions` as the docker CLI does. */
export function checkDns(dns: readonly string[] = [], search: readonly string[] = [], options: readonly string[] = []) {
  for (const ip of dns) {
    if (typeof ip !== 'string' || isIP(ip) === 0) {
      throw new InvalidSpecError('dns', `${JSON.stringify(ip)} is not an IP address`);
    }
  }
  for (const d of search) {
    // "." alone means "no search domains"
    if (d === '.') continue;
    if (typeof d !== 'string' || d.endsWith('.') || !isDomain(d)) {
      throw new InvalidSpecError('dns-search', `${JSON.stringify(d)} is not a domain name`);
    }
  }
  for (const o of options) {
    if (typeof o !== 'string' || !/^[^\s#;]+$/.test(o)) {
      throw new InvalidSpecError('dns-option', `${JSON.stringify(o)} is not a resolv.conf option (e.g. ndots:2)`);
    }
  }
}

// ---- contents ----------------------------------------------------------------------------

export function renderHostname(hostname: string): string {
  return `${hostname}\n`;
}

export function renderHosts(input: EtcFilesInput, hostHosts = ''): string {
  const lines: string[] = [];
  if (input.hostNetwork) {
    const text = hostHosts.endsWith('\n') || hostHosts === '' ? hostHosts : `${hostHosts}\n`;
    return text + (input.extraHosts ?? []).map((e) => `${e.ip}\t${e.host}\n`).join('');
  }
  lines.push(...LOOPBACK_HOSTS);
  for (const e of input.extraHosts ?? []) lines.push(`${e.ip}\t${e.host}`);
  for (const ip of input.addresses ?? []) lines.push(`${ip}\t${input.hostname}`);
  return `${lines.join('\n')}\n`;
}

interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
  other: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const rc: ResolvConf = { nameservers: [], search: [], options: [], other: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) rc.nameservers.push(rest[0].replace(/%.*$/, ''));
    else if (key === 'search' || key === 'domain') rc.search = rest;
    else if (key === 'options') rc.options.push(...rest);
    else rc.other.push(line);
  }
  return rc;
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || (isIP(ip) === 4 && ip.startsWith('127.'));
}

/** The host's resolv.conf text (systemd-resolved's upstream file instead of its stub). */
export function hostResolvConf(files: HostFiles = {}): string {
  const text = readText(files.resolvConf ?? HOST_RESOLV);
  const ns = parseResolvConf(text).nameservers;
  if (ns.length === 1 && ns[0] === '127.0.0.53') {
    const upstream = readText(files.resolvedUpstream ?? RESOLVED_UPSTREAM);
    if (upstream) return upstream;
  }
  return text;
}

export function renderResolvConf(input: EtcFilesInput, hostText: string): string {
  const overrides = Boolean(input.dns?.length || input.dnsSearch?.length || input.dnsOptions?.length);
  if (input.hostNetwork && !overrides) return hostText;
  const rc = parseResolvConf(hostText);
  if (input.dns?.length) {
    rc.nameservers = [...input.dns];
  } else if (!input.hostNetwork) {
    // the host's loopback resolvers are not reachable from the container's own namespace
    rc.nameservers = rc.nameservers.filter((ip) => !isLoopback(ip) && isIP(ip) === 4);
    if (rc.nameservers.length === 0) rc.nameservers = [...DEFAULT_NAMESERVERS];
  }
  if (input.dnsSearch?.length) rc.search = input.dnsSearch.filter((d) => d !== '.');
  if (input.dnsOptions?.length) rc.options = [...input.dnsOptions];
  const out = rc.nameservers.map((ip) => `nameserver ${ip}`);
  if (rc.search.length) out.push(`search ${rc.search.join(' ')}`);
  if (rc.options.length) out.push(`options ${rc.options.join(' ')}`);
  out.push(...rc.other);
  return `${out.join('\n')}\n`;
}

// ---- files -------------------------------------------------------------------------------

/** Rewrites a file in place (same inode: a bind mount of it sees the new content). */
function writeInPlace(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o644 });
}

/**
 * Writes the three files into `dir` and returns the bind mounts for them (`skip`: targets a user
 * mount covers, which win as in Docker).
 */
export function writeEtcFiles(
  dir: string,
  input: EtcFilesInput,
  opts: { files?: HostFiles; skip?: ReadonlySet<string> } = {},
): OciMount[] {
  const p = etcFilePaths(dir);
  writeInPlace(p.hostname, renderHostname(input.hostname));
  rewriteHosts(dir, input, opts.files);
  rewriteResolvConf(dir, input, opts.files);
  const mounts: OciMount[] = [];
  const add = (destination: string, source: string): void => {
    if (!opts.skip?.has(destination)) {
      mounts.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
    }
  };
  add('/etc/hostname', p.hostname);
  add('/etc/hosts', p.hosts);
  add('/etc/resolv.conf', p.resolvConf);
  return mounts;
}

/** Writes `<dir>/hosts` again, e.g. once the container's addresses are known. */
export function rewriteHosts(dir: string, input: EtcFilesInput, files: HostFiles = {}): void {
  const hostText = input.hostNetwork ? readText(files.hosts ?? HOST_HOSTS) : '';
  writeInPlace(etcFilePaths(dir).hosts, renderHosts(input, hostText));
}

/** Writes `<dir>/resolv.conf` again, e.g. to point it at an embedded DNS server. */
export function rewriteResolvConf(dir: string, input: EtcFilesInput, files: HostFiles = {}): void {
  writeInPlace(etcFilePaths(dir).resolvConf, renderResolvConf(input, hostResolvConf(files)));
}
