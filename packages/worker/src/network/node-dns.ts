/**
 * The node's one embedded DNS server (Docker's 127.0.0.11): the names of each network from the
 * NetworkState assignments, answering each container only for the networks it is on (the
 * container is known by its gateway-bridge address, which the DNS redirect in its namespace uses
 * as the source), and forwarding other names to the host's resolvers, over UDP and TCP. It
 * listens on the gateway bridge's address in the node's namespace while the bridge exists.
 *
 * The server answers on a thread of its own (ThreadedDnsServer), so queries are not held up by
 * the agent's main loop (syncs, gRPC, a manager's commits in the same process). This class keeps
 * the names and scopes and sends the thread each change; a new thread (after a failure, or a new
 * gateway address) gets them all again. `settled()` resolves once the thread has what was sent.
 */
import { errorMessage, type Logger } from '@shoal/common';
import { InvalidDnsNameError, ThreadedDnsServer, normaliseName, type DnsClient } from '@shoal/network';
import type { DnsRecord } from './network-views.js';

export class NodeDns {
  /** Client (gateway-bridge) address -> the networks that container is on. */
  private readonly scopes = new Map<string, ReadonlySet<string>>();
  private server: ThreadedDnsServer | undefined;
  private bound: DnsClient | undefined;
  /** Per network: its name, its records (valid names only) and their JSON (to skip unchanged updates). */
  private readonly records = new Map<string, { key: string; name: string | undefined; records: DnsRecord[] }>();

  constructor(
    private readonly upstreams: () => string[],
    private readonly log: Logger,
  ) {}

  /** The ensure under way: sandboxes are built concurrently, and share the one start of the server. */
  private starting: { address: string; done: Promise<DnsClient> } | undefined;

  /** Listens on `address` (the gateway's) unless it already does; where it listens. */
  ensure(address: string, port = 0): Promise<DnsClient> {
    if (this.server?.listening && this.bound?.address === address) return Promise.resolve(this.bound);
    if (this.starting?.address === address) return this.starting.done;
    const done = this.start(address, port).finally(() => {
      if (this.starting?.done === done) this.starting = undefined;
    });
    this.starting = { address, done };
    return done;
  }

  private async start(address: string, port: number): Promise<DnsClient> {
    await this.close();
    const server: ThreadedDnsServer = new ThreadedDnsServer({
      upstreams: this.upstreams(),
      logger: this.log,
      // not `realtime`: on a busy machine it removes the thread's own delay, but the p99 a
      // container (an ordinary process) sees did not drop (docs/network.md, Benchmark)
      onExit: (err) => this.restart(server, address, port === 0 ? (this.bound?.port ?? 0) : port, err),
    });
    this.bound = await server.listen(address, port);
    this.server = server;
    for (const [id, r] of this.records) server.setNetwork(id, r.records, r.name);
    for (const [client, networks] of this.scopes) server.setScope(client, networks);
    this.log.info({ address: this.bound.address, port: this.bound.port }, 'embedded DNS server listening');
    return this.bound;
  }

  /** The thread ended on its own: a new one on the same address and port (the redirects point there). */
  private restart(dead: ThreadedDnsServer, address: string, port: number, err: Error): void {
    if (this.server !== dead) return;
    this.log.error({ err: errorMessage(err), address, port }, 'the DNS thread ended: starting it again');
    this.server = undefined;
    this.bound = undefined;
    this.ensure(address, port).catch((e: unknown) =>
      this.log.error({ err: errorMessage(e), address, port }, 'the DNS server could not start again'),
    );
  }

  get listening(): DnsClient | undefined {
    return this.bound;
  }

  setScope(clientAddress: string, networks: ReadonlySet<string>): void {
    this.scopes.set(clientAddress, networks);
    this.server?.setScope(clientAddress, networks);
  }

  dropScope(clientAddress: string): void {
    this.scopes.delete(clientAddress);
    this.server?.dropScope(clientAddress);
  }

  /**
   * Replaces a network's records (names that are not host names are skipped, with a warning) and
   * its name, so `<record>.<network name>` resolves too.
   */
  setNetwork(networkId: string, records: readonly DnsRecord[], name?: string): void {
    const key = JSON.stringify([name, records]);
    if (this.records.get(networkId)?.key === key) return;
    const valid: DnsRecord[] = [];
    for (const r of records) {
      try {
        normaliseName(r.name);
        valid.push(r);
      } catch (err) {
        if (!(err instanceof InvalidDnsNameError)) throw err;
        this.log.warn({ network: networkId, name: r.name, err: errorMessage(err) }, 'DNS name skipped');
      }
    }
    this.records.set(networkId, { key, name, records: valid });
    this.server?.setNetwork(networkId, valid, name);
  }

  removeNetwork(networkId: string): void {
    this.records.delete(networkId);
    this.server?.removeNetwork(networkId);
  }

  /** The networks that have records. */
  networks(): string[] {
    return [...this.records.keys()];
  }

  /** Resolves once the server answers with every change made so far. */
  settled(): Promise<void> {
    return this.server?.settled() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.bound = undefined;
    await s?.close();
  }
}
