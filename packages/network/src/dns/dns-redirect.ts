/**
 * How a container reaches the embedded DNS server at 127.0.0.11:53, as Docker does it: the server
 * runs in the node's namespace (in the agent), and in the container's namespace an nftables table
 * `ip shoal_dns` rewrites queries to 127.0.0.11:53 (UDP and TCP) towards the server's address
 * and port on the container's uplink (the gateway bridge), with the source rewritten to the
 * container's own uplink address and a source port of NAT_PORTS (the VIP table lets only replies
 * to those ports through conntrack); conntrack undoes both on the replies. A packet from 127.0.0.1 may only leave by
 * a real interface with `route_localnet` on it, so that is set on the uplink.
 *
 * Also: the container's resolv.conf (nameserver 127.0.0.11, the host's search domains) and the
 * host's resolvers the server forwards to.
 */
import { existsSync } from 'node:fs';
import { DataPlaneError, InvalidAddressError } from '../errors.js';
import { parseIp } from '../ipv4.js';
import { NetlinkCli } from '../netlink-cli.js';
import { NAT_PORTS } from '../vip-balancer.js';

export const EMBEDDED_DNS_ADDRESS = '127.0.0.11';
export const DNS_REDIRECT_TABLE = 'shoal_dns';
const NETNS_DIR = '/run/netns';

export interface DnsRedirect {
  /** The container's namespace: a path or a name in /run/netns. */
  containerNetns: string;
  /** The container's uplink to the node (the gateway bridge side), e.g. eth1. */
  uplink: string;
  /** The container's address on that uplink (plain or CIDR). */
  uplinkAddress: string;
  /** Where the server listens in the node's namespace, reachable over the uplink. */
  server: { address: string; port: number };
  /**
   * Whether the uplink carries DNS only (a container on `--internal` networks): everything else
   * leaving by it is dropped, so the node is not a way out.
   */
  exclusive?: boolean;
}

function nsPath(ns: string): string {
  return ns.includes('/') ? ns : `${NETNS_DIR}/${ns}`;
}

/** The nft script of the redirect (pure; validates). */
export function dnsRedirectRules(r: Omit<DnsRedirect, 'containerNetns'>): string {
  const src = r.uplinkAddress.split('/')[0] ?? '';
  parseIp(src, 'uplink address');
  parseIp(r.server.address, 'DNS server address');
  if (!Number.isInteger(r.server.port) || r.server.port < 1 || r.server.port > 65535)
    throw new InvalidAddressError(`invalid DNS server port ${r.server.port}`);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(r.uplink)) throw new InvalidAddressError(`invalid interface name "${r.uplink}"`);
  const to = `${r.server.address}:${r.server.port}`;
  return [
    `table ip ${DNS_REDIRECT_TABLE} {}`,
    `flush table ip ${DNS_REDIRECT_TABLE}`,
    `table ip ${DNS_REDIRECT_TABLE} {`,
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    `    ip daddr ${EMBEDDED_DNS_ADDRESS} udp dport 53 dnat to ${to}`,
    `    ip daddr ${EMBEDDED_DNS_ADDRESS} tcp dport 53 dnat to ${to}`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    `    ip daddr ${r.server.address} udp dport ${r.server.port} oifname "${r.uplink}" snat to ${src}:${NAT_PORTS}`,
    `    ip daddr ${r.server.address} tcp dport ${r.server.port} oifname "${r.uplink}" snat to ${src}:${NAT_PORTS}`,
    '  }',
    ...(r.exclusive
      ? [
          '  chain uplink_only_dns {',
          '    type filter hook output priority 0; policy accept;',
          `    oifname "${r.uplink}" ip daddr ${r.server.address} udp dport ${r.server.port} accept`,
          `    oifname "${r.uplink}" ip daddr ${r.server.address} tcp dport ${r.server.port} accept`,
          `    oifname "${r.uplink}" drop`,
          '  }',
        ]
      : []),
    '}',
    '',
  ].join('\n');
}

/** Installs (or replaces) the redirect in a container's namespace. */
export async function installDnsRedirect(r: DnsRedirect): Promise<void> {
  const script = dnsRedirectRules(r);
  const path = nsPath(r.containerNetns);
  if (!existsSync(path)) throw new DataPlaneError(`container network namespace ${path} does not exist`);
  const ct = new NetlinkCli(path);
  await ct.exec('sysctl', ['-q', '-w', `net.ipv4.conf.${r.uplink}.route_localnet=1`]);
  await ct.exec('nft', ['-f', '-'], script);
}

/** Removes the redirect (idempotent; a namespace already gone is fine). */
export async function removeDnsRedirect(containerNetns: string): Promise<void> {
  const path = nsPath(containerNetns);
  if (!existsSync(path)) return;
  await new NetlinkCli(path).execAbsentOk('nft', ['delete', 'table', 'ip', DNS_REDIRECT_TABLE]);
}

/** The IPv4 nameservers of a resolv.conf (the host's), for the server to forward to. */
export function resolvConfNameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m?.[1] && /^\d+\.\d+\.\d+\.\d+$/.test(m[1])) out.push(m[1]);
  }
  return out;
}

/** A container's resolv.conf: the embedded server, the host's search domains, `ndots:0`. */
export function containerResolvConf(hostResolvConf: string): string {
  const lines = [`nameserver ${EMBEDDED_DNS_ADDRESS}`];
  const search = hostResolvConf.split('\n').find((l) => /^\s*(search|domain)\s/.test(l));
  if (search) lines.push(`search ${search.trim().split(/\s+/).slice(1).join(' ')}`);
  lines.push('options ndots:0');
  return lines.join('\n') + '\n';
}
