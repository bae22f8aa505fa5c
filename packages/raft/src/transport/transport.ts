/**
 * The transport seam between RaftNode and the network. Implementations: TcpTransport (real
 * processes), the simulator's network, and the gRPC stream transport of the store package.
 */
import type { Message, NodeId } from '../core/types.js';
import type { SnapshotFiles } from '../driver/snapshot-stream.js';

export interface TransportHandlers {
  /** A message arrived for this node. */
  onMessage(m: Message): void;
  /** A peer could not be reached (a send was dropped): the core should probe it. */
  onUnreachable(id: NodeId): void;
  /** Outcome of sending a MsgSnap to `id`. */
  onSnapshotStatus(id: NodeId, ok: boolean): void;
}

export interface Transport {
  /** Starts delivering inbound messages to `handlers`. */
  start(handlers: TransportHandlers): Promise<void>;
  /** Queues messages for their `to` peers. Never blocks; drops (and reports unreachable) on overflow. */
  send(msgs: readonly Message[]): void;
  /** Adds or updates a peer's address. */
  setPeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  /**
   * Optional: streams snapshots as files. A MsgSnap whose snapshot data is empty is sent as the
   * stored file read from `files`, and received into `files` before the message is delivered.
   * Required by a store that keeps snapshot data in files (DiskLogStore).
   */
  useSnapshotFiles?(files: SnapshotFiles): void;
  close(): Promise<void>;
}
