/**
 * The node's one embedded DNS server (Docker's 127.0.0.11): a DnsTable filled per network from
 * the NetworkState assignments, answering each container only for the networks it is on (the
 * container is known by its gateway-bridge address, which the DNS redirect in its namespace uses
 * as the source), and forwarding other names to the host's resolvers. It listens on the gateway
 * bridge's address in the node's namespace while the bridge exists.
 */
import { errorMessage, type Logger } from '@shoal/common';
import { DnsTable, EmbeddedDnsServer, InvalidDnsNameError, type DnsClient } from '@shoal/network';
import type { DnsRecord } from './network-views.js';

export class NodeDns {
  readonly table = new DnsTable();
  /** Client (gateway-bridge) address -> the networks that container is on. */
  private readonly scopes = new Map<string, ReadonlySet<string>>();
  private server: EmbeddedDnsServer | undefined;
  private bound: DnsClient | undefined;
  private readonly records = new Map<string, string>();

  constructor(
    private readonly upstreams: () => string[],
    private readonly log: Logger,
  ) {}

  /** The ensure under way: sandboxes are built concurrently, and share the one start of the server. */
  private starting: { address: string; done: Promise<DnsClient> } | undefined;

  /** Listens on `address` (the gateway's) unless it already does; where it listens. */
  ensure(address: string): Promise<DnsClient> {
    if (this.server && this.bound?.address === address) return Promise.resolve(this.bound);
    if (this.starting?.address === address) return this.starting.done;
    const done = this.start(address).finally(() => {
      if (this.starting?.done === done) this.starting = undefined;
    });
    this.starting = { address, done };
    return done;
  }

  private async start(address: string): Promise<DnsClient> {
    await this.close();
    const server = new EmbeddedDnsServer({
      table: this.table,
      upstreams: this.upstreams(),
      scope: (client) => this.scopes.get(client.address) ?? new Set<string>(),
      logger: this.log,
    });
    this.bound = await server.listen(address, 0);
    this.server = server;
    this.log.info({ address: this.bound.address, port: this.bound.port }, 'embedded DNS server listening');
    return this.bound;
  }

  get listening(): DnsClient | undefined {
    return this.bound;
  }

  setScope(clientAddress: string, networks: ReadonlySet<string>): void {
    this.scopes.set(clientAddress, networks);
  }

  dropScope(clientAddress: string): void {
    this.scopes.delete(clientAddress);
  }

  /** Replaces a network's records (names that are not host names are skipped, with a warning). */
  setNetwork(networkId: string, records: readonly DnsRecord[]): void {
    const key = JSON.stringify(records);
    if (this.records.get(networkId) === key) return;
    this.records.set(networkId, key);
    this.table.removeNetwork(networkId);
    for (const r of records) {
      try {
        this.table.add(r.name, r.address, networkId);
      } catch (err) {
        if (!(err instanceof InvalidDnsNameError)) throw err;
        this.log.warn({ network: networkId, name: r.name, err: errorMessage(err) }, 'DNS name skipped');
      }
    }
  }

  removeNetwork(networkId: string): void {
    this.records.delete(networkId);
    this.table.removeNetwork(networkId);
  }

  /** The networks that have records. */
  networks(): string[] {
    return [...this.records.keys()];
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.bound = undefined;
    await s?.close();
  }
}
