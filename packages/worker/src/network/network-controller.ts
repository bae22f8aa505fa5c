/**
 * The node side of overlay networking, driven by the Agent: the NetworkState assignments (every
 * endpoint and service of each network a task of this node is on, and of the ingress network)
 * and the tasks' NetworksAttachments become kernel objects on this node:
 *
 * - a sandbox per task that has networks (task-sandbox.ts), made before its container is created
 *   and removed when the task ends;
 * - overlays only while a sandbox (or the ingress sandbox) uses them, with the peers (FDB and
 *   neighbour entries) of every endpoint on another node, kept equal to the states;
 * - the DNS records of each network in the node's embedded DNS server (node-dns.ts);
 * - each sandbox's VIP table (backends: the running tasks of each service on its networks);
 * - the ingress sandbox (on every node with an ingress attachment) and published ports
 *   (ingress-sandbox.ts).
 *
 * Every change to the kernel runs in one queue; a burst of state changes costs one sync. The
 * controller lives in the node's own network namespace (the daemon's): the DNS server's socket is
 * opened there.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { AssignmentChange, Network, NetworkState, Node, PortConfig, Task } from '@shoal/api';
import { errnoCode, errorMessage, type Logger } from '@shoal/common';
import type { ContainerCreateOptions } from '@shoal/engine';
import {
  DataPlaneError,
  DEFAULT_GWBRIDGE_SUBNET,
  EMBEDDED_DNS_ADDRESS,
  GatewayBridge,
  NftHelper,
  OverlayDataPlane,
  SerialQueue,
  VipBalancer,
  gwVethName,
  installDnsRedirect,
  requireEncryptionSupportFor,
  resolvConfNameservers,
  type OverlayPeer,
} from '@shoal/network';
import { NetworkAttachmentError, NetworkGatewayOverlapError } from '../errors.js';
import { IngressSandbox } from './ingress-sandbox.js';
import {
  dnsRecords,
  hostPorts,
  hostPortsOf,
  ingressPorts,
  isIngress,
  isInternal,
  overlapsGateway,
  overlaySpec,
  plainAddress,
  remotePeers,
  servedThroughService,
  vipServices,
} from './network-views.js';
import { NodeDns } from './node-dns.js';
import { addLeg, adoptLeg, removeLeg } from './sandbox-legs.js';
import {
  buildSandbox,
  destroySandbox,
  overlayEndpointId,
  sandboxName,
  sandboxNetworks,
  type SandboxDeps,
  type SandboxNetwork,
  type TaskSandbox,
} from './task-sandbox.js';

export interface NodeNetworkOptions {
  /** This node's ID (its own endpoints are not peers). */
  nodeId: string;
  /** Host-unique tag ([a-z0-9], 1..16) in namespace names (several nodes share /run/netns in a lab). */
  hostTag: string;
  /** The node's underlay address (VTEP), as the managers know it (Node.Status.Addr). */
  vtepAddress: string;
  /** The gateway bridge's node-local subnet (default Docker's 172.18.0.0/16). */
  gatewaySubnet?: string;
  /** VXLAN's UDP port (default 4789). */
  dataPathPort?: number;
  /** The host's resolv.conf (search domains, and the resolvers the DNS server forwards to). */
  resolvConf?: () => string;
  /** The `shoal-nft` program (default: the one built in @shoal/network). */
  nftHelper?: string;
  logger: Logger;
}

/** What the engine needs to create a task's container in its sandbox. */
export interface TaskNetworkOptions {
  create: Pick<ContainerCreateOptions, 'network' | 'dns' | 'dnsSearch' | 'dnsOptions'>;
  /** The task's addresses on its (non-ingress) overlays, for /etc/hosts. */
  addresses: string[];
}

/** A task's sandbox in the making (`prepare`). */
export interface SandboxPrep {
  /** Resolves once the sandbox's namespace exists: the container can be prepared in it. */
  options: Promise<TaskNetworkOptions>;
  /** Resolves once the sandbox is wired and the node's peers, DNS and VIPs include it. */
  ready: Promise<void>;
}

const INGRESS_LB_PREFIX = 'lb-';

/** For a promise whose outcome its other holder sees (the caller, the next in a chain). */
function handledElsewhere(): void {
  // nothing: see the doc comment
}

export class NetworkController {
  private readonly states = new Map<string, NetworkState>();
  private readonly sandboxes = new Map<string, TaskSandbox>();
  private readonly taskPorts = new Map<string, PortConfig[]>();
  private readonly running = new Set<string>();
  /** Per network present here: the peers last programmed (to skip unchanged ones). */
  private readonly peersKey = new Map<string, string>();
  private overlay: OverlayDataPlane;
  private readonly gateway: GatewayBridge;
  private readonly dns: NodeDns;
  private readonly ingress: IngressSandbox;
  /** Applies the sandboxes' VIP tables without a process per update. */
  private readonly nft: NftHelper;
  private readonly queue = new SerialQueue();
  private readonly log: Logger;
  private node: Node | undefined;
  /** A sync queued and not started yet: later callers join it. */
  private pendingSync: Promise<void> | undefined;
  /** Per task, the last of its prepares and releases (they run in order, tasks at once). */
  private readonly taskChains = new Map<string, Promise<unknown>>();
  /** Sandboxes being built (the gateway bridge stays while any is). */
  private building = 0;
  private gatewayUsed = false;
  private ingressClashLogged: string | undefined;
  private closed = false;
  /** Wall-clock time of the first state change not yet taken by a sync (its trace's `received`). */
  private changedAt: number | undefined;
  /** `network connect` legs (sandbox-legs.ts): the leg's task ID → the task whose sandbox it joins. */
  private readonly legHosts = new Map<string, string>();
  /** Legs to take back once their host's sandbox is taken back (restart: any order). */
  private readonly legsToAdopt = new Map<string, Task[]>();

  constructor(private readonly opts: NodeNetworkOptions) {
    this.log = opts.logger.child({ component: 'network' });
    this.overlay = this.makeOverlay(opts.vtepAddress);
    this.gateway = new GatewayBridge({ subnet: opts.gatewaySubnet ?? DEFAULT_GWBRIDGE_SUBNET, logger: this.log });
    this.dns = new NodeDns(() => resolvConfNameservers(this.resolvConf()), this.log);
    this.nft = new NftHelper({ logger: this.log, ...(opts.nftHelper ? { path: opts.nftHelper } : {}) });
    this.ingress = new IngressSandbox(`/proc/${process.pid}/ns/net`, this.log, undefined);
  }

  /** Applies the Network assignments of one message (a complete set replaces every state). */
  applyChanges(changes: readonly AssignmentChange[], complete: boolean): void {
    const before = this.states.size;
    if (complete) this.states.clear();
    let changed = complete && before > 0;
    for (const c of changes) {
      const state = c.Assignment?.Network;
      const id = state?.Network?.ID;
      if (!state || !id) continue;
      if (c.Action === 'remove') this.states.delete(id);
      else this.states.set(id, state);
      changed = true;
    }
    if (changed) {
      this.changedAt ??= Date.now();
      this.scheduleSync();
    }
  }

  /** The node as the managers see it: its VTEP (Status.Addr) and its ingress load-balancer address. */
  setNode(node: Node): void {
    this.node = node;
    const addr = node.Status?.Addr;
    if (addr && addr !== '0.0.0.0' && addr !== this.overlay.options.vtepAddress) {
      this.log.info({ vtep: addr }, 'underlay address (VTEP) from the managers');
      this.overlay = this.makeOverlay(addr);
    }
    this.scheduleSync();
  }

  /** Whether a task gets a sandbox: it is on a network, or publishes a port in host mode. */
  needsSandbox(task: Task): boolean {
    return (task.NetworksAttachments?.length ?? 0) > 0 || hostPortsOf(task.Endpoint?.Ports).length > 0;
  }

  /**
   * Starts making the task's sandbox and returns at once. `options` resolves as soon as the
   * sandbox's namespace exists, with the create options that put the container in it, so the
   * container's bundle (rootfs, mounts) can be prepared while the sandbox is wired; `ready`
   * resolves once it is wired and this node's peers, DNS and VIPs include it: the container must
   * not start before. Sandboxes of different tasks are built at once; prepares and releases of one
   * task run in order. An encrypted network on a kernel without ESP is refused before anything is
   * made.
   */
  prepare(task: Task): SandboxPrep {
    const taskId = task.ID ?? '';
    const host = this.legHosts.get(taskId);
    if (host !== undefined) return this.prepareLeg(task, host);
    let netnsMade: () => void = () => undefined;
    const made = new Promise<void>((resolve) => (netnsMade = resolve));
    const ready = this.perTask(taskId, async () => {
      if (this.closed) throw new NetworkAttachmentError(taskId, 'the node agent is stopping');
      const nets = this.sandboxNetworksOf(task);
      for (const n of nets) await requireEncryptionSupportFor(n.network.Spec ?? {});
      this.refuseGatewayOverlap(taskId, nets);
      const old = this.sandboxes.get(taskId);
      this.sandboxes.delete(taskId);
      if (old) await destroySandbox(this.deps(), old);
      this.gatewayUsed = true;
      this.building++;
      try {
        const services = this.vipServicesOf(new Set(nets.filter((n) => !isIngress(n.network)).map((n) => n.spec.id)));
        const sb = await buildSandbox(this.deps(), taskId, nets, {
          vip: { services, key: JSON.stringify(services) },
          onNetns: netnsMade,
        });
        this.sandboxes.set(taskId, sb);
      } finally {
        this.building--;
      }
      this.taskPorts.set(taskId, hostPortsOf(task.Endpoint?.Ports));
      await this.syncSoon(); // peers, DNS and VIPs before the container starts
    });
    const options = Promise.race([made, ready]).then(() => this.createOptionsOf(task));
    // the caller may stop waiting (its task was cancelled): a failure here is its to see or not
    ready.catch(handledElsewhere);
    options.catch(handledElsewhere);
    return { options, ready };
  }

  /**
   * Task `legId` (a network-attachment task of `network connect`) is a leg of `hostId`'s sandbox:
   * its prepare, adopt and release add, take back and remove a leg there (sandbox-legs.ts)
   * instead of a sandbox of its own. Set before its prepare or adopt.
   */
  setLegHost(legId: string, hostId: string): void {
    this.legHosts.set(legId, hostId);
  }

  /** The task whose sandbox task `taskId` is a leg of, if it is one. */
  legHostOf(taskId: string): string | undefined {
    return this.legHosts.get(taskId);
  }

  /** The legs on task `hostId`'s sandbox (their task IDs). */
  legsOf(hostId: string): string[] {
    return [...this.legHosts].filter(([, h]) => h === hostId).map(([leg]) => leg);
  }

  /** `prepare` of a leg: after the host's prepares and releases, in the host's sandbox. */
  private prepareLeg(task: Task, hostId: string): SandboxPrep {
    const taskId = task.ID ?? '';
    const ready = this.perTask(hostId, async () => {
      if (this.closed) throw new NetworkAttachmentError(taskId, 'the node agent is stopping');
      const sb = this.sandboxes.get(hostId);
      if (!sb) throw new NetworkAttachmentError(taskId, `the sandbox it joins (task ${hostId}) is gone`);
      const nets = this.sandboxNetworksOf(task);
      const n = nets[0];
      if (nets.length !== 1 || n === undefined)
        throw new NetworkAttachmentError(taskId, `a leg is on one network, not ${nets.length}`);
      await requireEncryptionSupportFor(n.network.Spec ?? {});
      this.refuseGatewayOverlap(taskId, nets);
      if (sb.overlays.some((o) => o.networkId === n.spec.id))
        throw new NetworkAttachmentError(
          taskId,
          `its sandbox is already on network ${n.network.Spec?.Name ?? n.spec.id}`,
        );
      await addLeg(this.deps(), sb, taskId, n);
      await this.syncSoon(); // peers, DNS and VIPs of the network in the sandbox
    });
    const options = ready.then(() => {
      const opts = this.createOptionsOf(task);
      return {
        ...opts,
        create: { ...opts.create, network: { path: `/run/netns/${sandboxName(this.opts.hostTag, hostId)}` } },
      };
    });
    ready.catch(handledElsewhere);
    options.catch(handledElsewhere);
    return { options, ready };
  }

  /** `release` of a leg: removes it from its host's sandbox (if both are still there). */
  private releaseLeg(taskId: string, hostId: string): Promise<void> {
    this.legHosts.delete(taskId);
    return this.perTask(hostId, async () => {
      const sb = this.sandboxes.get(hostId);
      if (!sb?.overlays.some((o) => o.leg === taskId)) return;
      await removeLeg(this.deps(), sb, taskId);
      await this.syncSoon();
    });
  }

  /** `adopt` of a leg: taken back now if its host's sandbox is, else once the host's is. */
  private adoptLegOf(task: Task, hostId: string): Promise<void> {
    return this.queue.run(async () => {
      const sb = this.sandboxes.get(hostId);
      if (!sb) {
        this.legsToAdopt.set(hostId, [...(this.legsToAdopt.get(hostId) ?? []), task]);
        return;
      }
      await this.adoptLegsLocked(sb, [task]);
      await this.sync();
    });
  }

  private async adoptLegsLocked(sb: TaskSandbox, legs: readonly Task[]): Promise<void> {
    for (const leg of legs) {
      const [n] = this.sandboxNetworksOf(leg);
      if (n && !(await adoptLeg(this.deps(), sb, leg.ID ?? '', n)))
        this.log.warn(
          { task: sb.taskId, leg: leg.ID },
          'a network connect leg of an earlier agent is not in the sandbox',
        );
    }
  }

  /** The create options of a task's container in its sandbox (pure: names and addresses). */
  private createOptionsOf(task: Task): TaskNetworkOptions {
    const path = `/run/netns/${sandboxName(this.opts.hostTag, task.ID ?? '')}`;
    const rc = this.resolvConf();
    const search = rc.split('\n').find((l) => /^\s*(search|domain)\s/.test(l));
    return {
      create: {
        network: { path },
        dns: [EMBEDDED_DNS_ADDRESS],
        ...(search ? { dnsSearch: search.trim().split(/\s+/).slice(1) } : {}),
        dnsOptions: ['ndots:0'],
      },
      addresses: this.sandboxNetworksOf(task)
        .filter((n) => !isIngress(n.network))
        .map((n) => plainAddress(n.address)),
    };
  }

  /** Runs `fn` after the task's earlier prepares and releases. */
  private perTask<T>(taskId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.taskChains.get(taskId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(handledElsewhere, handledElsewhere);
    this.taskChains.set(taskId, tail);
    void tail.then(() => {
      if (this.taskChains.get(taskId) === tail) this.taskChains.delete(taskId);
    });
    return next;
  }

  /** The VIP services of these networks, from the states. */
  private vipServicesOf(networks: ReadonlySet<string>): ReturnType<typeof vipServices> {
    return [...networks].flatMap((id) => {
      const s = this.states.get(id);
      return s ? vipServices(s) : [];
    });
  }

  /** Takes back the sandbox of a task whose container an earlier agent made (restart of shoald). */
  adopt(task: Task): Promise<void> {
    const taskId = task.ID ?? '';
    const host = this.legHosts.get(taskId);
    if (host !== undefined) return this.adoptLegOf(task, host);
    return this.queue.run(async () => {
      const path = `/run/netns/${sandboxName(this.opts.hostTag, taskId)}`;
      if (this.sandboxes.has(taskId) || !this.needsSandbox(task) || !existsSync(path)) return;
      const nets = this.sandboxNetworksOf(task);
      const gw = (await this.gateway.attachments()).find((a) => a.hostIfname === gwVethName(taskId));
      const sb: TaskSandbox = {
        taskId,
        netns: sandboxName(this.opts.hostTag, taskId),
        path,
        overlays: nets.map((n) => ({
          networkId: n.spec.id,
          endpointId: overlayEndpointId(taskId, n.spec.id),
          address: n.address,
          ingress: isIngress(n.network),
        })),
        gateway: gw
          ? {
              ifname: `eth${nets.length}`,
              address: gw.address,
              egress: nets.length === 0 || nets.some((n) => !isInternal(n.network)),
            }
          : undefined,
        vip: new VipBalancer(path, this.nft),
        vipKey: undefined,
      };
      this.sandboxes.set(taskId, sb);
      this.taskPorts.set(taskId, hostPortsOf(task.Endpoint?.Ports));
      this.gatewayUsed = true;
      if (gw) {
        const server = await this.dns.ensure(this.gateway.gateway);
        const uplink = `eth${nets.length}`;
        const exclusive = !sb.gateway?.egress;
        await installDnsRedirect({ containerNetns: path, uplink, uplinkAddress: gw.address, server, exclusive });
        this.dns.setScope(plainAddress(gw.address), sandboxNetworks(sb));
      }
      const legs = this.legsToAdopt.get(taskId) ?? [];
      this.legsToAdopt.delete(taskId);
      await this.adoptLegsLocked(sb, legs);
      await this.sync();
    });
  }

  /** A local task runs (its host-mode ports are published) or no longer does. */
  setRunning(taskId: string, running: boolean): void {
    const had = this.running.has(taskId);
    if (running) this.running.add(taskId);
    else this.running.delete(taskId);
    if (had !== running && (this.taskPorts.get(taskId)?.length ?? 0) > 0) this.scheduleSync();
  }

  /**
   * Whether other nodes may still send the task new connections through its service's VIP or
   * names, as this node knows the network states (network-views.ts, servedThroughService).
   */
  servedThroughService(task: Task): boolean {
    return servedThroughService(this.states, task);
  }

  /** Removes a task's sandbox (its container is over); idempotent. After the task's prepares. */
  release(taskId: string): Promise<void> {
    this.running.delete(taskId);
    const host = this.legHosts.get(taskId);
    if (host !== undefined) return this.releaseLeg(taskId, host);
    return this.perTask(taskId, async () => {
      const sb = this.sandboxes.get(taskId);
      this.taskPorts.delete(taskId);
      if (!sb) return;
      this.sandboxes.delete(taskId);
      await destroySandbox(this.deps(), sb);
      await this.syncSoon();
    });
  }

  /** Resolves once every change asked for so far (sandboxes being made or removed, syncs) is done. */
  async settled(): Promise<void> {
    await Promise.all([...this.taskChains.values()]);
    await this.queue.run(() => Promise.resolve());
  }

  /** The task IDs with a sandbox on this node. */
  sandboxed(): string[] {
    return [...this.sandboxes.keys()];
  }

  /**
   * The agent stops: the DNS server closes. Sandboxes of containers that keep running stay (a
   * restarted agent adopts them); with none left, everything node-wide goes too.
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.taskChains.values()]);
    return this.queue.run(async () => {
      if (this.sandboxes.size === 0) {
        this.states.clear();
        await this.sync();
      }
      await this.dns.close();
      await this.nft.close();
    });
  }

  private scheduleSync(): void {
    if (this.closed) return;
    this.syncSoon().catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'network sync failed'));
  }

  /** A sync that starts after this call; one queued and not started yet is joined (a burst costs one). */
  private syncSoon(): Promise<void> {
    if (this.pendingSync) return this.pendingSync;
    const p = this.queue.run(async () => {
      if (this.pendingSync === p) this.pendingSync = undefined;
      await this.sync();
    });
    this.pendingSync = p;
    return p;
  }

  /** Makes the node's objects follow the states and sandboxes (inside the queue). */
  private async sync(): Promise<void> {
    const trace = new SyncTrace(this.changedAt);
    this.changedAt = undefined;
    const errors: unknown[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.error({ err: errorMessage(err), what }, 'network sync step failed');
        errors.push(err);
      }
    };
    // the ingress sandbox: on every node with an ingress attachment (its load-balancer address),
    // published port or not, as Docker's ingress-sbox; it goes with the ingress state
    const ingressState = [...this.states.values()].find((s) => isIngress(s.Network));
    const mesh = ingressState ? ingressPorts(ingressState) : [];
    await attempt('ingress sandbox', async () => {
      const lb = ingressState ? this.lbAddress(ingressState) : undefined;
      const spec = ingressState?.Network && lb ? overlaySpec(ingressState.Network) : undefined;
      if (spec && lb && !this.ingressClashes(spec.subnet))
        await this.ingress.ensure(this.overlay, spec, `${INGRESS_LB_PREFIX}${this.opts.nodeId}`, lb);
      else await this.ingress.detach(this.overlay);
    });
    // DNS records
    for (const [id, state] of this.states)
      if (!isIngress(state.Network)) this.dns.setNetwork(id, dnsRecords(state), state.Network?.Spec?.Name);
    for (const id of this.dns.networks()) if (!this.states.has(id)) this.dns.removeNetwork(id);
    const dnsSettled = this.dns.settled().then(() => trace.mark('dns')); // the thread answers with them
    // VIPs of each sandbox (each in its own namespace: all at once)
    await Promise.all([
      dnsSettled,
      ...[...this.sandboxes.values()].map(async (sb) => {
        const services = this.vipServicesOf(sandboxNetworks(sb));
        const key = JSON.stringify(services);
        if (key === sb.vipKey) return;
        await attempt(`VIPs of task ${sb.taskId}`, async () => {
          try {
            // with no VIP too: the table also keeps conntrack off traffic that needs no NAT
            await sb.vip.apply(services);
          } catch (err) {
            // released meanwhile (releases run beside the sync): its namespace may be gone
            if (this.sandboxes.get(sb.taskId) !== sb && err instanceof DataPlaneError) return;
            throw err;
          }
          sb.vipKey = key;
          trace.vip();
        });
      }),
    ]);
    trace.mark('vips');
    // peers of every overlay present here (each network in its own namespace: all at once)
    const present = new Set<string>();
    for (const sb of this.sandboxes.values()) for (const o of sb.overlays) present.add(o.networkId);
    if (this.ingress.isAttached && ingressState?.Network?.ID) present.add(ingressState.Network.ID);
    await Promise.all([...present].map((id) => attempt(`peers of ${id}`, () => this.syncPeers(id))));
    for (const id of this.peersKey.keys()) if (!present.has(id)) this.peersKey.delete(id);
    trace.mark('peers');
    // published ports: the mesh, and host-mode ports of running local tasks
    const host = [...this.sandboxes.values()].flatMap((sb) =>
      this.running.has(sb.taskId) && sb.gateway ? hostPorts(this.taskPorts.get(sb.taskId), sb.gateway.address) : [],
    );
    await attempt('published ports', () => this.ingress.publish([...mesh, ...host]));
    // the gateway bridge and DNS server, while some sandbox uses them
    if (this.sandboxes.size === 0 && this.building === 0 && this.gatewayUsed) {
      await attempt('gateway bridge', async () => {
        await this.dns.close();
        await this.gateway.teardown();
        this.gatewayUsed = false;
      });
    }
    trace.done(this.log);
    if (errors.length > 0) throw errors[0];
  }

  /**
   * Makes a network's FDB and neighbour entries those of the state's remote endpoints. The kernel
   * is read only when the wanted set changed since the last sync of this network (or the
   * network was made again meanwhile).
   */
  private async syncPeers(networkId: string): Promise<void> {
    if (!this.overlay.hasNetwork(networkId)) {
      this.peersKey.delete(networkId);
      return;
    }
    const state = this.states.get(networkId);
    const want = new Map<string, OverlayPeer>();
    for (const p of state ? remotePeers(state, this.opts.nodeId) : []) want.set(`${p.address}@${p.vtep}`, p);
    const key = [...want.keys()].sort().join(',');
    if (this.peersKey.get(networkId) === key) return;
    this.peersKey.delete(networkId);
    const have = new Map<string, OverlayPeer>();
    for (const p of await this.overlay.peers(networkId)) have.set(`${p.address}@${p.vtep}`, p);
    const remove = [...have].filter(([k]) => !want.has(k)).map(([, p]) => p);
    const add = [...want].filter(([k]) => !have.has(k)).map(([, p]) => p);
    // false: the network went meanwhile (its last sandbox released beside this sync)
    if (await this.overlay.updatePeers(networkId, add, remove)) this.peersKey.set(networkId, key);
  }

  /** This node's address on the ingress network: its LB endpoint in the state, else Node.Attachments. */
  private lbAddress(ingress: NetworkState): string | undefined {
    const own = (ingress.Endpoints ?? []).find((e) => e.ID === `${INGRESS_LB_PREFIX}${this.opts.nodeId}`);
    if (own?.Address) return own.Address;
    const att = (this.node?.Attachments ?? []).find((a) => isIngress(a.Network));
    return att?.Addresses?.[0];
  }

  /**
   * An ingress network in the gateway bridge's range would break the node's routing: the node
   * stays off it (no routing mesh here), said once in the log; tasks on it fail in `prepare`.
   */
  private ingressClashes(subnet: string): boolean {
    if (!overlapsGateway(subnet, this.gateway.subnet)) return false;
    if (this.ingressClashLogged !== subnet)
      this.log.error(
        { subnet, gatewaySubnet: this.gateway.subnet },
        'the ingress network overlaps the gateway bridge subnet: this node stays off the routing mesh',
      );
    this.ingressClashLogged = subnet;
    return true;
  }

  /** An overlay in the gateway bridge's range would break the node's routing: the task fails. */
  private refuseGatewayOverlap(taskId: string, nets: readonly SandboxNetwork[]): void {
    const gw = this.gateway.subnet;
    for (const n of nets)
      if (overlapsGateway(n.spec.subnet, gw))
        throw new NetworkGatewayOverlapError(taskId, n.network.Spec?.Name ?? n.spec.id, n.spec.subnet, gw);
  }

  private sandboxNetworksOf(task: Task): SandboxNetwork[] {
    const taskId = task.ID ?? '';
    return (task.NetworksAttachments ?? []).map((att, i) => {
      const id = att.Network?.ID;
      if (!id) throw new NetworkAttachmentError(taskId, `attachment ${i} names no network`);
      const network: Network = this.states.get(id)?.Network ?? att.Network ?? {};
      const address = att.Addresses?.[0];
      if (!address?.includes('/'))
        throw new NetworkAttachmentError(taskId, `its attachment to ${network.Spec?.Name ?? id} has no address (CIDR)`);
      return { network, spec: overlaySpec(network), address };
    });
  }

  private deps(): SandboxDeps {
    return {
      hostTag: this.opts.hostTag,
      overlay: this.overlay,
      gateway: this.gateway,
      dns: this.dns,
      nft: this.nft,
      log: this.log,
    };
  }

  private makeOverlay(vtep: string): OverlayDataPlane {
    return new OverlayDataPlane({
      hostTag: this.opts.hostTag,
      vtepAddress: vtep,
      ...(this.opts.dataPathPort ? { dataPathPort: this.opts.dataPathPort } : {}),
      logger: this.log,
    });
  }

  private resolvConf(): string {
    if (this.opts.resolvConf) return this.opts.resolvConf();
    try {
      return readFileSync('/etc/resolv.conf', 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return ''; // no resolvers: names outside the cluster fail
      throw err;
    }
  }
}

/**
 * When a sync after a state change did each part, as wall-clock milliseconds (to line up with the
 * managers' and other nodes' traces on one machine, as `npm run bench:network` does): `received`
 * (the first state change it carries arrived), `start`, `dns` (the DNS thread has the records),
 * `vip` (the last changed VIP table applied; `vipTables` of them), `vips` (those and DNS), `peers` (FDB and neighbour
 * entries), `end`. Logged as one `network sync trace` line for syncs that follow a state change.
 */
class SyncTrace {
  private readonly marks: Record<string, number> = {};
  private tables = 0;

  constructor(private readonly received: number | undefined) {
    this.marks['start'] = Date.now();
  }

  mark(step: 'dns' | 'vips' | 'peers'): void {
    this.marks[step] = Date.now();
  }

  vip(): void {
    this.tables++;
    this.marks['vip'] = Date.now();
  }

  done(log: Logger): void {
    if (this.received === undefined) return;
    log.info({ received: this.received, ...this.marks, end: Date.now(), vipTables: this.tables }, 'network sync trace');
  }
}
