/**
 * Control calls from the CLI on a manager that is not the leader go to the leader, made with
 * this node's manager certificate (the leader sees a `manager` caller). Every Control RPC is unary.
 */
import {
  Client,
  Metadata,
  type ServiceDefinition,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
  type ChannelCredentials,
} from '@grpc/grpc-js';
import { clusterChannelOptions } from './grpc-raft-transport.js';

export class LeaderForwarder {
  private client: Client | undefined;
  private address = '';

  constructor(private readonly credentials: () => ChannelCredentials) {}

  /** A Control implementation that forwards each call to `address`. */
  serviceFor(definition: ServiceDefinition, address: string): UntypedServiceImplementation {
    if (this.client === undefined || this.address !== address) {
      this.client?.close();
      this.client = new Client(address, this.credentials(), clusterChannelOptions());
      this.address = address;
    }
    const client = this.client;
    const impl: UntypedServiceImplementation = {};
    for (const [key, m] of Object.entries(definition)) {
      impl[key] = ((call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const md = new Metadata();
        const deadline = call.getDeadline();
        client.makeUnaryRequest(
          m.path,
          m.requestSerialize as (v: unknown) => Buffer,
          m.responseDeserialize as (b: Buffer) => unknown,
          call.request,
          md,
          deadline === Infinity ? {} : { deadline },
          (err, res) => (err ? callback(err) : callback(null, res)),
        );
      }) as never;
    }
    return impl;
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}
