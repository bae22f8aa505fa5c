/**
 * The LogBroker (leader only for subscriptions): `service logs` subscribes here; the broker
 * finds the nodes that ran the selected tasks (from the store) and hands each one the
 * subscription over the node's ListenSubscriptions stream (a node does not listen on a port, so
 * the manager cannot call it); the nodes send the lines back with PublishLogs and the broker
 * writes them to the subscriber as they come. A node that is not connected, disconnects
 * meanwhile or does not answer is named in `NodeErrors` and skipped: without Follow the
 * subscription ends once every other node has sent everything.
 */
import type { ServerWritableStream } from '@grpc/grpc-js';
import {
  serverStreamHandler,
  unaryHandler,
  type ListenSubscriptionsRequest,
  type LogBrokerServer,
  type LogMessage,
  type LogSelector,
  type LogSubscriptionOptions,
  type PublishLogsRequest,
  type PublishLogsResponse,
  type SubscribeLogsMessage,
  type SubscribeLogsRequest,
  type SubscriptionMessage,
} from '@shoal/api';
import { errorMessage, ignoreAborted, randomId64, sleep } from '@shoal/common';
import type { ManagerContext, StoredNode } from './context.js';
import { CallerNotAllowedError, InvalidRequestError, LogSubscriptionGoneError, NotLeaderError } from './errors.js';
import type { CallerIdentity, CallLike } from './identity.js';
import type { StoredTask } from './services/objects.js';

/** How long a node may take to acknowledge a subscription before it counts as not answering. */
export const LOG_ACK_TIMEOUT_MS = 10_000;

interface Listener {
  readonly nodeId: string;
  send(m: SubscriptionMessage): void;
}

interface Subscription {
  readonly id: string;
  readonly selector: LogSelector;
  readonly options: LogSubscriptionOptions;
  /** Nodes asked, and not yet finished (Close) or failed. */
  readonly pending: Set<string>;
  /** Nodes that acknowledged (sent a first PublishLogs). */
  readonly acked: Set<string>;
  /** Nodes that sent Close. */
  readonly closed: Set<string>;
  /** The listener each node was asked through. */
  readonly via: Map<string, Listener>;
  write(m: SubscribeLogsMessage): Promise<void>;
  fail(nodeId: string, message: string): void;
  finished(): void;
}

export class LogBroker {
  private readonly listeners = new Map<string, Listener>();
  private readonly subs = new Map<string, Subscription>();

  constructor(
    private readonly ctx: ManagerContext,
    private readonly ackTimeoutMs = LOG_ACK_TIMEOUT_MS,
  ) {}

  /** The nodes with an open ListenSubscriptions stream (tests, status). */
  connectedNodes(): string[] {
    return [...this.listeners.keys()];
  }

  /**
   * A node's ListenSubscriptions stream: registered until `signal` aborts; a later stream of the
   * same node replaces it. Subscriptions waiting on this stream's node fail when it ends.
   */
  async listen(
    _req: ListenSubscriptionsRequest,
    caller: CallerIdentity,
    write: (m: SubscriptionMessage) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const nodeId = caller.nodeId;
    if (!nodeId) throw new CallerNotAllowedError('listening for log subscriptions needs a node certificate');
    const listener: Listener = { nodeId, send: write };
    this.listeners.set(nodeId, listener);
    try {
      await sleep(2 ** 31 - 1, signal).catch(ignoreAborted);
    } finally {
      if (this.listeners.get(nodeId) === listener) this.listeners.delete(nodeId);
      for (const sub of this.subs.values()) {
        if (sub.via.get(nodeId) === listener && sub.pending.has(nodeId))
          sub.fail(nodeId, 'disconnected before sending all its logs');
      }
    }
  }

  /** A subscriber's stream (the CLI's `service logs`): see the module comment. */
  async subscribe(
    req: SubscribeLogsRequest,
    write: (m: SubscribeLogsMessage) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const info = this.ctx.raft.leaderInfo();
    if (!info.isLeader) throw new NotLeaderError('a log subscription', info.leader);
    const selector: LogSelector = {
      ServiceIDs: req.Selector?.ServiceIDs ?? [],
      TaskIDs: req.Selector?.TaskIDs ?? [],
    };
    if (selector.ServiceIDs!.length === 0 && selector.TaskIDs!.length === 0)
      throw new InvalidRequestError('log subscription: Selector names no service and no task');
    const options: LogSubscriptionOptions = {
      Follow: req.Options?.Follow ?? false,
      Tail: req.Options?.Tail ?? -1,
      Since: req.Options?.Since ?? '',
    };
    if (options.Since !== '' && Number.isNaN(Date.parse(options.Since!)))
      throw new InvalidRequestError(`log subscription: Options.Since ${JSON.stringify(options.Since)} is not a time`);

    const services = new Set(selector.ServiceIDs);
    const taskIds = new Set(selector.TaskIDs);
    const nodes = new Set<string>();
    const fromRevision = this.ctx.store.revision;
    for (const t of this.ctx.store.list<StoredTask>('task')) {
      if ((services.has(t.ServiceID ?? '') || taskIds.has(t.ID ?? '')) && t.NodeID) nodes.add(t.NodeID);
    }

    let done!: () => void;
    const finishedP = new Promise<void>((resolve) => (done = resolve));
    // Writes to the subscriber go one after another, in arrival order.
    let chain = Promise.resolve();
    const queue = (m: SubscribeLogsMessage): Promise<void> => {
      chain = chain.then(() => (signal.aborted ? undefined : write(m)));
      return chain;
    };
    const sub: Subscription = {
      id: randomId64(),
      selector,
      options,
      pending: new Set(),
      acked: new Set(),
      closed: new Set(),
      via: new Map(),
      write: queue,
      fail: (nodeId, message) => {
        if (!sub.pending.delete(nodeId)) return;
        void queue({ NodeErrors: [{ NodeID: nodeId, Message: `node ${this.nodeName(nodeId)}: ${message}` }] });
        if (sub.pending.size === 0 && !options.Follow) done();
      },
      finished: () => {
        if (sub.pending.size === 0 && !options.Follow) done();
      },
    };
    this.subs.set(sub.id, sub);
    const onAbort = (): void => done();
    signal.addEventListener('abort', onAbort, { once: true });
    const timers: NodeJS.Timeout[] = [];
    const asked = new Set<string>();
    const ask = (nodeId: string): void => {
      if (asked.has(nodeId)) return;
      asked.add(nodeId);
      sub.pending.add(nodeId);
      const node = this.ctx.store.get<StoredNode>('node', nodeId);
      const listener = this.listeners.get(nodeId);
      if (!node) sub.fail(nodeId, 'is no longer in the swarm');
      else if (node.Status?.State === 'down') sub.fail(nodeId, 'is down');
      else if (!listener) sub.fail(nodeId, 'is not connected to the leader');
      else {
        sub.via.set(nodeId, listener);
        listener.send({ ID: sub.id, Selector: selector, Options: options });
        const t = setTimeout(() => {
          if (!sub.acked.has(nodeId)) sub.fail(nodeId, `did not answer within ${this.ackTimeoutMs / 1000} s`);
        }, this.ackTimeoutMs);
        timers.push(t);
      }
    };
    const watchAc = new AbortController();
    try {
      if (options.Follow) {
        // Tasks of the selection placed later (scale up, replacements) bring their nodes in.
        const watch = async (): Promise<void> => {
          for await (const c of this.ctx.store.watch({ fromRevision, kinds: ['task'], signal: watchAc.signal })) {
            const t = c.object as StoredTask;
            if (c.action !== 'remove' && t.NodeID && (services.has(t.ServiceID ?? '') || taskIds.has(t.ID)))
              ask(t.NodeID);
          }
        };
        watch().catch((err: unknown) => {
          if (watchAc.signal.aborted) return;
          this.ctx.logger.warn({ err: errorMessage(err) }, 'log subscription: task watch failed');
        });
      }
      // All first, so that one failing at once does not end the subscription before the others.
      for (const nodeId of nodes) sub.pending.add(nodeId);
      for (const nodeId of [...nodes].sort()) ask(nodeId);
      sub.finished();
      await finishedP;
      await chain;
    } finally {
      watchAc.abort();
      for (const t of timers) clearTimeout(t);
      signal.removeEventListener('abort', onAbort);
      this.subs.delete(sub.id);
      // Every node asked that did not finish by itself stops (follow, failed, subscriber gone).
      for (const [nodeId, listener] of sub.via) {
        if (!sub.closed.has(nodeId) && this.listeners.get(nodeId) === listener)
          listener.send({ ID: sub.id, Close: true });
      }
    }
  }

  /** A node's batch for a subscription. */
  async publish(req: PublishLogsRequest, caller: CallerIdentity): Promise<PublishLogsResponse> {
    const nodeId = caller.nodeId;
    if (!nodeId) throw new CallerNotAllowedError('publishing logs needs a node certificate');
    const sub = this.subs.get(req.SubscriptionID ?? '');
    if (!sub) throw new LogSubscriptionGoneError(req.SubscriptionID ?? '');
    if (!sub.via.has(nodeId))
      throw new CallerNotAllowedError(`node ${nodeId} was not asked for subscription ${sub.id}`);
    if (!sub.pending.has(nodeId)) throw new LogSubscriptionGoneError(sub.id);
    sub.acked.add(nodeId);
    const messages: LogMessage[] = (req.Messages ?? []).map((m) => ({
      ...m,
      Context: { ...m.Context, NodeID: nodeId },
    }));
    if (messages.length > 0) await sub.write({ Messages: messages });
    if (req.Close) {
      sub.closed.add(nodeId);
      sub.pending.delete(nodeId);
      sub.finished();
    }
    return {};
  }

  private nodeName(nodeId: string): string {
    const n = this.ctx.store.get<StoredNode>('node', nodeId);
    const host = n?.Description?.Hostname || n?.Spec?.Name;
    return host ? `${host} (${nodeId})` : nodeId;
  }
}

/** The grpc-js implementation of shoal.LogBroker over a broker. */
export function logBrokerServer(broker: LogBroker, identify: (call: CallLike) => CallerIdentity): LogBrokerServer {
  return {
    subscribeLogs: serverStreamHandler((req, call, signal) =>
      broker.subscribe(req, (m) => writeWithBackpressure(call, m, signal), signal),
    ),
    listenSubscriptions: serverStreamHandler((req, call, signal) =>
      broker.listen(req, identify(call), (m) => void call.write(m), signal),
    ),
    publishLogs: unaryHandler((req, call) => broker.publish(req, identify(call))),
  };
}

/** Writes one message; resolves once the stream can take more (or the call ended). */
function writeWithBackpressure<T>(call: ServerWritableStream<unknown, T>, m: T, signal: AbortSignal): Promise<void> {
  if (call.write(m) || signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
