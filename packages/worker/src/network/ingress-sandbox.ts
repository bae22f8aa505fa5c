/**
 * The node's ingress sandbox and published ports (the routing mesh, as Docker's ingress-sbox):
 * while the node has an ingress attachment (its load-balancer address, Node.Attachments), from
 * init or join on, whether or not a service publishes a port, the node itself is attached to the
 * ingress overlay (interface `shoal_ing` in the node's namespace, with that address), so the first
 * published port does not pay for it. Its PortPublisher DNATs each port published in ingress mode
 * to the service's running tasks on the ingress network, masquerading out of `shoal_ing`.
 * Host-mode ports of local tasks go into the same table, to the task's gateway-bridge address.
 * With no port left the table goes; the sandbox (and the ingress overlay, unless a task uses it)
 * goes with the ingress state: the node leaves, or its agent stops with no sandbox left.
 */
import type { Logger } from '@shoal/common';
import { PortPublisher, type OverlayDataPlane, type OverlayNetworkSpec, type PublishedPort } from '@shoal/network';

/** The node's interface on the ingress overlay. */
export const INGRESS_IFNAME = 'shoal_ing';

export class IngressSandbox {
  private readonly ports: PortPublisher;
  private attached: { networkId: string; endpointId: string; address: string } | undefined;
  private portsKey: string | undefined;

  constructor(
    private readonly hostNetns: string,
    private readonly log: Logger,
    hostNetnsForPorts: string | undefined,
  ) {
    this.ports = new PortPublisher(hostNetnsForPorts);
  }

  /** Attaches the node to the ingress overlay with its load-balancer address (idempotent). */
  async ensure(
    overlay: OverlayDataPlane,
    spec: OverlayNetworkSpec,
    endpointId: string,
    address: string,
  ): Promise<void> {
    const a = this.attached;
    if (a && a.networkId === spec.id && a.address === address && overlay.hasNetwork(spec.id)) return;
    if (a) await this.detach(overlay);
    await overlay.attach(spec, { endpointId, containerNetns: this.hostNetns, address, ifname: INGRESS_IFNAME });
    this.attached = { networkId: spec.id, endpointId, address };
    this.log.info({ network: spec.id, address }, 'ingress sandbox attached');
  }

  async detach(overlay: OverlayDataPlane): Promise<void> {
    const a = this.attached;
    if (!a) return;
    await overlay.detach(a.networkId, a.endpointId);
    this.attached = undefined;
    this.log.info({ network: a.networkId }, 'ingress sandbox detached');
  }

  get isAttached(): boolean {
    return this.attached !== undefined;
  }

  /** Replaces the published ports (none: the table goes). */
  async publish(ports: readonly PublishedPort[]): Promise<void> {
    const key = JSON.stringify([ports, this.isAttached]);
    if (key === this.portsKey) return;
    if (ports.length === 0) await this.ports.remove();
    else await this.ports.apply(ports, this.isAttached ? { masqueradeVia: [INGRESS_IFNAME] } : {});
    this.portsKey = key;
  }

  /** Forgets what was applied (the next publish writes again). */
  invalidate(): void {
    this.portsKey = undefined;
  }
}
