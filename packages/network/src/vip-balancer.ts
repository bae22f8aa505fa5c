/**
 * VIP load balancing without IPVS (this kernel has none): in a container's network namespace an
 * nftables table `ip shoal_vip` rewrites each new connection to a service VIP to one of the
 * service's task addresses, in turn (`numgen inc`), before it leaves the container; conntrack
 * keeps an established connection on its task and reverses the rewrite on replies, so no source
 * NAT is needed. All ports of the VIP are balanced, as Docker's VIP does. A VIP without tasks
 * refuses connections at once (ICMP host unreachable) instead of letting them time out.
 *
 * `apply` replaces the whole table in one nftables transaction (through the node's `NftHelper`,
 * or `nft -f`), so an update (a task stopped, started, turned unhealthy) takes effect for the
 * next connection, with no moment where the VIP has no rules.
 *
 * Conntrack only where NAT needs it: a nat chain turns conntrack on for every packet of the
 * namespace, which costs bulk overlay traffic about a sixth of its throughput. So TCP and UDP
 * skip conntrack (`notrack` at raw priority) unless they go to a VIP or to 127.0.0.0/8 (the DNS
 * redirect), arrive on loopback, or arrive on a port of NAT_PORTS: connections to a VIP leave
 * with a source port from NAT_PORTS (as the DNS redirect's queries do), which the kernel never
 * picks as a local ephemeral port (32768-60999), so their replies are the only inbound packets
 * conntrack must see. ICMP stays tracked (errors about tracked connections, pings to a VIP).
 */
import { existsSync } from 'node:fs';
import { DataPlaneError, InvalidAddressError } from './errors.js';
import { formatIp, parseIp } from './ipv4.js';
import { NetlinkCli } from './netlink-cli.js';
import { spawnNft, type NftRunner } from './nft-helper.js';
import { SerialQueue } from './serial-queue.js';

export const VIP_TABLE = 'shoal_vip';
/**
 * Source ports of the connections a container's nat rules rewrite (to a VIP, to the embedded DNS
 * server): above the kernel's default ephemeral range (net.ipv4.ip_local_port_range
 * 32768-60999), so a reply is known by its destination port without a conntrack lookup. 4,535
 * connections at once from one container to one task's port.
 */
export const NAT_PORTS = '61000-65535';
const NETNS_DIR = '/run/netns';

export interface VipService {
  /** The service's VIP on a network the container is on (plain or CIDR form). */
  vip: string;
  /** The addresses of its running, healthy tasks on that network. */
  backends: readonly string[];
}

function plain(address: string, what: string): string {
  return formatIp(parseIp(address.split('/')[0] ?? address, what));
}

/** The nft script of the table for these services (pure; validates every address). */
export function vipRules(services: readonly VipService[]): string {
  const seen = new Set<string>();
  const rules: string[] = [];
  for (const s of services) {
    const vip = plain(s.vip, 'VIP');
    if (seen.has(vip)) throw new InvalidAddressError(`VIP ${vip} is given twice`);
    seen.add(vip);
    const backends = [...new Set(s.backends.map((b) => plain(b, `task address behind VIP ${vip}`)))];
    if (backends.length === 0) rules.push(`    ip daddr ${vip} reject with icmp type host-unreachable`);
    else if (backends.length === 1) rules.push(`    ip daddr ${vip} dnat to ${backends[0]}`);
    else {
      const map = backends.map((b, i) => `${i} : ${b}`).join(', ');
      rules.push(`    ip daddr ${vip} dnat to numgen inc mod ${backends.length} map { ${map} }`);
    }
  }
  // A nat chain cannot reject: VIPs without tasks are refused in a filter chain on output.
  const rejects = rules.filter((r) => r.includes(' reject '));
  const dnats = rules.filter((r) => !r.includes(' reject '));
  const tracked = ['127.0.0.0/8', ...seen].join(', ');
  const vips = [...seen].join(', ');
  return [
    `table ip ${VIP_TABLE} {}`,
    `flush table ip ${VIP_TABLE}`,
    `table ip ${VIP_TABLE} {`,
    '  chain raw_prerouting {',
    '    type filter hook prerouting priority raw; policy accept;',
    '    iifname "lo" accept',
    `    meta l4proto { tcp, udp } th dport != ${NAT_PORTS} notrack`,
    '  }',
    '  chain raw_output {',
    '    type filter hook output priority raw; policy accept;',
    `    ip daddr { ${tracked} } accept`,
    '    meta l4proto { tcp, udp } notrack',
    '  }',
    ...(vips
      ? [
          '  chain postrouting_nat {',
          '    type nat hook postrouting priority srcnat; policy accept;',
          `    oifname != "lo" ct original ip daddr { ${vips} } meta l4proto { tcp, udp } masquerade to :${NAT_PORTS}`,
          '  }',
        ]
      : []),
    '  chain output_nat {',
    '    type nat hook output priority -100; policy accept;',
    ...dnats,
    '  }',
    '  chain output_filter {',
    '    type filter hook output priority filter; policy accept;',
    ...rejects,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The VIP table of one container's namespace. */
export class VipBalancer {
  private readonly ns: NetlinkCli;
  private readonly queue = new SerialQueue();

  /**
   * @param containerNetns a path, or a name in /run/netns
   * @param nft what applies the table: the node's `NftHelper` (no process per update), or by
   *   default `nsenter nft -f` per update
   */
  constructor(
    containerNetns: string,
    private readonly nft: NftRunner = spawnNft,
  ) {
    const path = containerNetns.includes('/') ? containerNetns : `${NETNS_DIR}/${containerNetns}`;
    this.ns = new NetlinkCli(path);
    this.path = path;
  }

  readonly path: string;
  /** forget() was called: the namespace is going, nothing is applied there any more. */
  private gone = false;

  /** Replaces the container's VIP rules with these services (atomically). */
  async apply(services: readonly VipService[]): Promise<void> {
    const script = vipRules(services);
    await this.serial(async () => {
      if (this.gone || !existsSync(this.path))
        throw new DataPlaneError(`container network namespace ${this.path} does not exist`);
      await this.nft.apply(this.path, script);
    });
  }

  /**
   * The namespace goes: the nft helper lets go of it, after the updates queued before; later ones
   * are refused (they would make the helper hold the namespace again).
   */
  forget(): Promise<void> {
    return this.serial(async () => {
      this.gone = true;
      await this.nft.forget?.(this.path);
    });
  }

  /** Removes the table (idempotent; a namespace already gone is fine). */
  remove(): Promise<void> {
    return this.serial(async () => {
      if (!existsSync(this.path)) return;
      await this.ns.execAbsentOk('nft', ['delete', 'table', 'ip', VIP_TABLE]);
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}
