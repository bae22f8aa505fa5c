/**
 * The embedded DNS server (Docker's answers at 127.0.0.11 in each container): a UDP responder
 * that answers A (and PTR) queries for the names in its table the asking container may see, and
 * forwards everything else to the host's resolvers. How the container's 127.0.0.11:53 reaches it
 * (a DNAT in the container's namespace) is the agent's business; here it is a plain UDP socket.
 *
 * - A name the table has on the client's networks: its addresses (shuffled, so that dnsrr
 *   spreads), TTL 600, authoritative; other types of such a name: no data (NOERROR, no answer).
 * - `d.c.b.a.in-addr.arpa` of an address in the table: PTR to its names.
 * - Anything else: forwarded to at most 3 upstream resolvers in turn (4 s each), the first answer
 *   relayed as it is; SERVFAIL when none answers, NXDOMAIN when there are none configured.
 * - A query that does not parse: FORMERR. Not a plain query (opcode): NOTIMP.
 */
import { createSocket, type Socket } from 'node:dgram';
import { silentLogger, type Logger } from '@shoal/common';
import { DnsFormatError, InvalidAddressError } from '../errors.js';
import { parseIp } from '../ipv4.js';
import {
  RCODE,
  RR_TYPE,
  encodeError,
  encodeResponse,
  messageId,
  parseQuery,
  type DnsAnswer,
  type DnsQuery,
} from './dns-message.js';
import type { DnsTable } from './dns-table.js';

export const DNS_TTL = 600;
export const MAX_UPSTREAMS = 3;
export const FORWARD_TIMEOUT_MS = 4000;

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

function parseUpstream(text: string): Upstream {
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
  private closed = false;
  private readonly inflight = new Set<Socket>();

  constructor(readonly options: DnsServerOptions) {
    this.upstreams = (options.upstreams ?? []).slice(0, MAX_UPSTREAMS).map(parseUpstream);
    this.ttl = options.ttl ?? DNS_TTL;
    this.timeoutMs = options.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS;
    this.log = options.logger ?? silentLogger();
  }

  /** Binds the UDP socket; resolves to the bound address (port 0: any free port). */
  listen(address = '127.0.0.1', port = 0): Promise<DnsClient> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.on('message', (msg, rinfo) => {
        this.handle(s, msg, { address: rinfo.address, port: rinfo.port });
      });
      s.bind(port, address, () => {
        s.off('error', reject);
        s.on('error', (err) => this.log.error({ err }, 'dns socket error'));
        this.socket = s;
        const a = s.address();
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  /** Closes the socket and any forward in flight. */
  async close(): Promise<void> {
    this.closed = true;
    for (const f of this.inflight) f.close();
    this.inflight.clear();
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
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
  async answer(msg: Buffer, client: DnsClient): Promise<Buffer | undefined> {
    let q: DnsQuery;
    try {
      q = parseQuery(msg);
    } catch (err) {
      if (!(err instanceof DnsFormatError)) throw err;
      this.log.debug({ client, err: err.message }, 'malformed dns query');
      return encodeError(msg, RCODE.FORMERR);
    }
    if (q.opcode !== 0) return encodeResponse(q, RCODE.NOTIMP, [], false);
    const networks = this.options.scope?.(client);
    const local = this.local(q, networks);
    if (local) return local;
    return this.forward(msg, q);
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
    const addrs = this.options.table.lookup(name, networks);
    if (addrs.length === 0) return undefined;
    const answers =
      type === RR_TYPE.A || type === RR_TYPE.ANY ? shuffle(addrs).map((a) => this.rr(name, RR_TYPE.A, a)) : [];
    return encodeResponse(q, RCODE.NOERROR, answers, true);
  }

  private rr(name: string, type: number, data: string): DnsAnswer {
    return { name, type, ttl: this.ttl, data };
  }

  private async forward(msg: Buffer, q: DnsQuery): Promise<Buffer> {
    if (this.upstreams.length === 0) return encodeResponse(q, RCODE.NXDOMAIN, [], false);
    for (const up of this.upstreams) {
      if (this.closed) break;
      const reply = await this.ask(up, msg, q.id);
      if (reply) return reply;
      this.log.warn({ upstream: `${up.address}:${up.port}`, name: q.question.name }, 'dns upstream did not answer');
    }
    return encodeResponse(q, RCODE.SERVFAIL, [], false);
  }

  /** Sends a query to one upstream; its reply, or undefined on timeout or a socket error. */
  private ask(up: Upstream, msg: Buffer, id: number): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const s = createSocket('udp4');
      this.inflight.add(s);
      const done = (reply: Buffer | undefined): void => {
        clearTimeout(timer);
        if (this.inflight.delete(s)) s.close();
        resolve(reply);
      };
      const timer = setTimeout(() => done(undefined), this.timeoutMs);
      s.on('error', (err) => {
        this.log.debug({ err, upstream: up.address }, 'dns upstream socket error');
        done(undefined);
      });
      s.on('message', (reply, rinfo) => {
        if (rinfo.address === up.address && rinfo.port === up.port && messageId(reply) === id) done(reply);
      });
      s.on('close', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      s.send(msg, up.port, up.address);
    });
  }
}

function shuffle<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
