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
import {
  NetlinkCli,
  VipBalancer,
  installDnsRedirect,
  type GatewayBridge,
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
  overlays: { networkId: string; endpointId: string; address: string; ingress: boolean }[];
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

/** Makes a sandbox; on any failure what was made is removed again and the error thrown. */
export async function buildSandbox(deps: SandboxDeps, taskId: string, nets: SandboxNetwork[]): Promise<TaskSandbox> {
  const netns = sandboxName(deps.hostTag, taskId);
  const path = `${NETNS_DIR}/${netns}`;
  const sb: TaskSandbox = {
    taskId,
    netns,
    path,
    overlays: [],
    gateway: undefined,
    vip: new VipBalancer(path),
    vipKey: '',
  };
  const cli = new NetlinkCli();
  try {
    if (existsSync(path)) await destroySandbox(deps, sb); // a leftover of an earlier attempt
    await cli.exec('ip', ['netns', 'add', netns]);
    await cli.exec('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    for (const [i, n] of nets.entries()) {
      const endpointId = overlayEndpointId(taskId, n.spec.id);
      sb.overlays.push({ networkId: n.spec.id, endpointId, address: n.address, ingress: isIngress(n.network) });
      await deps.overlay.attach(n.spec, { endpointId, containerNetns: path, address: n.address, ifname: `eth${i}` });
    }
    const egress = nets.length === 0 || nets.some((n) => !isInternal(n.network));
    const ifname = `eth${nets.length}`;
    const gw = await deps.gateway.attach({ endpointId: taskId, containerNetns: path, ifname, defaultRoute: egress });
    sb.gateway = { ifname, address: gw.address, egress };
    const server = await deps.dns.ensure(deps.gateway.gateway);
    await installDnsRedirect({
      containerNetns: path,
      uplink: ifname,
      uplinkAddress: gw.address,
      server,
      exclusive: !egress,
    });
    deps.dns.setScope(plain(gw.address), sandboxNetworks(sb));
    deps.log.info({ task: taskId, netns, networks: nets.map((n) => n.spec.id), egress }, 'task network sandbox made');
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
  await attempt(() => new NetlinkCli().execAbsentOk('ip', ['netns', 'del', sb.netns]));
  if (errors.length > 0) throw errors[0];
  deps.log.info({ task: sb.taskId, netns: sb.netns }, 'task network sandbox removed');
}

function plain(address: string): string {
  return address.split('/')[0] ?? address;
}
