/**
 * Published ports in the node's namespace, with nftables (table `ip shoal_ports`):
 *
 * - ingress mode (the routing mesh): every node DNATs connections to any of its own addresses on
 *   the published port to the service's tasks on the `ingress` overlay, in turn, and masquerades
 *   them out of its ingress interface (the node's own attachment to the ingress overlay), so the
 *   task answers this node, which undoes the rewrite. The client's address is lost, as in Docker;
 * - host mode: only the task's node publishes, to the task's gateway-bridge address, without
 *   masquerade (the task's default route is this node).
 *
 * Both prerouting (from outside) and output (from the node itself) are rewritten. A published
 * port without tasks is refused at once (TCP reset, ICMP port unreachable for UDP). `apply`
 * replaces the whole table atomically; IPv4 forwarding is turned on.
 */
import { InvalidAddressError } from './errors.js';
import { formatIp, parseIp } from './ipv4.js';
import { NetlinkCli } from './netlink-cli.js';
import { SerialQueue } from './serial-queue.js';

export const PORTS_TABLE = 'shoal_ports';

export interface PublishedPort {
  protocol: 'tcp' | 'udp';
  publishedPort: number;
  targetPort: number;
  /** Task addresses (plain or CIDR) reachable from the node's namespace. */
  backends: readonly string[];
}

export interface PublishOptions {
  /** Interfaces to masquerade DNATed connections out of (the ingress interface); none for host mode. */
  masqueradeVia?: readonly string[];
}

function checkPort(p: number, what: string): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535)
    throw new InvalidAddressError(`invalid ${what} ${p}: must be 1..65535`);
}

/** The nft script for these ports (pure; validates, refuses a port published twice). */
export function publishedPortRules(ports: readonly PublishedPort[], options: PublishOptions = {}): string {
  const seen = new Set<string>();
  const dnat: string[] = [];
  const refuse: string[] = [];
  for (const p of ports) {
    if (p.protocol !== 'tcp' && p.protocol !== 'udp')
      throw new InvalidAddressError(`invalid protocol "${String(p.protocol)}": tcp or udp`);
    checkPort(p.publishedPort, 'published port');
    checkPort(p.targetPort, 'target port');
    const key = `${p.publishedPort}/${p.protocol}`;
    if (seen.has(key)) throw new InvalidAddressError(`port ${key} is published twice`);
    seen.add(key);
    const backends = [...new Set(p.backends.map((b) => formatIp(parseIp(b.split('/')[0] ?? b, 'task address'))))];
    const match = `fib daddr type local ${p.protocol} dport ${p.publishedPort}`;
    if (backends.length === 0)
      refuse.push(`    ${match} reject with ${p.protocol === 'tcp' ? 'tcp reset' : 'icmp type port-unreachable'}`);
    else if (backends.length === 1) dnat.push(`    ${match} dnat to ${backends[0]}:${p.targetPort}`);
    else {
      const map = backends.map((b, i) => `${i} : ${b}`).join(', ');
      dnat.push(`    ${match} dnat to numgen inc mod ${backends.length} map { ${map} } : ${p.targetPort}`);
    }
  }
  const via = options.masqueradeVia ?? [];
  for (const i of via)
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(i)) throw new InvalidAddressError(`invalid interface name "${i}"`);
  const masq =
    via.length > 0 ? [`    ct status dnat oifname { ${via.map((i) => `"${i}"`).join(', ')} } masquerade`] : [];
  return [
    `table ip ${PORTS_TABLE} {}`,
    `flush table ip ${PORTS_TABLE}`,
    `table ip ${PORTS_TABLE} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority -100; policy accept;',
    ...dnat,
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...dnat,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    ...masq,
    '  }',
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    ...refuse,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The published ports of one node. */
export class PortPublisher {
  private readonly host: NetlinkCli;
  private readonly queue = new SerialQueue();

  /** @param hostNetns path of the node's network namespace; default: this process's. */
  constructor(hostNetns?: string) {
    this.host = new NetlinkCli(hostNetns);
  }

  /** Replaces the node's published ports (validated first; one atomic nft transaction). */
  async apply(ports: readonly PublishedPort[], options: PublishOptions = {}): Promise<void> {
    const script = publishedPortRules(ports, options);
    await this.queue.run(async () => {
      await this.host.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
      await this.host.exec('nft', ['-f', '-'], script);
    });
  }

  /** Removes the table (idempotent). */
  remove(): Promise<void> {
    return this.queue.run(async () => {
      await this.host.execAbsentOk('nft', ['delete', 'table', 'ip', PORTS_TABLE]);
    });
  }
}
