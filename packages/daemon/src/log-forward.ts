/**
 * `service logs` on a manager that is not the leader: the CLI's SubscribeLogs (on the unix
 * socket) is sent on to the leader's LogBroker with this node's manager certificate, and the
 * leader's messages are written back as they come. Only SubscribeLogs is forwarded: the node
 * side (ListenSubscriptions, PublishLogs) always talks to the leader of its session.
 */
import type { ChannelCredentials, UntypedServiceImplementation } from '@grpc/grpc-js';
import { LogBrokerClient, serverStream, serverStreamHandler } from '@shoal/api';
import type { SubscribeLogsMessage, SubscribeLogsRequest } from '@shoal/api';
import { clusterChannelOptions } from './grpc-raft-transport.js';

export class LogForwarder {
  private client: LogBrokerClient | undefined;
  private address = '';

  constructor(private readonly credentials: () => ChannelCredentials) {}

  /** A LogBroker implementation whose SubscribeLogs goes to `address`. */
  serviceFor(address: string): UntypedServiceImplementation {
    if (this.client === undefined || this.address !== address) {
      this.client?.close();
      this.client = new LogBrokerClient(address, this.credentials(), clusterChannelOptions());
      this.address = address;
    }
    const client = this.client;
    return {
      subscribeLogs: serverStreamHandler<SubscribeLogsRequest, SubscribeLogsMessage>(async (req, call, signal) => {
        for await (const m of serverStream(client.subscribeLogs.bind(client), req, { signal })) {
          if (!call.write(m))
            await new Promise<void>((resolve) => {
              call.once('drain', resolve);
              signal.addEventListener('abort', () => resolve(), { once: true });
            });
        }
      }),
    };
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}
