/**
 * The node side of an overlay network, on real kernel objects through iproute2:
 *
 * - one namespace per network and node, `shoal-ov-<hostTag>-<network id, 12 chars>` (namespace
 *   names are global to the machine, and in a lab every host is itself a namespace of one
 *   machine, so the node's tag keeps them apart), holding bridge `br0` (the gateway address) and
 *   `vxlan0` (the network's VNI, UDP 4789, learning off, ARP answered from static neighbour
 *   entries: `proxy`). The VXLAN device is made in the node's own namespace and then moved in, so
 *   its UDP socket stays on the node's underlay address (the local VTEP);
 * - peers (a task elsewhere: its VTEP, MAC and IP) as a permanent FDB entry and a permanent
 *   neighbour entry on vxlan0, added and removed idempotently;
 * - a container's attachment: a veth pair, one end on br0, the other its eth0 (or ethN) with the
 *   task's address, MAC 02:42:<IP> and MTU = underlay MTU - 50; the namespace goes with the last
 *   attachment.
 *
 * What exists is read back from the kernel, not kept in memory, so a restarted agent carries on.
 * Operations on one network are serialised.
 */
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { silentLogger, type Logger } from '@shoal/common';
import { DataPlaneError, InvalidAddressError } from './errors.js';
import { contains, parseCidr, parseIp } from './ipv4.js';
import { macFromIp } from './mac.js';
import { NetlinkCli } from './netlink-cli.js';

/** VXLAN's IANA port, Docker's default data path port. */
export const VXLAN_PORT = 4789;
/** Bytes VXLAN adds to each frame (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). */
export const VXLAN_OVERHEAD = 50;
const NETNS_DIR = '/run/netns';
/** Present when the kernel has br_netfilter (per-namespace sysctls since Linux 5.3). */
const BRIDGE_NF_SYSCTL = '/proc/sys/net/bridge/bridge-nf-call-iptables';

export interface OverlayNodeOptions {
  /** Short, host-unique tag ([a-z0-9], 1..16) in namespace names, e.g. part of the node ID. */
  hostTag: string;
  /** The node's underlay address: the local VTEP. */
  vtepAddress: string;
  /** Path of the network namespace the node lives in; default: this process's. */
  hostNetns?: string;
  /** UDP port of VXLAN (`--data-path-port`); default 4789. */
  dataPathPort?: number;
  logger?: Logger;
}

export interface OverlayNetworkSpec {
  /** The network's ID. */
  id: string;
  vni: number;
  /** CIDR of the network, e.g. 198.19.128.0/24. */
  subnet: string;
  /** The gateway address (given to br0). */
  gateway: string;
}

export interface OverlayPeer {
  /** The VTEP (underlay address) of the node the task runs on. */
  vtep: string;
  /** The task's address on the overlay (plain or CIDR). */
  address: string;
  /** Default: derived from the address (02:42:...). */
  mac?: string;
}

export interface AttachRequest {
  /** A stable id of the attachment (task ID + network), naming the bridge side of the veth. */
  endpointId: string;
  /** The container's network namespace: a path (/proc/PID/ns/net, a bind mount) or a name in /run/netns. */
  containerNetns: string;
  /** The task's address in CIDR form, e.g. 198.19.128.5/24. */
  address: string;
  /** Interface name in the container; default eth0. */
  ifname?: string;
}

export interface Attachment {
  ifname: string;
  /** The bridge side of the veth, in the overlay namespace. */
  hostIfname: string;
  mac: string;
  mtu: number;
  address: string;
}

interface IpLink {
  ifname: string;
  mtu?: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; local?: string; learning?: boolean } };
  addr_info?: { family?: string; local?: string }[];
}

export class OverlayDataPlane {
  private readonly host: NetlinkCli;
  /** For commands that name their namespace (`ip -n`): no need to enter the node's first. */
  private readonly any = new NetlinkCli();
  private readonly port: number;
  private readonly log: Logger;
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Networks this instance made or checked whole (reset when it removes one): no kernel read per attach. */
  private readonly ready = new Set<string>();
  private mtu: number | undefined;

  constructor(readonly options: OverlayNodeOptions) {
    if (!/^[a-z0-9]{1,16}$/.test(options.hostTag))
      throw new InvalidAddressError(`invalid overlay host tag "${options.hostTag}": 1..16 of [a-z0-9]`);
    parseIp(options.vtepAddress, 'VTEP address');
    this.port = options.dataPathPort ?? VXLAN_PORT;
    if (!Number.isInteger(this.port) || this.port < 1024 || this.port > 49151)
      throw new InvalidAddressError(`invalid data path port ${this.port}: must be 1024..49151`);
    this.host = new NetlinkCli(options.hostNetns);
    this.log = options.logger ?? silentLogger();
  }

  /** The namespace holding a network's bridge and VXLAN device on this node. */
  namespaceName(networkId: string): string {
    if (!/^[A-Za-z0-9]+$/.test(networkId)) throw new InvalidAddressError(`invalid network ID "${networkId}"`);
    return `shoal-ov-${this.options.hostTag}-${networkId.slice(0, 12).toLowerCase()}`;
  }

  /** Whether the network's namespace exists on this node. */
  hasNetwork(networkId: string): boolean {
    return existsSync(`${NETNS_DIR}/${this.namespaceName(networkId)}`);
  }

  /** The underlay MTU: that of the interface holding the VTEP address (read once per instance). */
  async underlayMtu(): Promise<number> {
    this.mtu ??= await this.readUnderlayMtu();
    return this.mtu;
  }

  private async readUnderlayMtu(): Promise<number> {
    const links = await this.host.json<IpLink[]>(['addr', 'show']);
    const link = links.find((l) => l.addr_info?.some((a) => a.local === this.options.vtepAddress));
    if (!link?.mtu)
      throw new DataPlaneError(`VTEP address ${this.options.vtepAddress} is on no interface of this node`);
    return link.mtu;
  }

  /** Creates the network's namespace, bridge and VXLAN device unless they exist as they should. */
  ensureNetwork(spec: OverlayNetworkSpec): Promise<void> {
    return this.locked(spec.id, () => this.ensureNetworkLocked(spec));
  }

  /** Removes the network's namespace and all in it (veths to containers too). Idempotent. */
  removeNetwork(networkId: string): Promise<void> {
    return this.locked(networkId, () => this.removeNetworkLocked(networkId));
  }

  /** Programs a peer task: permanent neighbour (IP -> MAC) and FDB (MAC -> VTEP) entries. Idempotent. */
  addPeer(networkId: string, peer: OverlayPeer): Promise<void> {
    return this.locked(networkId, async () => {
      const ns = this.requireNs(networkId);
      const ip = plainIp(peer.address);
      const mac = peer.mac ?? macFromIp(ip);
      parseIp(peer.vtep, 'peer VTEP address');
      const neigh = ['-n', ns, 'neigh', 'replace', ip, 'lladdr', mac, 'dev', 'vxlan0', 'nud', 'permanent'];
      const fdb = ['-n', ns, 'fdb', 'replace', mac, 'dev', 'vxlan0', 'dst', peer.vtep, 'self', 'permanent'];
      await Promise.all([this.any.exec('ip', neigh), this.any.exec('bridge', fdb)]);
    });
  }

  /** Removes a peer's entries; entries (or a network) already gone are fine. */
  removePeer(networkId: string, peer: OverlayPeer): Promise<void> {
    return this.locked(networkId, async () => {
      const ns = this.namespaceName(networkId);
      if (!this.hasNetwork(networkId)) return;
      const ip = plainIp(peer.address);
      const mac = peer.mac ?? macFromIp(ip);
      const neigh = ['-n', ns, 'neigh', 'del', ip, 'dev', 'vxlan0'];
      const fdb = ['-n', ns, 'fdb', 'del', mac, 'dev', 'vxlan0', 'dst', peer.vtep, 'self'];
      await Promise.all([this.any.execAbsentOk('ip', neigh), this.any.execAbsentOk('bridge', fdb)]);
    });
  }

  /**
   * Adds and removes several peers at once: one `ip -batch` for the neighbour entries and one
   * `bridge -batch` for the FDB entries, whatever their number. Same entries as addPeer/removePeer;
   * a removal of an entry already gone is fine (`-force` goes on past it). Returns false (and does
   * nothing) when the network is not on this node.
   */
  updatePeers(networkId: string, add: readonly OverlayPeer[], remove: readonly OverlayPeer[]): Promise<boolean> {
    return this.locked(networkId, async () => {
      if (!this.hasNetwork(networkId)) return false;
      if (add.length === 0 && remove.length === 0) return true;
      const ns = this.namespaceName(networkId);
      const neigh: string[][] = [];
      const fdb: string[][] = [];
      for (const p of remove) {
        const ip = plainIp(p.address);
        neigh.push(['neigh', 'del', ip, 'dev', 'vxlan0']);
        fdb.push(['fdb', 'del', p.mac ?? macFromIp(ip), 'dev', 'vxlan0', 'dst', p.vtep, 'self']);
      }
      for (const p of add) {
        const ip = plainIp(p.address);
        const mac = p.mac ?? macFromIp(ip);
        parseIp(p.vtep, 'peer VTEP address');
        neigh.push(['neigh', 'replace', ip, 'lladdr', mac, 'dev', 'vxlan0', 'nud', 'permanent']);
        fdb.push(['fdb', 'replace', mac, 'dev', 'vxlan0', 'dst', p.vtep, 'self', 'permanent']);
      }
      const text = (lines: string[][]): string => lines.map((l) => l.join(' ')).join('\n') + '\n';
      const force = remove.length > 0 ? ['-force'] : [];
      const [a, b] = await Promise.all([
        this.any.tryExec('ip', ['-n', ns, ...force, '-batch', '-'], text(neigh)),
        this.any.tryExec('bridge', ['-n', ns, ...force, '-batch', '-'], text(fdb)),
      ]);
      for (const [what, r] of [
        ['ip neigh', a],
        ['bridge fdb', b],
      ] as const) {
        // with -force a failing removal is reported but the rest is done: only absent entries are fine
        const errs = r.stderr
          .split('\n')
          .filter(
            (l) => l.trim() !== '' && !/^Command failed/.test(l) && !/No such file|Cannot find|not found/.test(l),
          );
        if (r.code !== 0 && (remove.length === 0 || errs.length > 0))
          throw new DataPlaneError(`${what} batch in ${ns} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
      }
      return true;
    });
  }

  /** The peers programmed on a network (from the kernel's FDB and neighbour tables). */
  async peers(networkId: string): Promise<OverlayPeer[]> {
    if (!this.hasNetwork(networkId)) return [];
    const ns = this.namespaceName(networkId);
    const fdb = JSON.parse(
      (await this.any.exec('bridge', ['-j', '-n', ns, 'fdb', 'show', 'dev', 'vxlan0'])) || '[]',
    ) as { mac: string; dst?: string }[];
    const neigh = await this.any.json<{ dst: string; lladdr?: string }[]>(['-n', ns, 'neigh', 'show', 'dev', 'vxlan0']);
    const vtepOf = new Map(fdb.filter((f) => f.dst).map((f) => [f.mac, f.dst ?? '']));
    return neigh
      .filter((n) => n.lladdr && vtepOf.has(n.lladdr))
      .map((n) => ({ address: n.dst, mac: n.lladdr ?? '', vtep: vtepOf.get(n.lladdr ?? '') ?? '' }));
  }

  /** Attaches a container's namespace to the network (making the network here if needed). */
  attach(spec: OverlayNetworkSpec, req: AttachRequest): Promise<Attachment> {
    return this.locked(spec.id, async () => {
      await this.ensureNetworkLocked(spec);
      return this.attachLocked(spec, req);
    });
  }

  /**
   * Attaches a container's namespace like `attach`, in one `ip` process run in the network's
   * namespace: the veth is made there already on br0 and up, its other end moved into the
   * container's namespace with its MAC and MTU. What is left to do inside the container's namespace
   * (address, link up) is returned as `inside` lines, for the caller to run there with its own
   * commands in one process (netns-script.ts). A leftover veth of the same endpoint is replaced.
   */
  attachVeth(spec: OverlayNetworkSpec, req: AttachRequest): Promise<Attachment & { inside: string[][] }> {
    return this.locked(spec.id, async () => {
      if (!this.ready.has(spec.id) || !this.hasNetwork(spec.id)) await this.ensureNetworkLocked(spec);
      const ns = this.namespaceName(spec.id);
      const subnet = parseCidr(spec.subnet, 'overlay subnet');
      const [ip = '', len] = req.address.split('/');
      if (len !== String(subnet.prefix) || !contains(subnet, parseIp(ip, 'task address')))
        throw new InvalidAddressError(
          `task address ${req.address} is not in the network's subnet ${spec.subnet} (CIDR form)`,
        );
      const ifname = req.ifname ?? 'eth0';
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) throw new InvalidAddressError(`invalid interface name "${ifname}"`);
      const ctPath = req.containerNetns.includes('/') ? req.containerNetns : `${NETNS_DIR}/${req.containerNetns}`;
      const hostIfname = vethName(req.endpointId);
      const mtu = String((await this.underlayMtu()) - VXLAN_OVERHEAD);
      const mac = macFromIp(ip);
      const veth = [
        ['link', 'add', hostIfname, 'mtu', mtu, 'master', 'br0', 'up', 'type', 'veth'],
        ['peer', 'name', ifname, 'netns', ctPath, 'address', mac, 'mtu', mtu],
      ].flat();
      try {
        await this.any.batch([veth], ns);
      } catch (err) {
        if (!(err instanceof DataPlaneError && /File exists/.test(err.message))) throw err;
        await this.any.execAbsentOk('ip', ['-n', ns, 'link', 'del', hostIfname]);
        await this.any.batch([veth], ns);
      }
      const address = `${ip}/${subnet.prefix}`;
      this.log.info({ network: spec.id, endpoint: req.endpointId, address }, 'overlay attachment added');
      const inside = [
        ['addr', 'add', address, 'dev', ifname],
        ['link', 'set', ifname, 'up'],
      ];
      return { ifname, hostIfname, mac, mtu: Number(mtu), address, inside };
    });
  }

  /**
   * Detaches an endpoint; when it was the network's last attachment on this node the network's
   * namespace goes too. Returns whether the network was removed. Idempotent.
   */
  detach(networkId: string, endpointId: string): Promise<boolean> {
    return this.locked(networkId, async () => {
      if (!this.hasNetwork(networkId)) return true;
      const ns = this.namespaceName(networkId);
      await this.any.execAbsentOk('ip', ['-n', ns, 'link', 'del', vethName(endpointId)]);
      if ((await this.attachmentsLocked(networkId)).length > 0) return false;
      await this.removeNetworkLocked(networkId);
      return true;
    });
  }

  /** The bridge-side interface names of the network's attachments on this node. */
  attachments(networkId: string): Promise<string[]> {
    return this.locked(networkId, () => this.attachmentsLocked(networkId));
  }

  private async attachmentsLocked(networkId: string): Promise<string[]> {
    if (!this.hasNetwork(networkId)) return [];
    const links = await this.any.json<IpLink[]>(['-n', this.namespaceName(networkId), 'link', 'show', 'master', 'br0']);
    return links.map((l) => l.ifname).filter((n) => n !== 'vxlan0');
  }

  private async attachLocked(spec: OverlayNetworkSpec, req: AttachRequest): Promise<Attachment> {
    const ns = this.namespaceName(spec.id);
    const subnet = parseCidr(spec.subnet, 'overlay subnet');
    const [ip = '', len] = req.address.split('/');
    if (len !== String(subnet.prefix) || !contains(subnet, parseIp(ip, 'task address')))
      throw new InvalidAddressError(
        `task address ${req.address} is not in the network's subnet ${spec.subnet} (CIDR form)`,
      );
    const ifname = req.ifname ?? 'eth0';
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) throw new InvalidAddressError(`invalid interface name "${ifname}"`);
    const ctPath = req.containerNetns.includes('/') ? req.containerNetns : `${NETNS_DIR}/${req.containerNetns}`;
    if (!existsSync(ctPath)) throw new DataPlaneError(`container network namespace ${ctPath} does not exist`);
    const ct = new NetlinkCli(ctPath);
    const hostIfname = vethName(req.endpointId);
    const mtu = (await this.underlayMtu()) - VXLAN_OVERHEAD;
    const mac = macFromIp(ip);
    await this.any.execAbsentOk('ip', ['-n', ns, 'link', 'del', hostIfname]);
    const veth = ['link', 'add', hostIfname, 'type', 'veth', 'peer', 'name', ifname, 'netns', ctPath];
    await this.any.batch([veth, ['link', 'set', hostIfname, 'mtu', String(mtu), 'master', 'br0', 'up']], ns);
    try {
      await ct.batch([
        ['link', 'set', 'lo', 'up'],
        ['link', 'set', ifname, 'address', mac, 'mtu', String(mtu)],
        ['addr', 'add', `${ip}/${subnet.prefix}`, 'dev', ifname],
        ['link', 'set', ifname, 'up'],
      ]);
    } catch (err) {
      await this.any.execAbsentOk('ip', ['-n', ns, 'link', 'del', hostIfname]);
      throw err;
    }
    this.log.info({ network: spec.id, endpoint: req.endpointId, address: req.address }, 'overlay attachment added');
    return { ifname, hostIfname, mac, mtu, address: `${ip}/${subnet.prefix}` };
  }

  /**
   * Makes what is missing of the network here: the namespace, br0, vxlan0. A vxlan0 with another
   * VNI is replaced. Attachments already on br0 are kept (a broken device never costs running
   * containers their interface); a namespace this call made is removed again if a step fails.
   */
  private async ensureNetworkLocked(spec: OverlayNetworkSpec): Promise<void> {
    const ns = this.namespaceName(spec.id);
    const subnet = parseCidr(spec.subnet, 'overlay subnet');
    parseIp(spec.gateway, 'gateway');
    const fresh = !this.hasNetwork(spec.id);
    let links: IpLink[] = [];
    if (fresh) await this.any.exec('ip', ['netns', 'add', ns]);
    else links = await this.any.json<IpLink[]>(['-d', '-n', ns, 'link', 'show']);
    const vx = links.find((l) => l.ifname === 'vxlan0');
    const vxOk = vx?.linkinfo?.info_data?.id === spec.vni;
    const brOk = links.some((l) => l.ifname === 'br0');
    if (vxOk && brOk) {
      this.ready.add(spec.id);
      return;
    }
    if (!fresh)
      this.log.warn({ network: spec.id, namespace: ns, vxOk, brOk }, 'overlay namespace incomplete: repairing');
    const mtu = (await this.underlayMtu()) - VXLAN_OVERHEAD;
    const tmp = `svx${spec.vni.toString(16)}`;
    try {
      const inside: string[][] = [['link', 'set', 'lo', 'up']];
      if (vx && !vxOk) inside.push(['link', 'del', 'vxlan0']);
      if (!brOk)
        inside.push(
          ['link', 'add', 'br0', 'type', 'bridge'],
          ['addr', 'add', `${spec.gateway}/${subnet.prefix}`, 'dev', 'br0'],
          ['link', 'set', 'br0', 'up'],
        );
      await this.any.batch(inside, ns);
      await this.bridgeNetfilterOff(ns);
      if (!vxOk) {
        await this.host.execAbsentOk('ip', ['link', 'del', tmp]);
        // made in the node's namespace so that its UDP socket is on the underlay, then moved in
        const vxlan = ['link', 'add', tmp, 'type', 'vxlan', 'id', String(spec.vni), 'dstport', String(this.port)];
        const opts = ['local', this.options.vtepAddress, 'nolearning', 'proxy'];
        await this.host.batch([
          [...vxlan, ...opts],
          ['link', 'set', tmp, 'netns', ns],
        ]);
        await this.any.batch(
          [
            ['link', 'set', tmp, 'name', 'vxlan0'],
            ['link', 'set', 'vxlan0', 'mtu', String(mtu), 'master', 'br0', 'up'],
          ],
          ns,
        );
      }
    } catch (err) {
      await this.host.execAbsentOk('ip', ['link', 'del', tmp]);
      if (fresh) await this.any.execAbsentOk('ip', ['netns', 'del', ns]);
      throw err;
    }
    this.ready.add(spec.id);
    this.log.info({ network: spec.id, namespace: ns, vni: spec.vni, mtu }, 'overlay network made on this node');
  }

  /**
   * br_netfilter (when the kernel has it) sends every bridged frame through the IP hooks of the
   * bridge's namespace unless that namespace's `bridge-nf-call-*` sysctls say no; a new namespace
   * starts with them on. Nothing here filters at the IP layer, so frames crossing br0 skip that
   * detour (about 5% of the overlay's throughput, docs/worker.md).
   */
  private async bridgeNetfilterOff(ns: string): Promise<void> {
    if (!existsSync(BRIDGE_NF_SYSCTL)) return;
    const keys = ['iptables', 'ip6tables', 'arptables'].map((k) => `net.bridge.bridge-nf-call-${k}=0`);
    await new NetlinkCli(`${NETNS_DIR}/${ns}`).exec('sysctl', ['-q', '-w', ...keys]);
  }

  private async removeNetworkLocked(networkId: string): Promise<void> {
    const ns = this.namespaceName(networkId);
    this.ready.delete(networkId);
    if (await this.any.execAbsentOk('ip', ['netns', 'del', ns]))
      this.log.info({ network: networkId, namespace: ns }, 'overlay network removed from this node');
  }

  private requireNs(networkId: string): string {
    if (!this.hasNetwork(networkId))
      throw new DataPlaneError(`overlay network ${networkId} is not set up on this node (no attachment yet)`);
    return this.namespaceName(networkId);
  }

  private locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(
      () => undefined,
      (err: unknown) => {
        this.log.debug({ err, network: key }, 'overlay operation failed');
      },
    );
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }
}

/** The bridge side of an endpoint's veth: `vo` + 11 hex digits of a hash (15-character limit). */
export function vethName(endpointId: string): string {
  return `vo${createHash('sha256').update(endpointId).digest('hex').slice(0, 11)}`;
}

function plainIp(address: string): string {
  const ip = address.split('/')[0] ?? address;
  parseIp(ip, 'peer address');
  return ip;
}
