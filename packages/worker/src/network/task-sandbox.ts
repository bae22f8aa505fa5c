/**
 * A task's network sandbox: a network namespace of its own (`shoal-t-<host tag>-<task id>`, in
 * /run/netns, so the names of several nodes on one machine never meet) that the task's container
 * is created in, with
 *
 * - a veth into each overlay the task is attached to (eth0, eth1, ...: the attachment's address,
 *   MAC from the address, MTU underlay - 50);
 * - a leg on the node's gateway bridge: the default route (egress), unless every network of the
 *   task is `--internal`, in which case the leg carries DNS to the node only;
 * - the DNS redirect of 127.0.0.11:53 to the node's embedded DNS server over that leg;
 * - the VIP table of the services on its networks (applied by the controller).
 *
 * `destroySandbox` undoes all of it; each step tolerates what is already gone.
 */
import { existsSync } from 'node:fs';
import type { Network } from '@shoal/api';
import { errorMessage, type Logger } from '@shoal/common';
import { performance } from 'node:perf_hooks';
import {
  NetlinkCli,
  VipBalancer,
  type NftRunner,
  dnsRedirectRules,
  runInNetns,
  vipRules,
  type GatewayBridge,
  type VipService,
  type OverlayDataPlane,
  type OverlayNetworkSpec,
} from '@shoal/network';
import type { NodeDns } from './node-dns.js';
import { isIngress, isInternal } from './network-views.js';

const NETNS_DIR = '/run/netns';

export interface SandboxNetwork {
  network: Network;
  spec: OverlayNetworkSpec;
  /** The task's address on it (CIDR). */
  address: string;
}

export interface TaskSandbox {
  taskId: string;
  netns: string;
  path: string;
  overlays: {
    networkId: string;
    endpointId: string;
    address: string;
    ingress: boolean;
    /** A leg added by `network connect` (sandbox-legs.ts): its attachment task, and its interface. */
    leg?: string;
    ifname?: string;
  }[];
  /** The leg on the gateway bridge: its address, and whether it is the way out. */
  gateway: { ifname: string; address: string; egress: boolean } | undefined;
  vip: VipBalancer;
  /** The last VIP rules applied (to skip identical updates). */
  vipKey: string | undefined;
}

export interface SandboxDeps {
  hostTag: string;
  overlay: OverlayDataPlane;
  gateway: GatewayBridge;
  dns: NodeDns;
  /** Applies VIP tables (the node's nft helper). */
  nft: NftRunner;
  log: Logger;
}

/** The namespace name of a task's sandbox on this node. */
export function sandboxName(hostTag: string, taskId: string): string {
  return `shoal-t-${hostTag}-${taskId
    .slice(0, 16)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')}`;
}

export function overlayEndpointId(taskId: string, networkId: string): string {
  return `${taskId}.${networkId}`;
}

/** The networks (not ingress) a sandbox answers DNS and VIPs for. */
export function sandboxNetworks(sb: TaskSandbox): Set<string> {
  return new Set(sb.overlays.filter((o) => !o.ingress).map((o) => o.networkId));
}

/** What the sandbox starts with besides its interfaces. */
export interface SandboxExtras {
  /** The VIP table's services at build time, and their key (the controller's, to skip an identical update). */
  vip?: { services: VipService[]; key: string };
  /** Called once the namespace exists (before its interfaces): the container may be prepared meanwhile. */
  onNetns?: () => void;
}

/** Processes spawned per sandbox build, for the build's log line. */
const BUILD_STEPS = ['netns', 'links', 'inside'] as const;

/**
 * Makes a sandbox with few processes: `ip netns add`; then at once one `ip` process per overlay
 * (in the overlay's namespace) and one for the gateway leg (in the node's), each making its veth
 * with the container end moved into the sandbox; then one process inside the sandbox for
 * everything there: interface addresses and routes (`ip -batch`), the uplink's `route_localnet`,
 * and the DNS redirect and VIP table in one `nft -f` transaction (netns-script.ts). On any
 * failure what was made is removed again and the error thrown.
 */
export async function buildSandbox(
  deps: SandboxDeps,
  taskId: string,
  nets: SandboxNetwork[],
  extras: SandboxExtras = {},
): Promise<TaskSandbox> {
  const netns = sandboxName(deps.hostTag, taskId);
  const path = `${NETNS_DIR}/${netns}`;
  const sb: TaskSandbox = {
    taskId,
    netns,
    path,
    overlays: [],
    gateway: undefined,
    vip: new VipBalancer(path, deps.nft),
    vipKey: '',
  };
  const t0 = performance.now();
  const ms: Record<(typeof BUILD_STEPS)[number], number> = { netns: 0, links: 0, inside: 0 };
  const cli = new NetlinkCli();
  try {
    if (existsSync(path)) await destroySandbox(deps, sb); // a leftover of an earlier attempt
    await cli.exec('ip', ['netns', 'add', netns]);
    ms.netns = performance.now() - t0;
    extras.onNetns?.();
    const egress = nets.length === 0 || nets.some((n) => !isInternal(n.network));
    const ifname = `eth${nets.length}`;
    for (const n of nets) {
      const endpointId = overlayEndpointId(taskId, n.spec.id);
      sb.overlays.push({ networkId: n.spec.id, endpointId, address: n.address, ingress: isIngress(n.network) });
    }
    // the legs are independent (each in its own namespace): made at once
    const [gw, ...overlays] = await allDone([
      deps.gateway.attachVeth({ endpointId: taskId, containerNetns: path, ifname, defaultRoute: egress }),
      ...nets.map((n, i) =>
        deps.overlay.attachVeth(n.spec, {
          endpointId: overlayEndpointId(taskId, n.spec.id),
          containerNetns: path,
          address: n.address,
          ifname: `eth${i}`,
        }),
      ),
    ]);
    sb.gateway = { ifname, address: gw.address, egress };
    const server = await deps.dns.ensure(deps.gateway.gateway); // on the bridge's address: after the bridge
    ms.links = performance.now() - t0 - ms.netns;
    const dns = dnsRedirectRules({ uplink: ifname, uplinkAddress: gw.address, server, exclusive: !egress });
    // with no VIP too: the table also keeps conntrack off traffic that needs no NAT
    const vip = extras.vip ? vipRules(extras.vip.services) : '';
    await runInNetns(path, {
      sysctls: { [`net.ipv4.conf.${ifname}.route_localnet`]: '1' },
      ip: [['link', 'set', 'lo', 'up'], ...overlays.flatMap((o) => o.inside), ...gw.inside],
      nft: dns + vip,
    });
    if (extras.vip) sb.vipKey = extras.vip.key;
    ms.inside = performance.now() - t0 - ms.netns - ms.links;
    deps.dns.setScope(plain(gw.address), sandboxNetworks(sb));
    deps.log.info(
      {
        task: taskId,
        netns,
        networks: nets.map((n) => n.spec.id),
        egress,
        ms: Math.round(performance.now() - t0),
        steps: Object.fromEntries(BUILD_STEPS.map((k) => [k, Math.round(ms[k])])),
        processes: 3 + nets.length,
      },
      'task network sandbox made',
    );
    return sb;
  } catch (err) {
    await destroySandbox(deps, sb).catch((e: unknown) =>
      deps.log.error({ task: taskId, err: errorMessage(e) }, 'cannot undo a half-made network sandbox'),
    );
    throw err;
  }
}

/**
 * Removes a sandbox: its overlay attachments (and overlays no one else uses) and gateway leg side
 * by side (they are independent), then the namespace.
 */
export async function destroySandbox(deps: SandboxDeps, sb: TaskSandbox): Promise<void> {
  if (sb.gateway) deps.dns.dropScope(plain(sb.gateway.address));
  const errors: unknown[] = [];
  const attempt = async (fn: () => Promise<unknown>): Promise<void> => {
    await fn().catch((err: unknown) => errors.push(err));
  };
  await Promise.all([
    ...sb.overlays.map((o) => attempt(() => deps.overlay.detach(o.networkId, o.endpointId))),
    attempt(() => deps.gateway.detach(sb.taskId)),
  ]);
  await attempt(() => sb.vip.forget()); // the node's nft helper holds a socket in it
  await attempt(() => new NetlinkCli().execAbsentOk('ip', ['netns', 'del', sb.netns]));
  if (errors.length > 0) throw errors[0];
  deps.log.info({ task: sb.taskId, netns: sb.netns }, 'task network sandbox removed');
}

/** Like Promise.all, but rejects only once every promise settled (nothing runs on during the undo). */
async function allDone<T extends readonly unknown[]>(ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

function plain(address: string): string {
  return address.split('/')[0] ?? address;
}
