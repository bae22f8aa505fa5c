/**
 * The embedded DNS server (Docker's answers at 127.0.0.11 in each container): a UDP and TCP
 * responder on one port that answers A (and PTR) queries for the names in its table the asking
 * container may see, and forwards everything else to the host's resolvers. How the container's
 * 127.0.0.11:53 reaches it (a DNAT in the container's namespace) is the agent's business; here it
 * is a plain UDP socket and a TCP listener.
 *
 * - A name the table has on the client's networks, or `<name>.<network name>` of one of them
 *   (DnsTable.resolve): its addresses (shuffled, so that dnsrr spreads), TTL 600,
 *   authoritative; other types of such a name: no data (NOERROR, no answer).
 * - `d.c.b.a.in-addr.arpa` of an address in the table: PTR to its names.
 * - Anything else: forwarded to at most 3 upstream resolvers in turn (4 s each), over the
 *   transport the query came by, the first answer relayed as it is (a truncated UDP answer too:
 *   the client asks again over TCP). An upstream that cannot be reached (no route, port
 *   unreachable, connection refused) fails at once, and one answering SERVFAIL or REFUSED is
 *   passed over, as Docker's resolver does; SERVFAIL when none answers, NXDOMAIN when there are
 *   none.
 * - A query that does not parse: FORMERR. Not a plain query (opcode): NOTIMP.
 * - Over UDP an answer holds what fits in 512 bytes (or the client's EDNS size) and has TC set
 *   when records were left out; over TCP (RFC 7766: length-prefixed, several queries per
 *   connection, answered as they complete) it holds them all, up to 64 KiB.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { errnoCode, silentLogger, type Logger } from '@shoal/common';
import { DnsFormatError, InvalidAddressError } from '../errors.js';
import { parseIp } from '../ipv4.js';
import {
  RCODE,
  RR_TYPE,
  encodeError,
  encodeResponse,
  messageId,
  parseQuery,
  responseCode,
  type DnsAnswer,
  type DnsQuery,
} from './dns-message.js';
import type { DnsTable } from './dns-table.js';
import { TCP_MESSAGE_MAX, TcpFramer, askOverTcp, frame } from './dns-tcp.js';

export const DNS_TTL = 600;
export const MAX_UPSTREAMS = 3;
export const FORWARD_TIMEOUT_MS = 4000;
/** A TCP client connection with no query for this long is closed (RFC 7766 suggests seconds). */
export const TCP_IDLE_MS = 10_000;
/** TCP connections served at once; more are closed at once (a client then uses UDP or waits). */
export const TCP_MAX_CONNECTIONS = 256;

export type DnsTransport = 'udp' | 'tcp';

export interface DnsClient {
  address: string;
  port: number;
}

export interface DnsServerOptions {
  table: DnsTable;
  /** Resolvers for other names, `a.b.c.d` or `a.b.c.d:port` (the host's resolv.conf); at most 3 used. */
  upstreams?: readonly string[];
  /** The networks a client (by its source address) may see; undefined: every network. */
  scope?: (client: DnsClient) => ReadonlySet<string> | undefined;
  ttl?: number;
  forwardTimeoutMs?: number;
  logger?: Logger;
}

interface Upstream {
  address: string;
  port: number;
}

/** Checks an upstream resolver `a.b.c.d` or `a.b.c.d:port` (InvalidAddressError). */
export function parseUpstream(text: string): Upstream {
  const [address = '', port = '53'] = text.split(':');
  parseIp(address, 'upstream DNS server');
  const p = Number(port);
  if (!/^\d+$/.test(port) || p < 1 || p > 65535)
    throw new InvalidAddressError(`invalid upstream DNS server "${text}": bad port`);
  return { address, port: p };
}

export class EmbeddedDnsServer {
  private readonly upstreams: Upstream[];
  private readonly ttl: number;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private socket: Socket | undefined;
  private tcp: Server | undefined;
  private closed = false;
  private readonly inflight = new Set<Socket>();
  private readonly aborts = new Set<() => void>();
  private readonly connections = new Set<TcpSocket>();

  constructor(readonly options: DnsServerOptions) {
    this.upstreams = (options.upstreams ?? []).slice(0, MAX_UPSTREAMS).map(parseUpstream);
    this.ttl = options.ttl ?? DNS_TTL;
    this.timeoutMs = options.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS;
    this.log = options.logger ?? silentLogger();
  }

  /**
   * Binds the UDP socket and the TCP listener on the same port; resolves to the bound address
   * (port 0: a port free for both).
   */
  async listen(address = '127.0.0.1', port = 0): Promise<DnsClient> {
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(address, port);
      const bound = udp.address();
      try {
        this.tcp = await this.listenTcp(address, bound.port);
      } catch (err) {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        // the free UDP port is taken for TCP: try another (only when any port would do)
        if (port === 0 && errnoCode(err) === 'EADDRINUSE' && attempt < 20) continue;
        throw err;
      }
      this.socket = udp;
      return { address: bound.address, port: bound.port };
    }
  }

  private bindUdp(address: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.on('message', (msg, rinfo) => {
        this.handle(s, msg, { address: rinfo.address, port: rinfo.port });
      });
      s.bind(port, address, () => {
        s.off('error', reject);
        s.on('error', (err) => this.log.error({ err }, 'dns socket error'));
        resolve(s);
      });
    });
  }

  private listenTcp(address: string, port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const srv = createServer((c) => this.serveTcp(c));
      srv.maxConnections = TCP_MAX_CONNECTIONS;
      srv.once('error', reject);
      srv.listen({ host: address, port, exclusive: true }, () => {
        srv.off('error', reject);
        srv.on('error', (err) => this.log.error({ err }, 'dns tcp listener error'));
        resolve(srv);
      });
    });
  }

  /** Closes the socket, the listener, its connections and any forward in flight. */
  async close(): Promise<void> {
    this.closed = true;
    for (const f of this.inflight) f.close();
    this.inflight.clear();
    for (const abort of [...this.aborts]) abort();
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    const s = this.socket;
    this.socket = undefined;
    const tcp = this.tcp;
    this.tcp = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  /** One client connection: length-prefixed queries in, answers out as each is ready. */
  private serveTcp(c: TcpSocket): void {
    if (this.closed) return void c.destroy();
    this.connections.add(c);
    const client: DnsClient = { address: stripMapped(c.remoteAddress ?? ''), port: c.remotePort ?? 0 };
    const framer = new TcpFramer();
    c.setNoDelay(true);
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    c.on('error', (err) => this.log.debug({ err, client }, 'dns tcp connection error'));
    c.on('close', () => this.connections.delete(c));
    c.on('data', (chunk: Buffer) => {
      for (const msg of framer.push(chunk))
        this.answer(msg, client, 'tcp').then(
          (reply) => {
            if (reply && !c.destroyed) c.write(frame(reply));
          },
          (err: unknown) => this.log.error({ err, client }, 'dns query failed'),
        );
    });
  }

  private handle(s: Socket, msg: Buffer, client: DnsClient): void {
    this.answer(msg, client).then(
      (reply) => {
        if (reply && this.socket === s) s.send(reply, client.port, client.address);
      },
      (err: unknown) => this.log.error({ err, client }, 'dns query failed'),
    );
  }

  /** The reply to one query from `client` (undefined: nothing to send back). */
  async answer(msg: Buffer, client: DnsClient, transport: DnsTransport = 'udp'): Promise<Buffer | undefined> {
    let q: DnsQuery;
    try {
      q = parseQuery(msg);
    } catch (err) {
      if (!(err instanceof DnsFormatError)) throw err;
      this.log.debug({ client, err: err.message }, 'malformed dns query');
      return encodeError(msg, RCODE.FORMERR);
    }
    // over TCP the whole answer fits (the length prefix is the limit)
    if (transport === 'tcp') q = { ...q, udpSize: TCP_MESSAGE_MAX };
    if (q.opcode !== 0) return encodeResponse(q, RCODE.NOTIMP, [], false);
    const networks = this.options.scope?.(client);
    const local = this.local(q, networks);
    if (local) return local;
    return this.forward(msg, q, transport);
  }

  private local(q: DnsQuery, networks: ReadonlySet<string> | undefined): Buffer | undefined {
    const { name, type } = q.question;
    const ptr = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/.exec(name);
    if (ptr) {
      const names = this.options.table.reverse(`${ptr[4]}.${ptr[3]}.${ptr[2]}.${ptr[1]}`, networks);
      if (names.length === 0) return undefined;
      const answers =
        type === RR_TYPE.PTR || type === RR_TYPE.ANY ? names.map((n) => this.rr(name, RR_TYPE.PTR, n)) : [];
      return encodeResponse(q, RCODE.NOERROR, answers, true);
    }
    const addrs = this.options.table.resolve(name, networks);
    if (addrs.length === 0) return undefined;
    const answers =
      type === RR_TYPE.A || type === RR_TYPE.ANY ? shuffle(addrs).map((a) => this.rr(name, RR_TYPE.A, a)) : [];
    return encodeResponse(q, RCODE.NOERROR, answers, true);
  }

  private rr(name: string, type: number, data: string): DnsAnswer {
    return { name, type, ttl: this.ttl, data };
  }

  private async forward(msg: Buffer, q: DnsQuery, transport: DnsTransport): Promise<Buffer> {
    if (this.upstreams.length === 0) return encodeResponse(q, RCODE.NXDOMAIN, [], false);
    for (const up of this.upstreams) {
      if (this.closed) break;
      const reply =
        transport === 'tcp'
          ? await askOverTcp(up, msg, this.timeoutMs, (a) => this.track(a))
          : await this.ask(up, msg, q.id);
      const upstream = `${up.address}:${up.port}`;
      if (!reply) {
        this.log.warn({ upstream, name: q.question.name }, 'dns upstream did not answer');
        continue;
      }
      // a failure (or a refusal, which may pass) of this upstream: the next may know better
      const rcode = responseCode(reply);
      if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) {
        this.log.debug({ upstream, name: q.question.name, rcode }, 'dns upstream failed the query');
        continue;
      }
      return reply;
    }
    return encodeResponse(q, RCODE.SERVFAIL, [], false);
  }

  private track(abort: () => void): () => void {
    this.aborts.add(abort);
    return () => this.aborts.delete(abort);
  }

  /**
   * Sends a query to one upstream on a socket connected to it (only its address can answer, and
   * an ICMP port unreachable comes back as ECONNREFUSED); its reply, or undefined on timeout or
   * at once when the upstream cannot be reached (a send or socket error: no route, refused).
   */
  private ask(up: Upstream, msg: Buffer, id: number): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const s = createSocket('udp4');
      this.inflight.add(s);
      let settled = false;
      const done = (reply: Buffer | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (this.inflight.delete(s)) s.close();
        resolve(reply);
      };
      const failed = (err: Error | null | undefined): void => {
        if (!err) return;
        this.log.debug({ err, upstream: `${up.address}:${up.port}` }, 'dns upstream unreachable');
        done(undefined);
      };
      const timer = setTimeout(() => done(undefined), this.timeoutMs);
      s.on('error', failed);
      s.on('message', (reply) => {
        if (messageId(reply) === id) done(reply);
      });
      s.on('close', () => done(undefined));
      // without a callback Node reports no send error at all (ENETUNREACH): the query would wait
      // for the timeout
      s.connect(up.port, up.address, (err?: Error) => {
        if (err) return failed(err);
        if (!settled) s.send(msg, failed);
      });
    });
  }
}

/** `::ffff:a.b.c.d` (an IPv4 client on a dual-stack socket) as `a.b.c.d`. */
function stripMapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function shuffle<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
