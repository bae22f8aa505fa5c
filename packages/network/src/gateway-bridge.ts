/**
 * The node's gateway bridge, as Docker's `docker_gwbridge`: egress for containers on overlay
 * networks (which have no way out of the overlay themselves). In the node's namespace:
 *
 * - bridge `shoal_gwbridge` holding the gateway address of a node-local subnet;
 * - an nftables table `ip shoal_gw` masquerading that subnet's traffic leaving by any other
 *   interface, and IPv4 forwarding on;
 * - per container a veth pair: `gw<hash>` on the bridge, isolated (containers on the gateway
 *   bridge cannot reach each other through it, as Docker's `enable_icc=false`), and `eth1` (or the
 *   given name) in the container with an address of the subnet and the default route via the
 *   gateway. The address is kept in the bridge side's interface alias, so a restarted agent reads
 *   the allocations back from the kernel.
 *
 * Containers of `--internal` networks are simply not attached.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { silentLogger, type Logger } from '@shoal/common';
import { DataPlaneError, InvalidAddressError, SubnetOverlapError } from './errors.js';
import { formatCidr, formatIp, overlaps, parseCidr } from './ipv4.js';
import { macFromIp } from './mac.js';
import { NetlinkCli } from './netlink-cli.js';
import { SerialQueue } from './serial-queue.js';
import { SubnetAddresses, subnetConfig } from './subnet-addresses.js';

export const GWBRIDGE_NAME = 'shoal_gwbridge';
export const GWBRIDGE_TABLE = 'shoal_gw';
/** Docker's docker_gwbridge subnet. Labs and tests give their own (inside 198.18.0.0/15). */
export const DEFAULT_GWBRIDGE_SUBNET = '172.18.0.0/16';
const NETNS_DIR = '/run/netns';

export interface GatewayBridgeOptions {
  /** The node-local subnet (default 172.18.0.0/16); its first address is the gateway. */
  subnet?: string;
  /** Path of the network namespace the node lives in; default: this process's. */
  hostNetns?: string;
  logger?: Logger;
}

export interface GatewayAttachRequest {
  endpointId: string;
  /** A path or a name in /run/netns. */
  containerNetns: string;
  /** Default eth1 (eth0 is the first overlay). */
  ifname?: string;
  /**
   * Whether the container's default route goes via the gateway (egress); default true. Without
   * it (a container only on `--internal` networks) the leg reaches the node alone, e.g. for DNS.
   */
  defaultRoute?: boolean;
}

export interface GatewayAttachment {
  ifname: string;
  hostIfname: string;
  address: string;
  gateway: string;
}

interface IpLink {
  ifname: string;
  ifalias?: string;
  mtu?: number;
}
interface IpRoute {
  dst: string;
  dev?: string;
}

export class GatewayBridge {
  private readonly host: NetlinkCli;
  private readonly log: Logger;
  private readonly addresses: SubnetAddresses;
  private readonly queue = new SerialQueue();
  private loaded = false;
  /** The bridge, NAT table and forwarding were made or checked by this instance (until teardown). */
  private ensured = false;

  constructor(readonly options: GatewayBridgeOptions = {}) {
    const subnet = options.subnet ?? DEFAULT_GWBRIDGE_SUBNET;
    this.addresses = new SubnetAddresses(GWBRIDGE_NAME, subnetConfig(subnet));
    this.host = new NetlinkCli(options.hostNetns);
    this.log = options.logger ?? silentLogger();
  }

  get subnet(): string {
    return formatCidr(this.addresses.config.subnet);
  }

  get gateway(): string {
    return formatIp(this.addresses.config.gateway);
  }

  /** Makes the bridge, NAT table and forwarding (idempotent); reads existing attachments back. */
  ensure(): Promise<void> {
    return this.serial(() => this.ensureLocked());
  }

  /** Attaches a container: veth, address, default route via the gateway. */
  attach(req: GatewayAttachRequest): Promise<GatewayAttachment> {
    return this.serial(async () => {
      await this.ensureLocked();
      const ifname = req.ifname ?? 'eth1';
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) throw new InvalidAddressError(`invalid interface name "${ifname}"`);
      const ctPath = req.containerNetns.includes('/') ? req.containerNetns : `${NETNS_DIR}/${req.containerNetns}`;
      if (!existsSync(ctPath)) throw new DataPlaneError(`container network namespace ${ctPath} does not exist`);
      const hostIfname = gwVethName(req.endpointId);
      await this.releaseLink(hostIfname);
      const ip = this.addresses.allocate(hostIfname);
      const address = this.addresses.cidrOf(ip);
      const ct = new NetlinkCli(ctPath);
      try {
        await this.host.exec('ip', [
          'link',
          'add',
          hostIfname,
          'type',
          'veth',
          'peer',
          'name',
          ifname,
          'netns',
          ctPath,
        ]);
        await this.host.exec('ip', ['link', 'set', hostIfname, 'alias', address, 'master', GWBRIDGE_NAME, 'up']);
        await this.host.exec('bridge', ['link', 'set', 'dev', hostIfname, 'isolated', 'on']);
        await ct.exec('ip', ['link', 'set', 'lo', 'up']);
        await ct.exec('ip', ['link', 'set', ifname, 'address', macFromIp(formatIp(ip))]);
        await ct.exec('ip', ['addr', 'add', address, 'dev', ifname]);
        await ct.exec('ip', ['link', 'set', ifname, 'up']);
        if (req.defaultRoute !== false)
          await ct.exec('ip', ['route', 'replace', 'default', 'via', this.gateway, 'dev', ifname]);
      } catch (err) {
        this.addresses.release(ip);
        await this.host.execAbsentOk('ip', ['link', 'del', hostIfname]);
        throw err;
      }
      return { ifname, hostIfname, address, gateway: this.gateway };
    });
  }

  /**
   * Attaches a container like `attach`, in one `ip` process in the node's namespace: the veth made
   * with its container end moved into the container's namespace (with its MAC), the bridge end
   * holding the address as alias, on the bridge, isolated and up. The bridge is checked once per
   * instance, not per attach. What is left to do inside the container's namespace (address, link
   * up, default route) is returned as `inside` lines, for the caller to run there in one process
   * with its own commands (netns-script.ts). A leftover veth of the same endpoint is replaced.
   */
  attachVeth(req: GatewayAttachRequest): Promise<GatewayAttachment & { inside: string[][] }> {
    return this.serial(async () => {
      if (!this.ensured) await this.ensureLocked();
      const ifname = req.ifname ?? 'eth1';
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) throw new InvalidAddressError(`invalid interface name "${ifname}"`);
      const ctPath = req.containerNetns.includes('/') ? req.containerNetns : `${NETNS_DIR}/${req.containerNetns}`;
      const hostIfname = gwVethName(req.endpointId);
      const ip = this.addresses.allocate(hostIfname);
      const address = this.addresses.cidrOf(ip);
      const lines = [
        [
          'link',
          'add',
          hostIfname,
          'type',
          'veth',
          'peer',
          'name',
          ifname,
          'netns',
          ctPath,
          'address',
          macFromIp(formatIp(ip)),
        ],
        ['link', 'set', hostIfname, 'alias', address, 'master', GWBRIDGE_NAME, 'up'],
        ['link', 'set', hostIfname, 'type', 'bridge_slave', 'isolated', 'on'],
      ];
      try {
        try {
          await this.host.batch(lines);
        } catch (err) {
          if (!(err instanceof DataPlaneError)) throw err;
          // a leftover veth of this endpoint, or the bridge gone behind our back: make sure, once more
          await this.releaseLink(hostIfname, ip);
          await this.ensureLocked();
          await this.host.batch(lines);
        }
      } catch (err) {
        this.addresses.release(ip);
        await this.host.execAbsentOk('ip', ['link', 'del', hostIfname]);
        throw err;
      }
      const inside = [
        ['addr', 'add', address, 'dev', ifname],
        ['link', 'set', ifname, 'up'],
        ...(req.defaultRoute !== false ? [['route', 'replace', 'default', 'via', this.gateway, 'dev', ifname]] : []),
      ];
      return { ifname, hostIfname, address, gateway: this.gateway, inside };
    });
  }

  /** Detaches an endpoint (idempotent). */
  detach(endpointId: string): Promise<void> {
    return this.serial(async () => {
      await this.load();
      await this.releaseLink(gwVethName(endpointId));
    });
  }

  /** The bridge-side names of the attachments, with their addresses. */
  attachments(): Promise<{ hostIfname: string; address: string }[]> {
    return this.serial(() => this.readAttachments());
  }

  /** Removes the bridge (and every attachment) and the NAT table. Idempotent. */
  teardown(): Promise<void> {
    return this.serial(async () => {
      await this.host.execAbsentOk('ip', ['link', 'del', GWBRIDGE_NAME]);
      for (const a of await this.readVeths()) await this.host.execAbsentOk('ip', ['link', 'del', a.ifname]);
      await this.host.execAbsentOk('nft', ['delete', 'table', 'ip', GWBRIDGE_TABLE]);
      this.loaded = false;
      this.ensured = false;
      this.addresses.clear();
    });
  }

  private async ensureLocked(): Promise<void> {
    const links = await this.host.json<IpLink[]>(['link', 'show']);
    if (!links.some((l) => l.ifname === GWBRIDGE_NAME)) {
      const subnet = this.addresses.config.subnet;
      const routes = await this.host.json<IpRoute[]>(['route', 'show']);
      for (const r of routes) {
        if (r.dst === 'default' || r.dev === GWBRIDGE_NAME) continue;
        const dst = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`, 'route', false);
        if (overlaps(dst, subnet))
          throw new SubnetOverlapError(this.subnet, r.dst, `a route of this node (dev ${r.dev ?? '?'})`);
      }
      await this.host.exec('ip', ['link', 'add', GWBRIDGE_NAME, 'type', 'bridge']);
      await this.host.exec('ip', ['addr', 'add', `${this.gateway}/${subnet.prefix}`, 'dev', GWBRIDGE_NAME]);
      await this.host.exec('ip', ['link', 'set', GWBRIDGE_NAME, 'up']);
      this.log.info({ subnet: this.subnet }, 'gateway bridge made');
    }
    await this.host.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    await this.host.exec('nft', ['-f', '-'], natRules(this.subnet));
    await this.load();
    this.ensured = true;
  }

  /** Reads the attachments back from the kernel once (a restarted agent). */
  private async load(): Promise<void> {
    if (this.loaded) return;
    for (const a of await this.readAttachments()) this.addresses.mark(this.addresses.parseOwn(a.address), a.hostIfname);
    this.loaded = true;
  }

  private async readVeths(): Promise<IpLink[]> {
    const links = await this.host.json<IpLink[]>(['link', 'show', 'type', 'veth']);
    return links.filter((l) => /^gw[0-9a-f]{11}$/.test(l.ifname));
  }

  private async readAttachments(): Promise<{ hostIfname: string; address: string }[]> {
    const links = await this.host
      .json<IpLink[]>(['-d', 'link', 'show', 'master', GWBRIDGE_NAME])
      .catch((err: unknown) => {
        if (err instanceof DataPlaneError && /does not exist|Cannot find device/.test(err.message)) return [];
        throw err;
      });
    return links.filter((l) => l.ifalias).map((l) => ({ hostIfname: l.ifname, address: l.ifalias ?? '' }));
  }

  /** Deletes a veth and frees the address its alias holds (unless it is `keep`, just allocated). */
  private async releaseLink(hostIfname: string, keep?: number): Promise<void> {
    const links = await this.readAttachments();
    const held = links.find((l) => l.hostIfname === hostIfname);
    await this.host.execAbsentOk('ip', ['link', 'del', hostIfname]);
    if (!held) return;
    const ip = this.addresses.parseOwn(held.address);
    if (ip !== keep) this.addresses.release(ip);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}

/** The NAT table, replaced as a whole (nft applies the file atomically). */
function natRules(subnet: string): string {
  return [
    `table ip ${GWBRIDGE_TABLE} {}`,
    `flush table ip ${GWBRIDGE_TABLE}`,
    `table ip ${GWBRIDGE_TABLE} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr ${subnet} oifname != "${GWBRIDGE_NAME}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The bridge side of an endpoint's gateway veth: `gw` + 11 hex digits of a hash. */
export function gwVethName(endpointId: string): string {
  return `gw${createHash('sha256').update(endpointId).digest('hex').slice(0, 11)}`;
}
