/**
 * KV client used by tests and the benchmark: one pipelined connection to the member believed to
 * lead, following "not leader" redirects, trying the other endpoints when a connection fails,
 * and retrying writes with the same (clientId, seq) so each applies at most once.
 */
import { connect, type Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { errnoCode, type Logger, silentLogger } from '@shoal/common';
import { FrameDecoder } from '../codec/frames.js';
import { KvRequestError, KvTimeoutError } from '../errors.js';
import { parseHostPort } from '../transport/tcp-transport.js';
import type { KvResult } from './command.js';

/** Start of the server's error message for a write of an expired session (see server.ts). */
export const SESSION_EXPIRED = 'session expired';
import { decodeResponse, encodeRequest, type KvOp, type KvRequest, type KvResponse } from './protocol.js';

export interface KvClientOptions {
  /** Client addresses of the members (host:port). */
  readonly endpoints: readonly string[];
  /** Per-operation deadline (default 10 s); then KvTimeoutError (outcome unknown). */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}

interface Pending {
  req: KvRequest;
  frame: Buffer;
  resolve(r: KvResult): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  sent: boolean;
}

export class KvClient {
  private id = randomInt(1, 2 ** 47);
  /** A write of the current session was applied: the session exists on the servers. */
  private confirmed = false;
  private seq = 0;
  private reqId = 0;
  private readonly outstanding = new Set<number>();
  private readonly pending = new Map<number, Pending>();
  private socket: Socket | undefined;
  private connected = false;
  private target: string;
  private next = 0;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly timeoutMs: number;
  private readonly log: Logger;

  constructor(private readonly opts: KvClientOptions) {
    if (opts.endpoints.length === 0) throw new RangeError('KvClient needs at least one endpoint');
    this.target = opts.endpoints[0]!;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.log = opts.logger ?? silentLogger();
  }

  /** The current session's client id (renewed when the servers expired the session). */
  get clientId(): number {
    return this.id;
  }

  put(key: string, value: Uint8Array | string): Promise<KvResult> {
    return this.write('put', key, typeof value === 'string' ? Buffer.from(value) : value, undefined);
  }

  delete(key: string): Promise<KvResult> {
    return this.write('delete', key, null, undefined);
  }

  /** Sets `key` to `value` if its current value equals `expected` (null = absent). */
  cas(key: string, expected: Uint8Array | string | null, value: Uint8Array | string): Promise<KvResult> {
    const exp = typeof expected === 'string' ? Buffer.from(expected) : expected;
    return this.write('cas', key, typeof value === 'string' ? Buffer.from(value) : value, exp);
  }

  /** Linearizable read. */
  get(key: string): Promise<KvResult> {
    return this.request({ op: 'get', key, value: null, expected: undefined, seq: 0 });
  }

  private write(
    op: KvOp,
    key: string,
    value: Uint8Array | null,
    expected: Uint8Array | null | undefined,
  ): Promise<KvResult> {
    const seq = ++this.seq;
    this.outstanding.add(seq);
    const done = (): void => {
      this.outstanding.delete(seq);
    };
    const p = this.request({ op, key, value, expected, seq });
    p.then(done, done);
    return p;
  }

  private request(q: {
    op: KvOp;
    key: string;
    value: Uint8Array | null;
    expected: Uint8Array | null | undefined;
    seq: number;
  }): Promise<KvResult> {
    if (this.closed) return Promise.reject(new KvRequestError('client closed'));
    const reqId = (this.reqId = (this.reqId + 1) >>> 0);
    // Until a write of this session was applied, every write may be the one that starts it on
    // the servers, which accept an unknown session only from a request with firstUnacked <= 1.
    const firstUnacked = this.confirmed ? (this.outstanding.values().next().value ?? this.seq + 1) : 1;
    const req: KvRequest = { reqId, clientId: this.id, firstUnacked, ...q };
    return new Promise<KvResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(reqId);
        reject(new KvTimeoutError(q.op, q.key, this.timeoutMs));
      }, this.timeoutMs);
      const p: Pending = { req, frame: encodeRequest(req), resolve, reject, timer, sent: false };
      this.pending.set(reqId, p);
      this.send(p);
    });
  }

  private send(p: Pending): void {
    if (this.connected && this.socket !== undefined) {
      p.sent = true;
      this.socket.write(p.frame);
    } else {
      p.sent = false;
      this.ensureConnected();
    }
  }

  private ensureConnected(): void {
    if (this.socket !== undefined || this.closed || this.reconnectTimer !== undefined) return;
    const { host, port } = parseHostPort(this.target);
    const s = connect({ host, port, noDelay: true });
    this.socket = s;
    const dec = new FrameDecoder((b) => this.onResponse(decodeResponse(b)), 64 * 1024 * 1024);
    s.on('connect', () => {
      this.connected = true;
      const frames: Buffer[] = [];
      for (const p of this.pending.values()) {
        if (!p.sent) {
          p.sent = true;
          frames.push(p.frame);
        }
      }
      if (frames.length > 0) s.write(Buffer.concat(frames));
    });
    s.on('data', (d: Buffer) => dec.push(d));
    // a refused or reset connection is routine (a member restarts); the 'close' that always
    // follows resends what is in flight and reconnects
    s.on('error', (err) =>
      this.log.debug({ err: err.message, code: errnoCode(err), endpoint: this.target }, 'kv client: socket error'),
    );
    s.on('close', () => {
      this.socket = undefined;
      this.connected = false;
      if (this.closed) return;
      // Everything in flight is resent (writes keep their seq, so they apply at most once).
      for (const p of this.pending.values()) p.sent = false;
      this.switchTarget('');
      this.scheduleReconnect(50);
    });
  }

  private scheduleReconnect(ms: number): void {
    if (this.reconnectTimer !== undefined || this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.pending.size > 0) this.ensureConnected();
    }, ms);
  }

  private switchTarget(hint: string): void {
    if (hint !== '' && hint !== this.target) this.target = hint;
    else {
      const eps = this.opts.endpoints;
      this.next = (this.next + 1) % eps.length;
      if (eps[this.next] === this.target) this.next = (this.next + 1) % eps.length;
      this.target = eps[this.next]!;
    }
  }

  private onResponse(r: KvResponse): void {
    const p = this.pending.get(r.reqId);
    if (p === undefined) return;
    switch (r.status) {
      case 'ok':
        if (p.req.op !== 'get' && p.req.clientId === this.id) this.confirmed = true;
        this.pending.delete(r.reqId);
        clearTimeout(p.timer);
        p.resolve(r.result);
        return;
      case 'error':
        if (r.message.startsWith(SESSION_EXPIRED) && p.req.op !== 'get') {
          // The servers forgot this session (idle past their TTL) and refused the write without
          // applying it: start a new session and send it again as that session's write.
          if (p.req.clientId === this.id) {
            this.id = randomInt(1, 2 ** 47);
            this.confirmed = false;
          }
          p.req = { ...p.req, clientId: this.id, firstUnacked: 1 };
          p.frame = encodeRequest(p.req);
          p.sent = false;
          this.send(p);
          return;
        }
        this.pending.delete(r.reqId);
        clearTimeout(p.timer);
        p.reject(new KvRequestError(r.message));
        return;
      case 'notLeader': {
        p.sent = false;
        const s = this.socket;
        if (s !== undefined && r.leader !== this.target) {
          // Move the whole connection to the leader (hint) or the next endpoint.
          this.switchTarget(r.leader);
          this.socket = undefined;
          this.connected = false;
          s.removeAllListeners('close');
          s.destroy();
          for (const q of this.pending.values()) q.sent = false;
          this.scheduleReconnect(r.leader !== '' ? 0 : 50);
        } else this.retryLater(r.reqId, p, 50);
        return;
      }
      case 'retry':
        p.sent = false;
        this.retryLater(r.reqId, p, 20);
        return;
    }
  }

  private retryLater(reqId: number, p: Pending, ms: number): void {
    setTimeout(() => {
      if (this.pending.get(reqId) === p && !p.sent) this.send(p);
    }, ms);
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.socket?.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new KvRequestError('client closed'));
    }
    this.pending.clear();
  }
}
