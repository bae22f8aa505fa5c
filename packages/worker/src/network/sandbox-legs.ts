/**
 * `shoal network connect NET CONTAINER` on this node: the container's network namespace is the
 * sandbox of its first network-attachment task (task-sandbox.ts); each further network it joins
 * is a network-attachment task of its own (one per container and network, as SwarmKit makes
 * one per network), whose sandbox is a **leg** in that same namespace:
 *
 * - a veth from the network's overlay bridge into the sandbox, named with the first free `ethN`
 *   (Docker's order: eth0 the first network, then the gateway leg, then eth2...), with the leg's
 *   address, MAC and MTU; the address brings the subnet's route, nothing else (the default route
 *   stays on the gateway leg);
 * - the sandbox's DNS scope grows by the network (names of it resolve in the container), and the
 *   controller's next sync adds the network's services to the sandbox's VIP table and the
 *   network's peers to this node.
 *
 * `removeLeg` (`network disconnect`) deletes the veth (its inside end, address and route go with
 * it) and shrinks the scope; the overlay goes from this node with its last attachment.
 */
import { errorMessage } from '@shoal/common';
import { NetlinkCli, runInNetns } from '@shoal/network';
import {
  overlayEndpointId,
  sandboxNetworks,
  type SandboxDeps,
  type SandboxNetwork,
  type TaskSandbox,
} from './task-sandbox.js';

/** The interface names in use in a sandbox: its first overlays eth0.., its gateway leg, its legs. */
export function usedIfnames(sb: TaskSandbox): Set<string> {
  const used = new Set<string>();
  let i = 0;
  for (const o of sb.overlays) used.add(o.ifname ?? `eth${i++}`);
  if (sb.gateway) used.add(sb.gateway.ifname);
  return used;
}

/** The first `ethN` free in the sandbox. */
export function freeIfname(sb: TaskSandbox): string {
  const used = usedIfnames(sb);
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
}

/** Adds leg `legId` on network `n` to the sandbox (see the file's comment). */
export async function addLeg(deps: SandboxDeps, sb: TaskSandbox, legId: string, n: SandboxNetwork): Promise<string> {
  const endpointId = overlayEndpointId(legId, n.spec.id);
  const ifname = freeIfname(sb);
  const veth = await deps.overlay.attachVeth(n.spec, {
    endpointId,
    containerNetns: sb.path,
    address: n.address,
    ifname,
  });
  try {
    await runInNetns(sb.path, { ip: veth.inside });
  } catch (err) {
    await deps.overlay
      .detach(n.spec.id, endpointId)
      .catch((e: unknown) => deps.log.error({ leg: legId, err: errorMessage(e) }, 'cannot undo a half-made leg'));
    throw err;
  }
  sb.overlays.push({ networkId: n.spec.id, endpointId, address: n.address, ingress: false, leg: legId, ifname });
  setScope(deps, sb);
  deps.log.info(
    { task: sb.taskId, leg: legId, network: n.spec.id, ifname, address: n.address },
    'network connected: leg added to the sandbox',
  );
  return ifname;
}

/**
 * Takes back a leg an earlier agent made (restart of shoald): its interface is the one holding
 * its address in the sandbox. False when there is none (the leg was never finished, or is gone).
 */
export async function adoptLeg(deps: SandboxDeps, sb: TaskSandbox, legId: string, n: SandboxNetwork): Promise<boolean> {
  if (sb.overlays.some((o) => o.leg === legId)) return true;
  const addrs = await new NetlinkCli().json<{ ifname: string; addr_info?: { local?: string; prefixlen?: number }[] }[]>(
    ['-n', sb.netns, 'addr', 'show'],
  );
  const ifname = addrs.find((l) => (l.addr_info ?? []).some((a) => `${a.local}/${a.prefixlen}` === n.address))?.ifname;
  if (ifname === undefined) return false;
  const endpointId = overlayEndpointId(legId, n.spec.id);
  sb.overlays.push({ networkId: n.spec.id, endpointId, address: n.address, ingress: false, leg: legId, ifname });
  setScope(deps, sb);
  return true;
}

/** Removes leg `legId` from the sandbox; one not there is fine. */
export async function removeLeg(deps: SandboxDeps, sb: TaskSandbox, legId: string): Promise<void> {
  const i = sb.overlays.findIndex((o) => o.leg === legId);
  if (i < 0) return;
  const [o] = sb.overlays.splice(i, 1);
  setScope(deps, sb);
  if (o) await deps.overlay.detach(o.networkId, o.endpointId);
  deps.log.info({ task: sb.taskId, leg: legId, network: o?.networkId }, 'network disconnected: leg removed');
}

function setScope(deps: SandboxDeps, sb: TaskSandbox): void {
  if (sb.gateway) deps.dns.setScope(sb.gateway.address.split('/')[0] ?? '', sandboxNetworks(sb));
}
