/**
 * The node's side of the LogBroker while a dispatcher session is open: a ListenSubscriptions
 * stream to the session's manager (the leader), served by the worker's LogPublisher. A stream
 * that fails is opened again (backoff) until the session ends.
 */
import { LogBrokerClient, serverStream, unary } from '@shoal/api';
import { Backoff, errorMessage, ignoreAborted, sleep, type Logger } from '@shoal/common';
import type { LogBrokerLink, LogPublisher } from '@shoal/worker';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { clusterChannelOptions } from './grpc-raft-transport.js';

/** How long one PublishLogs call may take before the link counts as broken. */
const PUBLISH_DEADLINE_MS = 30_000;

/** The publisher's view of the LogBroker of one manager over gRPC. */
export function grpcLogBrokerLink(client: LogBrokerClient): LogBrokerLink {
  return {
    listen: (signal) => serverStream(client.listenSubscriptions.bind(client), {}, { signal }),
    async publish(req) {
      await unary(client.publishLogs.bind(client), req, { deadline: Date.now() + PUBLISH_DEADLINE_MS });
    },
  };
}

/** Runs `publisher` on `addr`'s LogBroker until `signal` aborts (the session's end). */
export async function runLogListener(opts: {
  addr: string;
  credentials: ChannelCredentials;
  /** The dispatcher session's channel: the logs share its connection to the manager. */
  channel?: ReturnType<LogBrokerClient['getChannel']>;
  publisher: LogPublisher;
  logger: Logger;
  signal: AbortSignal;
}): Promise<void> {
  const client = new LogBrokerClient(
    opts.addr,
    opts.credentials,
    opts.channel ? { channelOverride: opts.channel } : clusterChannelOptions(),
  );
  const backoff = new Backoff({ initialMs: 200, maxMs: 5000 });
  try {
    while (!opts.signal.aborted) {
      try {
        await opts.publisher.run(grpcLogBrokerLink(client), opts.signal);
      } catch (err) {
        if (opts.signal.aborted) break;
        opts.logger.debug({ manager: opts.addr, err: errorMessage(err) }, 'log subscriptions stream failed: reopening');
      }
      await sleep(backoff.next(), opts.signal).catch(ignoreAborted);
    }
  } finally {
    // A shared channel is the session's to close.
    if (!opts.channel) client.close();
  }
}
