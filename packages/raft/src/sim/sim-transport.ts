/**
 * The driver's Transport over the SimNet, for one life of one node: sends go to the network
 * (after the invariant checker saw them); deliveries and the network's feedback (snapshot
 * delivered or lost, peer unreachable) reach the driver through its handlers.
 */
import type { Message, NodeId } from '../core/types.js';
import type { Transport, TransportHandlers } from '../transport/transport.js';

export class SimTransport implements Transport {
  private handlers: TransportHandlers | undefined;

  constructor(
    private readonly out: (m: Message) => void,
    private readonly alive: () => boolean,
  ) {}

  start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    return Promise.resolve();
  }

  send(msgs: readonly Message[]): void {
    if (!this.alive()) return;
    for (const m of msgs) this.out(m);
  }

  /** Addresses do not matter on the simulated network. */
  setPeer(_id: NodeId, _address: string): void {}

  removePeer(_id: NodeId): void {}

  deliver(m: Message): void {
    this.handlers?.onMessage(m);
  }

  snapshotStatus(to: NodeId, ok: boolean): void {
    this.handlers?.onSnapshotStatus(to, ok);
  }

  unreachable(to: NodeId): void {
    this.handlers?.onUnreachable(to);
  }

  close(): Promise<void> {
    this.handlers = undefined;
    return Promise.resolve();
  }
}
