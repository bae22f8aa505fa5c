/**
 * The node side of `service logs`: the node listens for log subscriptions on the manager of its
 * session (ListenSubscriptions), and for each one reads the logs of its task containers that
 * match the selector from the engine (labels `com.docker.swarm.service.id` / `.task.id`), sending
 * them back in batches with PublishLogs. The first (empty) PublishLogs acknowledges the
 * subscription; a last one with Close says the node sent everything (without Follow). With
 * Follow, containers of the selection that appear later are picked up too (the engine is polled).
 */
import type { LogMessage, LogSubscriptionOptions, PublishLogsRequest, SubscriptionMessage } from '@shoal/api';
import { errorMessage, ignoreAborted, sleep, type Logger } from '@shoal/common';
import { ContainerNotFoundError, type Engine } from '@shoal/engine';
import { LABEL_SERVICE_ID, LABEL_TASK_ID } from './labels.js';

/** What the publisher needs of a session: the subscriptions stream and the publish call. */
export interface LogBrokerLink {
  /** ListenSubscriptions: ends (or fails) with the session. */
  listen(signal: AbortSignal): AsyncIterable<SubscriptionMessage>;
  /** One PublishLogs call; rejects when the subscription is gone or the link broke. */
  publish(req: PublishLogsRequest): Promise<void>;
}

/** The part of the engine the publisher reads. */
export type LogEngine = Pick<Engine, 'list' | 'inspect' | 'logs'>;

/** Lines per PublishLogs call, and bytes (gRPC's default message limit is 4 MiB). */
const BATCH_LINES = 1000;
const BATCH_BYTES = 1 << 20;
/** Lines read ahead of what the manager took, per subscription. */
const MAX_QUEUED = 4 * BATCH_LINES;

export interface LogPublisherOptions {
  engine: LogEngine;
  nodeId: string;
  logger: Logger;
  /** How often a following subscription looks for new containers of its selection (ms). */
  pollMs?: number;
}

export class LogPublisher {
  constructor(private readonly opts: LogPublisherOptions) {}

  /** Serves the subscriptions that arrive on `link` until its stream ends or `signal` aborts. */
  async run(link: LogBrokerLink, signal: AbortSignal): Promise<void> {
    const active = new Map<string, AbortController>();
    const stopAll = (): void => {
      for (const ac of active.values()) ac.abort();
    };
    signal.addEventListener('abort', stopAll, { once: true });
    try {
      for await (const m of link.listen(signal)) {
        const id = m.ID ?? '';
        if (m.Close) {
          active.get(id)?.abort();
          active.delete(id);
          continue;
        }
        if (id === '' || active.has(id)) continue;
        const ac = new AbortController();
        active.set(id, ac);
        void this.serve(link, m, ac.signal).then(
          () => active.delete(id),
          (err: unknown) => {
            active.delete(id);
            if (!ac.signal.aborted)
              this.opts.logger.warn({ subscription: id, err: errorMessage(err) }, 'log subscription failed');
          },
        );
      }
    } finally {
      signal.removeEventListener('abort', stopAll);
      stopAll();
    }
  }

  /** One subscription: the matching containers' logs, then Close (without Follow). */
  async serve(link: LogBrokerLink, sub: SubscriptionMessage, signal: AbortSignal): Promise<void> {
    const out = new Batcher(link, sub.ID ?? '', signal);
    await out.flushNow(); // the acknowledgement
    const options = sub.Options ?? {};
    const services = new Set(sub.Selector?.ServiceIDs ?? []);
    const tasks = new Set(sub.Selector?.TaskIDs ?? []);
    const seen = new Set<string>();
    const readers: Promise<void>[] = [];
    const scan = async (): Promise<void> => {
      for (const c of await this.opts.engine.list({ all: true })) {
        if (seen.has(c.id)) continue;
        let labels: Record<string, string>;
        try {
          labels = (await this.opts.engine.inspect(c.id)).labels;
        } catch (err) {
          if (err instanceof ContainerNotFoundError) continue; // removed meanwhile
          throw err;
        }
        const serviceId = labels[LABEL_SERVICE_ID] ?? '';
        const taskId = labels[LABEL_TASK_ID] ?? '';
        if (taskId === '' || !(services.has(serviceId) || tasks.has(taskId))) continue;
        seen.add(c.id);
        readers.push(this.read(c.id, { ServiceID: serviceId, NodeID: this.opts.nodeId, TaskID: taskId }, options, out));
      }
    };
    await scan();
    if (options.Follow) {
      const pollMs = this.opts.pollMs ?? 1000;
      while (!out.signal.aborted) {
        await sleep(pollMs, out.signal).catch(ignoreAborted);
        if (!out.signal.aborted) await scan();
      }
    }
    await Promise.all(readers);
    if (out.failed) throw out.failed;
    if (!signal.aborted) await out.close();
  }

  private async read(
    container: string,
    context: NonNullable<LogMessage['Context']>,
    options: LogSubscriptionOptions,
    out: Batcher,
  ): Promise<void> {
    const tail = options.Tail ?? -1;
    try {
      for await (const e of this.opts.engine.logs(container, {
        follow: options.Follow ?? false,
        ...(tail >= 0 ? { tail } : {}),
        ...(options.Since ? { since: options.Since } : {}),
        signal: out.signal,
      })) {
        await out.add({
          Context: context,
          Timestamp: e.time,
          Stream: e.stream,
          Data: e.line,
          Complete: !e.partial,
        });
        if (out.signal.aborted) return;
      }
    } catch (err) {
      if (err instanceof ContainerNotFoundError) return; // removed meanwhile: nothing to send
      if (out.signal.aborted) return;
      throw err;
    }
  }
}

/** Gathers one subscription's lines into PublishLogs calls, one call at a time, in order. */
class Batcher {
  private queue: LogMessage[] = [];
  private sending: Promise<void> | undefined;
  private readonly ac = new AbortController();
  failed: Error | undefined;

  constructor(
    private readonly link: LogBrokerLink,
    private readonly id: string,
    outer: AbortSignal,
  ) {
    if (outer.aborted) this.ac.abort();
    else outer.addEventListener('abort', () => this.ac.abort(), { once: true });
  }

  /** Aborts when the subscription ends or a publish failed. */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** Queues a line; waits while too many are queued. */
  async add(m: LogMessage): Promise<void> {
    this.queue.push(m);
    this.kick();
    while (this.queue.length >= MAX_QUEUED && this.sending && !this.ac.signal.aborted) await this.sending;
  }

  /** Sends an empty batch now (the acknowledgement). */
  async flushNow(): Promise<void> {
    await this.link.publish({ SubscriptionID: this.id, Messages: [] });
  }

  /** Sends what is queued, then Close. */
  async close(): Promise<void> {
    while (this.sending) await this.sending;
    if (this.failed) throw this.failed;
    await this.link.publish({ SubscriptionID: this.id, Messages: this.queue.splice(0), Close: true });
  }

  private kick(): void {
    if (this.sending) return;
    this.sending = this.drain().finally(() => (this.sending = undefined));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.ac.signal.aborted) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && n < BATCH_LINES && bytes < BATCH_BYTES) bytes += this.queue[n++]!.Data!.length;
      const batch = this.queue.splice(0, n);
      try {
        await this.link.publish({ SubscriptionID: this.id, Messages: batch });
      } catch (err) {
        // The subscription is gone or the link broke: stop reading for it.
        this.failed = err instanceof Error ? err : new Error(String(err));
        this.queue = [];
        this.ac.abort();
      }
    }
  }
}
