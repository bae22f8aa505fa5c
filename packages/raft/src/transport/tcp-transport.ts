/**
 * TCP transport for real processes: one long-lived outbound connection per peer (inbound
 * connections only receive), length-prefixed frames, reconnect with backoff, bounded send queues
 * that drop on overflow, and snapshot messages chunked into frames and reassembled on receive.
 *
 * Frame payload: `u8 kind | body`; kind 0 = one encoded Message, kind 1 = a snapshot chunk
 * (`u32 seq | u32 total | bytes`; the chunks concatenated are one encoded Message).
 *
 * With snapshot files (`useSnapshotFiles`), a MsgSnap with empty data is streamed as a file:
 * kind 2 = begin (the encoded Message), kind 3 = a block of the file, kind 4 = end. The sender
 * reads the file block by block and waits for the socket to drain, so other messages
 * (heartbeats, appends) interleave; the receiver writes blocks to disk as they arrive (pausing
 * the socket when writes lag) and delivers the message once the file is verified and durable.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { errnoCode, type Logger, silentLogger } from '@shoal/common';
import type { Message, NodeId } from '../core/types.js';
import type { SnapshotFiles, SnapshotReceiver } from '../driver/snapshot-stream.js';
import { decodeMessage, encodeMessage } from '../codec/message-codec.js';
import { FrameDecoder } from '../codec/frames.js';
import type { Transport, TransportHandlers } from './transport.js';

export interface TcpTransportOptions {
  /** host:port to listen on (port 0 picks one; see `address()`). */
  readonly listen: string;
  readonly peers?: ReadonlyMap<NodeId, string> | Record<NodeId, string>;
  /** Bytes queued per peer while its socket is congested before dropping (default 64 MiB). */
  readonly maxQueueBytes?: number;
  /** Snapshot chunk size (default 1 MiB). */
  readonly chunkSize?: number;
  readonly logger?: Logger;
}

const KIND_MESSAGE = 0;
const KIND_CHUNK = 1;
const KIND_SNAP_BEGIN = 2;
const KIND_SNAP_DATA = 3;
const KIND_SNAP_END = 4;
/** Received snapshot bytes not yet on disk before the socket is paused. */
const RECV_HIGH_WATER = 16 * 1024 * 1024;

function kindFrame(kind: number, body: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(5 + body.byteLength);
  f.writeUInt32LE(body.byteLength + 1, 0);
  f[4] = kind;
  f.set(body, 5);
  return f;
}

interface Receiving {
  readonly body: Buffer;
  readonly rx: SnapshotReceiver;
  chain: Promise<void>;
  queued: number;
  failed: boolean;
}

export function parseHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad address ${addr}`);
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1', port };
}

class Peer {
  socket: Socket | undefined;
  connected = false;
  closed = false;
  backoff = 50;
  timer: NodeJS.Timeout | undefined;
  queued = 0;
  lastUnreachable = 0;
  /** Snapshot sends waiting for their last chunk to be flushed. */
  pendingSnaps = 0;

  constructor(
    readonly id: NodeId,
    public address: string,
    private readonly owner: TcpTransport,
  ) {}

  dial(): void {
    if (this.closed || this.socket !== undefined) return;
    const { host, port } = parseHostPort(this.address);
    const s = connect({ host, port, noDelay: true });
    this.socket = s;
    s.on('connect', () => {
      this.connected = true;
      this.backoff = 50;
    });
    s.on('drain', () => {
      this.queued = 0;
    });
    s.on('data', () => undefined); // outbound connections carry no replies
    // 'close' always follows and handles the loss (reconnect with backoff)
    s.on('error', (err) => this.owner.socketError(err, this.id));
    s.on('close', () => {
      const hadSnaps = this.pendingSnaps;
      this.pendingSnaps = 0;
      this.socket = undefined;
      this.connected = false;
      this.queued = 0;
      for (let i = 0; i < hadSnaps; i++) this.owner.snapshotStatus(this.id, false);
      if (this.closed) return;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.dial();
      }, this.backoff);
      this.backoff = Math.min(this.backoff * 2, 1000);
    });
  }

  /** Writes frames; false if dropped. */
  write(buf: Buffer, maxQueue: number, done?: (ok: boolean) => void): boolean {
    const s = this.socket;
    if (s === undefined || !this.connected || (s.writableNeedDrain && this.queued > maxQueue)) {
      if (this.socket === undefined) this.dial();
      return false;
    }
    this.queued += buf.length;
    if (done !== undefined) s.write(buf, (err) => done(err == null));
    else s.write(buf);
    return true;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.destroy();
  }
}

export class TcpTransport implements Transport {
  private server: Server | undefined;
  private handlers: TransportHandlers | undefined;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly inbound = new Set<Socket>();
  private readonly maxQueue: number;
  private readonly chunkSize: number;
  private readonly log: Logger;
  private boundAddress = '';
  private files: SnapshotFiles | undefined;

  constructor(private readonly opts: TcpTransportOptions) {
    this.maxQueue = opts.maxQueueBytes ?? 64 * 1024 * 1024;
    this.chunkSize = opts.chunkSize ?? 1024 * 1024;
    this.log = opts.logger ?? silentLogger();
    const peers: [NodeId, string][] =
      opts.peers instanceof Map
        ? [...(opts.peers as ReadonlyMap<NodeId, string>)]
        : Object.entries((opts.peers ?? {}) as Record<NodeId, string>);
    for (const [id, addr] of peers) this.setPeer(id, addr);
  }

  useSnapshotFiles(files: SnapshotFiles): void {
    this.files = files;
  }

  /** The bound listen address (after start). */
  address(): string {
    return this.boundAddress;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    const { host, port } = parseHostPort(this.opts.listen);
    const server = createServer((s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    if (a !== null && typeof a === 'object') this.boundAddress = `${a.address}:${a.port}`;
    for (const p of this.peers.values()) p.dial();
  }

  private accept(s: Socket): void {
    s.setNoDelay(true);
    this.inbound.add(s);
    let chunks: Buffer[] = [];
    let recv: Receiving | undefined;
    const dec = new FrameDecoder((payload) => {
      const kind = payload[0];
      if (kind === KIND_MESSAGE) this.deliver(payload.subarray(1));
      else if (kind === KIND_SNAP_BEGIN || kind === KIND_SNAP_DATA || kind === KIND_SNAP_END) {
        recv = this.receiveSnapshot(s, recv, kind, payload.subarray(1));
      } else if (kind === KIND_CHUNK) {
        const seq = payload.readUInt32LE(1);
        const total = payload.readUInt32LE(5);
        if (seq === 0) chunks = [];
        chunks.push(Buffer.from(payload.subarray(9)));
        if (seq + 1 === total) {
          const whole = Buffer.concat(chunks);
          chunks = [];
          this.deliver(whole);
        }
      } else throw new RangeError(`unknown frame kind ${kind}`);
    });
    s.on('data', (d: Buffer) => {
      try {
        dec.push(d);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'raft transport: bad inbound stream, closing');
        s.destroy();
      }
    });
    // 'close' always follows and handles the loss
    s.on('error', (err) => this.socketError(err));
    s.on('close', () => {
      this.inbound.delete(s);
      if (recv !== undefined) {
        const r = recv;
        r.chain = r.chain.then(() => r.rx.abort()).catch((err: unknown) => this.recvFailed(err));
      }
    });
  }

  private recvFailed(err: unknown): void {
    this.log.warn({ err: (err as Error).message }, 'raft transport: snapshot receive failed');
  }

  /** One frame of a streamed snapshot; returns the receive in progress (undefined when done). */
  private receiveSnapshot(s: Socket, cur: Receiving | undefined, kind: number, body: Buffer): Receiving | undefined {
    if (kind === KIND_SNAP_BEGIN) {
      if (cur !== undefined) {
        const old = cur;
        old.chain = old.chain.then(() => old.rx.abort()).catch((err: unknown) => this.recvFailed(err));
      }
      if (this.files === undefined) throw new RangeError('streamed snapshot received but no snapshot files are set');
      const m = decodeMessage(body);
      if (m.snapshot === undefined) throw new RangeError('streamed snapshot frame without a snapshot');
      const rx = this.files.receive(m.snapshot.metadata.term, m.snapshot.metadata.index);
      return { body: Buffer.from(body), rx, chain: Promise.resolve(), queued: 0, failed: false };
    }
    if (cur === undefined) throw new RangeError('snapshot data without a begin frame');
    const r = cur;
    if (kind === KIND_SNAP_DATA) {
      r.queued += body.length;
      if (r.queued > RECV_HIGH_WATER && !s.isPaused()) s.pause();
      r.chain = r.chain.then(async () => {
        if (r.failed) return;
        await r.rx.write(body);
        r.queued -= body.length;
        if (r.queued <= RECV_HIGH_WATER / 2 && s.isPaused()) s.resume();
      });
      r.chain.catch(() => {
        r.failed = true;
      });
      return r;
    }
    // End: verify and fsync, then hand the message (data empty: the file holds it) to raft.
    r.chain = r.chain
      .then(() => r.rx.finish())
      .then(
        () => this.deliver(r.body),
        async (err: unknown) => {
          this.recvFailed(err);
          await r.rx.abort();
        },
      )
      .catch((err: unknown) => this.recvFailed(err));
    return undefined;
  }

  private deliver(bytes: Buffer): void {
    const m = decodeMessage(bytes);
    this.handlers?.onMessage(m);
  }

  /**
   * @internal A socket error: connection loss is routine (a peer restarts), and the socket's
   * 'close' that always follows does the handling, so it is only logged at debug level.
   */
  socketError(err: Error, peer?: NodeId): void {
    this.log.debug({ err: err.message, code: errnoCode(err), peer }, 'raft transport: socket error');
  }

  /** @internal */
  snapshotStatus(id: NodeId, ok: boolean): void {
    this.handlers?.onSnapshotStatus(id, ok);
  }

  send(msgs: readonly Message[]): void {
    if (msgs.length === 0) return;
    // Group per peer so that each peer gets one socket write per call.
    const byPeer = new Map<NodeId, Buffer[]>();
    for (const m of msgs) {
      const peer = this.peers.get(m.to);
      if (peer === undefined) continue;
      const body = encodeMessage(m);
      if (m.snapshot !== undefined) {
        if (this.files !== undefined && m.snapshot.data.byteLength === 0) void this.streamSnapshot(peer, m, body);
        else this.sendSnapshot(peer, body);
        continue;
      }
      const f = Buffer.allocUnsafe(5 + body.length);
      f.writeUInt32LE(body.length + 1, 0);
      f[4] = KIND_MESSAGE;
      body.copy(f, 5);
      let l = byPeer.get(m.to);
      if (l === undefined) byPeer.set(m.to, (l = []));
      l.push(f);
    }
    for (const [id, frames] of byPeer) {
      const peer = this.peers.get(id)!;
      const buf = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
      if (!peer.write(buf, this.maxQueue)) this.unreachable(peer);
    }
  }

  private sendSnapshot(peer: Peer, body: Buffer): void {
    const total = Math.max(1, Math.ceil(body.length / this.chunkSize));
    const frames: Buffer[] = [];
    for (let seq = 0; seq < total; seq++) {
      const part = body.subarray(seq * this.chunkSize, (seq + 1) * this.chunkSize);
      const f = Buffer.allocUnsafe(13 + part.length);
      f.writeUInt32LE(9 + part.length, 0);
      f[4] = KIND_CHUNK;
      f.writeUInt32LE(seq, 5);
      f.writeUInt32LE(total, 9);
      part.copy(f, 13);
      frames.push(f);
    }
    peer.pendingSnaps++;
    const ok = peer.write(Buffer.concat(frames), Number.MAX_SAFE_INTEGER, (written) => {
      if (peer.pendingSnaps === 0) return; // already reported by the connection's close
      peer.pendingSnaps--;
      this.snapshotStatus(peer.id, written);
    });
    if (!ok) {
      peer.pendingSnaps--;
      this.snapshotStatus(peer.id, false);
      this.unreachable(peer);
    }
  }

  /** Sends the stored snapshot file block by block, waiting for the socket to drain between blocks. */
  private async streamSnapshot(peer: Peer, m: Message, body: Buffer): Promise<void> {
    const sock = peer.socket;
    const files = this.files!;
    const meta = m.snapshot!.metadata;
    if (sock === undefined || !peer.connected) {
      if (peer.socket === undefined) peer.dial();
      this.snapshotStatus(peer.id, false);
      this.unreachable(peer);
      return;
    }
    peer.pendingSnaps++;
    const alive = (): boolean => peer.socket === sock && !sock.destroyed;
    try {
      sock.write(kindFrame(KIND_SNAP_BEGIN, body));
      for await (const block of files.readFile(meta.term, meta.index)) {
        if (!alive()) return; // the close handler reported the failure
        if (!sock.write(kindFrame(KIND_SNAP_DATA, block))) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              sock.off('drain', done);
              sock.off('close', done);
              resolve();
            };
            sock.on('drain', done);
            sock.on('close', done);
          });
        }
      }
      if (!alive()) return;
      sock.write(kindFrame(KIND_SNAP_END, new Uint8Array(0)), (err) => {
        if (peer.pendingSnaps === 0) return;
        peer.pendingSnaps--;
        this.snapshotStatus(peer.id, err == null);
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message, to: peer.id }, 'raft transport: snapshot send failed');
      if (alive()) sock.destroy(); // the close handler reports the failure
    }
  }

  private unreachable(peer: Peer): void {
    const now = Date.now();
    if (now - peer.lastUnreachable < 100) return;
    peer.lastUnreachable = now;
    this.handlers?.onUnreachable(peer.id);
  }

  setPeer(id: NodeId, address: string): void {
    const p = this.peers.get(id);
    if (p !== undefined && p.address === address) return;
    p?.close();
    const peer = new Peer(id, address, this);
    this.peers.set(id, peer);
    if (this.server !== undefined) peer.dial();
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  async close(): Promise<void> {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    for (const s of this.inbound) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
