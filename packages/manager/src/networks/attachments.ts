/**
 * Plain containers on attachable overlays (`shoal container run --network NAME`), as SwarmKit's
 * ResourceAllocator: a node asks the leader to attach a container-to-be to a network; the leader
 * makes a **network-attachment task** (`Spec.Runtime` "attachment", `Spec.NetworkAttachmentSpec`
 * naming the container, no service) with an address on the network, assigned to the calling node
 * at once (no scheduling: the container is already there). The node's agent builds the task's
 * sandbox as for any task and reports it `running`; the dispatcher's network states carry it as
 * an endpoint (its aliases: the container's name, hostname and `--network-alias`es).
 *
 * Ownership: the task belongs to the node it is assigned to, not to the CLI that asked. It goes:
 * - on DetachNetwork from that node (`container rm`, `--rm`): deleted at once, its address back
 *   in the pool in the same step;
 * - when the node reports it ended (the agent found no container in its sandbox any more: the
 *   container was removed by another way, or the CLI died before making it), or when the node
 *   leaves the store: the attachment reaper below deletes it.
 */
import { isTerminalTaskState, type NetworkAttachmentConfig, type Task } from '@shoal/api';
import { newObjectId } from '@shoal/common';
import type { ManagerContext, StoredNode } from '../context.js';
import {
  CallerNotAllowedError,
  EndpointExistsError,
  InvalidRequestError,
  NetworkNotAttachableError,
  NetworkNotFoundError,
} from '../errors.js';
import { findRef, type StoredNetwork, type StoredTask } from '../services/objects.js';
import { WatchLoop, WatchLoopDriven } from '../watch-loop.js';
import type { NetworkAllocation } from './network-allocation.js';

export const ATTACHMENT_RUNTIME = 'attachment';
/** Status message of a network-attachment task as the leader writes it. */
export const ATTACHMENT_MESSAGE = 'network attachment assigned to node';

/** True for a task that only holds a plain container's network attachment. */
export function isNetworkAttachmentTask(t: Task): boolean {
  return t.Spec?.Runtime === ATTACHMENT_RUNTIME || t.Spec?.NetworkAttachmentSpec !== undefined;
}

/** An attachment task nothing keeps any more: it ended on its node, or its node left the store. */
export function attachmentGone(t: Task, nodes: ReadonlyMap<string, StoredNode>): boolean {
  return isTerminalTaskState(t.Status?.State ?? 'new') || !nodes.has(t.NodeID ?? '');
}

export class NetworkAttachments {
  constructor(
    private readonly ctx: ManagerContext,
    private readonly allocation: NetworkAllocation,
  ) {}

  /**
   * Attaches container `containerId` on node `nodeId` to `config.Target`: an unknown network is
   * MANAGER_NETWORK_NOT_FOUND, one not attachable (ingress included) MANAGER_NETWORK_NOT_ATTACHABLE,
   * no address left the allocator's error; nothing is written in those cases. Returns the task ID.
   */
  async attach(nodeId: string, config: NetworkAttachmentConfig | undefined, containerId: string): Promise<string> {
    const target = config?.Target ?? '';
    if (target === '') throw new InvalidRequestError('attach network: Config.Target (the network) is required');
    if (containerId === '') throw new InvalidRequestError('attach network: ContainerID is required');
    const aliases = [...new Set((config?.Aliases ?? []).filter((a) => a !== ''))];
    return this.allocation.exclusive('network attach', async (a) => {
      const net = findRef<StoredNetwork>(this.ctx.store, 'network', target);
      if (net === undefined) throw new NetworkNotFoundError(target);
      const name = net.Spec?.Name ?? net.ID;
      if (net.Spec?.Attachable !== true || net.Spec.Ingress === true) throw new NetworkNotAttachableError(name);
      if (this.endpointOf(containerId, net.ID) !== undefined) throw new EndpointExistsError(containerId, name);
      const now = new Date(this.ctx.clock.now()).toISOString();
      const task: StoredTask = {
        ID: newObjectId(),
        Version: { Index: 0 },
        CreatedAt: now,
        UpdatedAt: now,
        Name: containerId,
        Labels: {},
        Spec: {
          Runtime: ATTACHMENT_RUNTIME,
          NetworkAttachmentSpec: { ContainerID: containerId },
          Networks: [{ Target: net.ID, Aliases: aliases }],
        },
        ServiceID: '',
        Slot: 0,
        NodeID: nodeId,
        DesiredState: 'running',
        Status: { Timestamp: now, State: 'new', Message: 'created', Err: '' },
      };
      const r = this.allocation.allocateTask(a, task, undefined);
      if ('hold' in r) throw new NetworkAttachError(name, r.hold);
      try {
        const { Version: _v, CreatedAt: _c, UpdatedAt: _u, ...fields } = r.task;
        await this.ctx.store.update((tx) =>
          tx.create('task', {
            ...(fields as typeof fields & Record<string, unknown>),
            Status: { Timestamp: now, State: 'assigned', Message: ATTACHMENT_MESSAGE, Err: '' },
          }),
        );
      } catch (err) {
        this.allocation.releaseTask(a, task.ID);
        throw err;
      }
      this.ctx.logger.info({ task: task.ID, node: nodeId, network: name, container: containerId }, 'network attached');
      return task.ID;
    });
  }

  /**
   * The container's live attachment task on a network, if any (`network connect` a second time):
   * its name is its endpoint's name there, one per network, as Docker's.
   */
  private endpointOf(containerId: string, networkId: string): StoredTask | undefined {
    return this.ctx.store
      .list<StoredTask>('task')
      .find(
        (t) =>
          (t.ServiceID ?? '') === '' &&
          isNetworkAttachmentTask(t) &&
          t.Spec?.NetworkAttachmentSpec?.ContainerID === containerId &&
          t.DesiredState === 'running' &&
          !isTerminalTaskState(t.Status?.State ?? 'new') &&
          (t.Spec.Networks ?? []).some((n) => n.Target === networkId),
      );
  }

  /** Deletes one of `nodeId`'s attachment tasks and gives its address back; one already gone is fine. */
  async detach(nodeId: string, attachmentId: string): Promise<void> {
    if (attachmentId === '') throw new InvalidRequestError('detach network: AttachmentID is required');
    await this.allocation.exclusive('network detach', async (a) => {
      const t = this.ctx.store.get<StoredTask>('task', attachmentId);
      if (t === undefined) return;
      if (!isNetworkAttachmentTask(t) || t.NodeID !== nodeId)
        throw new CallerNotAllowedError(`task ${attachmentId} is not a network attachment of node ${nodeId}`);
      await this.ctx.store.update((tx) => tx.remove('task', t.ID, t.Version.Index));
      this.allocation.releaseTask(a, t.ID);
      this.ctx.logger.info({ task: t.ID, node: nodeId }, 'network detached');
    });
  }
}

/** No address could be given (the network's subnet is full). */
export class NetworkAttachError extends InvalidRequestError {
  constructor(network: string, why: string) {
    super(`cannot attach to network ${network}: ${why}`);
  }
}

/**
 * Leader loop: deletes network-attachment tasks that ended (their node found the container gone)
 * or whose node left the store. Their addresses go back with the allocator's next pass.
 */
export class AttachmentReaper extends WatchLoopDriven {
  protected readonly loop: WatchLoop;

  constructor(private readonly ctx: ManagerContext) {
    super();
    this.loop = new WatchLoop({
      name: 'attachment reaper',
      store: ctx.store,
      logger: ctx.logger,
      kinds: ['task', 'node'],
      run: () => this.pass(),
      relevant: (c) => c.kind === 'node' || isNetworkAttachmentTask(c.object as Task),
    });
  }

  async pass(): Promise<void> {
    const nodes = new Map(this.ctx.store.list<StoredNode>('node').map((n) => [n.ID, n]));
    const gone = this.ctx.store
      .list<StoredTask>('task')
      .filter((t) => (t.ServiceID ?? '') === '' && isNetworkAttachmentTask(t) && attachmentGone(t, nodes));
    if (gone.length === 0) return;
    await this.ctx.store.update((tx) => {
      for (const t of gone) tx.remove('task', t.ID, t.Version.Index);
    });
  }
}
