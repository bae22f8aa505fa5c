/**
 * What the agent needs from a dispatcher session: the node's assignments stream and the batched
 * status call. The daemon makes one per session (gRPC to the manager the session is open on);
 * tests use an in-memory double.
 */
import type { AssignmentsMessage, NetworkAttachmentConfig, TaskStatusUpdate } from '@shoal/api';

export interface DispatcherLink {
  /** The Assignments stream: a "complete" set first, then "incremental" changes; ends with the session. */
  assignments(signal: AbortSignal): AsyncIterable<AssignmentsMessage>;
  /** Sends a batch of status updates (UpdateTaskStatus); rejects when the session is gone. */
  updateTaskStatus(updates: TaskStatusUpdate[]): Promise<void>;
  /**
   * AttachNetwork: the leader makes a network-attachment task for container `containerId` on this
   * node and returns its ID (absent in links that cannot: the agent then refuses attachments).
   */
  attachNetwork?(config: NetworkAttachmentConfig, containerId: string): Promise<string>;
  /** DetachNetwork: the leader deletes one of this node's network-attachment tasks. */
  detachNetwork?(attachmentId: string): Promise<void>;
}
