/**
 * The KV client-facing server: decodes pipelined requests, proposes writes and runs reads behind
 * a ReadIndex barrier on the leader, and sends all responses ready in one microtask run (e.g. one Ready) as one
 * socket write. Non-leaders answer "not leader" with the leader's client address when known.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type Logger, silentLogger, errnoCode, errorMessage, ShoalError } from '@shoal/common';
import { BinaryWriter } from '../codec/binary.js';
import { FrameDecoder } from '../codec/frames.js';
import type { RaftNode } from '../driver/raft-node.js';
import type { NodeId } from '../core/types.js';
import { parseHostPort } from '../transport/tcp-transport.js';
import { encodeCommand, type KvCommand, type KvResult } from './command.js';
import { SESSION_EXPIRED } from './client.js';
import { decodeRequest, encodeResponse, type KvRequest, type KvResponse } from './protocol.js';
import { SESSION_EXPIRED_REVISION, type KvStateMachine } from './state-machine.js';

export interface KvServerOptions {
  readonly node: RaftNode;
  readonly stateMachine: KvStateMachine;
  readonly listen: string;
  /** Client addresses of the members, to redirect clients to the leader. */
  readonly clientAddresses?: Readonly<Record<NodeId, string>>;
  readonly logger?: Logger;
}

class Conn {
  private out: BinaryWriter | undefined;

  constructor(readonly socket: Socket) {}

  reply(p: KvResponse): void {
    if (this.socket.destroyed) return;
    if (this.out === undefined) {
      this.out = new BinaryWriter(4096);
      queueMicrotask(() => this.flush());
    }
    encodeResponse(this.out, p);
  }

  private flush(): void {
    const w = this.out;
    this.out = undefined;
    if (w !== undefined && !this.socket.destroyed) this.socket.write(Buffer.from(w.finish()));
  }
}

export class KvServer {
  private server: Server | undefined;
  private readonly conns = new Set<Socket>();
  private readonly log: Logger;
  private bound = '';

  constructor(private readonly opts: KvServerOptions) {
    this.log = opts.logger ?? silentLogger();
  }

  address(): string {
    return this.bound;
  }

  async start(): Promise<void> {
    const { host, port } = parseHostPort(this.opts.listen);
    const server = createServer((s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address();
    if (a !== null && typeof a === 'object') this.bound = `${a.address}:${a.port}`;
  }

  private accept(s: Socket): void {
    s.setNoDelay(true);
    this.conns.add(s);
    const conn = new Conn(s);
    const dec = new FrameDecoder((payload) => this.handle(conn, decodeRequest(payload)), 64 * 1024 * 1024);
    s.on('data', (d: Buffer) => {
      try {
        dec.push(d);
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'kv: bad client stream');
        s.destroy();
      }
    });
    // a client that goes away is routine; the 'close' that always follows forgets the connection
    s.on('error', (err) => this.log.debug({ err: err.message, code: errnoCode(err) }, 'kv: client socket error'));
    s.on('close', () => this.conns.delete(s));
  }

  private handle(conn: Conn, q: KvRequest): void {
    const node = this.opts.node;
    const info = node.leaderInfo();
    if (!info.isLeader) {
      conn.reply({ reqId: q.reqId, status: 'notLeader', leader: this.opts.clientAddresses?.[info.leader] ?? '' });
      return;
    }
    const fail = (err: unknown): void => {
      const retryable = err instanceof ShoalError && err.retryable;
      conn.reply({ reqId: q.reqId, status: retryable ? 'retry' : 'error', message: errorMessage(err) });
    };
    if (q.op === 'get') {
      node
        .readIndex()
        .then(() => conn.reply({ reqId: q.reqId, status: 'ok', result: this.opts.stateMachine.get(q.key) }), fail);
      return;
    }
    let cmd: KvCommand;
    // The leader's clock goes into the entry: session expiry then follows the log on every replica.
    const session = { clientId: q.clientId, seq: q.seq, firstUnacked: q.firstUnacked, ts: Date.now() };
    if (q.op === 'put') cmd = { op: 'put', key: q.key, value: q.value ?? new Uint8Array(0), ...session };
    else if (q.op === 'delete') cmd = { op: 'delete', key: q.key, ...session };
    else cmd = { op: 'cas', key: q.key, expected: q.expected ?? null, value: q.value ?? new Uint8Array(0), ...session };
    node.propose<KvResult>(encodeCommand(cmd)).then((result) => {
      if (result.revision === SESSION_EXPIRED_REVISION)
        conn.reply({ reqId: q.reqId, status: 'error', message: `${SESSION_EXPIRED}: start a new client session` });
      else if (result.revision < 0)
        conn.reply({ reqId: q.reqId, status: 'error', message: 'stale request (session seq already forgotten)' });
      else conn.reply({ reqId: q.reqId, status: 'ok', result });
    }, fail);
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
