/**
 * raft's Transport over the gRPC `shoal.Raft` service, on the cluster's mTLS port (2377): one
 * long-lived `StreamRaftMessage` client stream per peer carries that peer's messages (each one
 * encoded by raft's codec). A broken stream is reopened on the next send after a backoff
 * (50 ms doubling to 1 s); while a peer is down or its stream is congested past `maxQueueBytes`,
 * messages are dropped and the core told the peer is unreachable.
 *
 * Snapshots with snapshot files (raft's DiskLogStore keeps snapshot data in files) travel on a
 * call of their own (metadata `shoal-raft-snapshot`): the first request is the `snap` message
 * without data, then the stored file's transfer form in requests of at most 1 MiB
 * (`SNAPSHOT_CHUNK_BYTES`), read from the file as they are sent and written by the receiver
 * through raft's SnapshotReceiver as they arrive (gRPC's flow control paces both ends), so no
 * message comes near gRPC's message size limit and the file is never held whole. The receiver
 * verifies and syncs the file, hands raft the message, and only then answers the call: the
 * sender reports the snapshot's outcome from that answer. Inbound messages come from the server
 * side (`raftService()`), which only managers may call (roles in proto/).
 */
import type { ChannelCredentials, ClientWritableStream } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import {
  RaftClient,
  clientStreamHandler,
  unaryHandler,
  type RaftServer,
  type RaftMessageRequest,
  type RaftMessageResponse,
} from '@shoal/api';
import { type Logger, silentLogger } from '@shoal/common';
import {
  decodeMessage,
  encodeMessage,
  type Message,
  type NodeId,
  type SnapshotFiles,
  type Transport,
  type TransportHandlers,
} from '@shoal/raft';
import { DaemonError } from './errors.js';

export const MAX_RAFT_MESSAGE_BYTES = 512 * 1024 * 1024;
/** The largest piece of a snapshot file in one gRPC message. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Call metadata marking a `StreamRaftMessage` call that carries one snapshot. */
export const SNAPSHOT_STREAM_HEADER = 'shoal-raft-snapshot';

export interface GrpcRaftTransportOptions {
  /** Current client credentials (this node's manager certificate); re-read on every (re)connect. */
  credentials: () => ChannelCredentials;
  peers?: Record<NodeId, string>;
  maxQueueBytes?: number;
  logger?: Logger;
}

/**
 * HTTP/2 keepalive PINGs of the cluster port (the server side of node-to-node connections): a
 * PING after CLUSTER_KEEPALIVE_TIME_MS without one, and the connection is closed when its ack
 * takes longer than CLUSTER_KEEPALIVE_TIMEOUT_MS. A cut link (no RST, no FIN) is so found within
 * time + timeout; that ends the node's dispatcher session, and the leader marks the node down
 * when it does not reconnect within SESSION_LOSS_GRACE_MS (@shoal/manager). The peer's HTTP/2
 * layer acks a PING as soon as its event loop reads the socket: 3 s is long against Raft's 600 ms
 * election timeout, and a dropped healthy connection only costs a reconnect. Clients keep gentler
 * PINGs (clusterChannelOptions): a worker finds a cut link from its heartbeats too.
 */
export const CLUSTER_KEEPALIVE_TIME_MS = 2_000;
export const CLUSTER_KEEPALIVE_TIMEOUT_MS = 3_000;

/** grpc-js server options of the cluster port: its keepalive PINGs (grpc-js enforces no client PING rate). */
export function clusterServerKeepalive(): Record<string, number> {
  return {
    'grpc.keepalive_time_ms': CLUSTER_KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': CLUSTER_KEEPALIVE_TIMEOUT_MS,
  };
}

/** grpc-js channel options for node-to-node connections (servers present node certificates). */
export function clusterChannelOptions(): Record<string, string | number> {
  return {
    'grpc.ssl_target_name_override': 'swarm-manager',
    'grpc.max_receive_message_length': MAX_RAFT_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_RAFT_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1_000,
  };
}

class PeerLink {
  client: RaftClient | undefined;
  stream: ClientWritableStream<RaftMessageRequest> | undefined;
  queued = 0;
  backoffMs = 50;
  retryAt = 0;
  lastUnreachable = 0;
  /** Snapshot calls in flight (cancelled when the link closes). */
  readonly snapshotCalls = new Set<ClientWritableStream<RaftMessageRequest>>();

  constructor(
    readonly id: NodeId,
    public address: string,
  ) {}

  close(): void {
    for (const c of this.snapshotCalls) c.cancel();
    this.snapshotCalls.clear();
    this.stream?.end();
    this.stream = undefined;
    this.client?.close();
    this.client = undefined;
  }
}

export class GrpcRaftTransport implements Transport {
  private handlers: TransportHandlers | undefined;
  private files: SnapshotFiles | undefined;
  private readonly peers = new Map<NodeId, PeerLink>();
  private readonly log: Logger;
  private readonly maxQueue: number;
  private closed = false;

  constructor(private readonly opts: GrpcRaftTransportOptions) {
    this.log = opts.logger ?? silentLogger();
    this.maxQueue = opts.maxQueueBytes ?? 64 * 1024 * 1024;
    for (const [id, addr] of Object.entries(opts.peers ?? {})) this.setPeer(id, addr);
  }

  start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    return Promise.resolve();
  }

  /** Raft's snapshot files: snapshots then travel as the stored file's bytes. */
  useSnapshotFiles(files: SnapshotFiles): void {
    this.files = files;
  }

  /** Delivers an inbound message (from the gRPC server side). */
  deliver(bytes: Uint8Array): void {
    if (this.closed || !this.handlers) return;
    const m = decodeMessage(bytes);
    if (m.snapshot !== undefined && m.snapshot.data.byteLength > 0 && this.files !== undefined) {
      void this.receiveSnapshotFile(m, this.files);
      return;
    }
    this.handlers.onMessage(m);
  }

  /** Writes a received snapshot file through raft's receiver, then hands raft the message. */
  private async receiveSnapshotFile(m: Message, files: SnapshotFiles): Promise<void> {
    const snap = m.snapshot;
    if (snap === undefined) return;
    const rx = files.receive(snap.metadata.term, snap.metadata.index);
    try {
      await rx.write(snap.data);
      await rx.finish();
    } catch (err) {
      await rx
        .abort()
        .catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'dropping a snapshot file failed'));
      this.log.warn({ from: m.from, err: (err as Error).message }, 'raft snapshot receive failed');
      return;
    }
    if (!this.closed) this.handlers?.onMessage({ ...m, snapshot: { ...snap, data: new Uint8Array(0) } });
  }

  /**
   * Receives one snapshot call: the `snap` message first, then the file's blocks, written through
   * raft's receiver as they arrive; raft gets the message once the file is verified and durable.
   */
  async receiveSnapshotStream(requests: AsyncIterable<RaftMessageRequest>): Promise<void> {
    const files = this.files;
    const it = requests[Symbol.asyncIterator]();
    const first = await it.next();
    const m = first.done === true ? undefined : decodeMessage(first.value.Message ?? new Uint8Array());
    const snap = m?.snapshot;
    if (m === undefined || snap === undefined) {
      throw new DaemonError(
        'DAEMON_RAFT_SNAPSHOT_REFUSED',
        'a raft snapshot stream must start with a snapshot message',
        'invalid-argument',
      );
    }
    if (files === undefined || this.closed || !this.handlers) {
      throw new DaemonError(
        'DAEMON_SERVICE_UNAVAILABLE',
        'this node does not receive raft snapshot files now',
        'unavailable',
        { retryable: true },
      );
    }
    const rx = files.receive(snap.metadata.term, snap.metadata.index);
    let bytes = 0;
    let chunks = 0;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done === true) break;
        const block = r.value.Message ?? new Uint8Array();
        await rx.write(block);
        bytes += block.byteLength;
        chunks++;
      }
      await rx.finish();
    } catch (err) {
      await rx
        .abort()
        .catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'dropping a snapshot file failed'));
      this.log.warn({ from: m.from, err: (err as Error).message }, 'raft snapshot receive failed');
      throw err;
    }
    this.log.info({ from: m.from, index: snap.metadata.index, bytes, chunks }, 'raft snapshot received');
    if (!this.closed) this.handlers.onMessage({ ...m, snapshot: { ...snap, data: new Uint8Array(0) } });
  }

  /** Streams the stored snapshot file of `m` to its peer on a call of its own, in chunks. */
  private async sendSnapshotFile(m: Message, files: SnapshotFiles): Promise<void> {
    const snap = m.snapshot;
    const p = this.peers.get(m.to);
    if (snap === undefined || p === undefined || Date.now() < p.retryAt) {
      this.unreachable(m.to, p, m);
      return;
    }
    p.client ??= new RaftClient(p.address, this.opts.credentials(), clusterChannelOptions());
    const md = new Metadata();
    md.set(SNAPSHOT_STREAM_HEADER, `${snap.metadata.term}-${snap.metadata.index}`);
    let settled = false;
    const report = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      this.handlers?.onSnapshotStatus(m.to, ok);
    };
    let ended: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (ended = resolve));
    const call = p.client.streamRaftMessage(md, {}, (err: Error | null) => {
      p.snapshotCalls.delete(call);
      ended();
      if (err) this.log.warn({ to: m.to, err: err.message }, 'raft snapshot send failed');
      else this.log.info({ to: m.to, index: snap.metadata.index }, 'raft snapshot sent');
      report(!err);
    });
    call.on('error', (err: Error) => this.log.debug({ to: m.to, err: err.message }, 'raft snapshot stream error'));
    p.snapshotCalls.add(call);
    let open = true;
    void done.then(() => (open = false));
    const write = async (chunk: Uint8Array): Promise<void> => {
      if (!call.write({ Message: chunk })) {
        await Promise.race([new Promise<void>((resolve) => call.once('drain', resolve)), done]);
      }
    };
    try {
      await write(encodeMessage({ ...m, snapshot: { ...snap, data: new Uint8Array(0) } }));
      for await (const block of files.readFile(snap.metadata.term, snap.metadata.index)) {
        for (let off = 0; off < block.byteLength && open; off += SNAPSHOT_CHUNK_BYTES) {
          await write(block.subarray(off, Math.min(off + SNAPSHOT_CHUNK_BYTES, block.byteLength)));
        }
        if (!open || this.closed) return; // the call ended (its callback reported) or we closed
      }
      call.end();
    } catch (err) {
      this.log.warn({ to: m.to, err: (err as Error).message }, 'raft snapshot file unreadable');
      call.cancel();
      report(false);
    }
  }

  setPeer(id: NodeId, address: string): void {
    const p = this.peers.get(id);
    if (p === undefined) this.peers.set(id, new PeerLink(id, address));
    else if (p.address !== address) {
      p.close();
      p.address = address;
    }
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  peerAddress(id: NodeId): string | undefined {
    return this.peers.get(id)?.address;
  }

  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      if (m.snapshot !== undefined && m.snapshot.data.byteLength === 0 && this.files !== undefined) {
        void this.sendSnapshotFile(m, this.files);
        continue;
      }
      const p = this.peers.get(m.to);
      if (!p) {
        this.unreachable(m.to, undefined, m);
        continue;
      }
      const stream = this.streamOf(p);
      if (!stream || p.queued > this.maxQueue) {
        this.unreachable(m.to, p, m);
        continue;
      }
      const bytes = encodeMessage(m);
      p.queued += bytes.length;
      const isSnap = m.type === 'snap';
      stream.write({ Message: bytes }, (err: Error | null | undefined) => {
        p.queued -= bytes.length;
        if (isSnap) this.handlers?.onSnapshotStatus(m.to, !err);
      });
    }
  }

  private streamOf(p: PeerLink): ClientWritableStream<RaftMessageRequest> | undefined {
    if (p.stream) return p.stream;
    if (Date.now() < p.retryAt) return undefined;
    p.client ??= new RaftClient(p.address, this.opts.credentials(), clusterChannelOptions());
    const stream = p.client.streamRaftMessage(new Metadata(), {}, (err: Error | null, _res?: RaftMessageResponse) => {
      if (p.stream === stream) p.stream = undefined;
      p.queued = 0;
      if (err && !this.closed) {
        this.log.debug({ peer: p.id, address: p.address, err: err.message }, 'raft stream to peer ended');
        p.retryAt = Date.now() + p.backoffMs;
        p.backoffMs = Math.min(p.backoffMs * 2, 1000);
        // A refused certificate or a wrong address must be seen by the operator, not only retried.
        if (!/UNAVAILABLE|CANCELLED/.test(err.message))
          this.log.warn({ peer: p.id, address: p.address, err: err.message }, 'raft stream refused');
      }
    });
    // The status listener above reports refusals; the 'error' event repeats them.
    stream.on('error', (err: Error) => this.log.debug({ peer: p.id, err: err.message }, 'raft stream error'));
    // The stream is usable at once; a success on the first message resets the backoff.
    p.stream = stream;
    p.backoffMs = Math.max(50, p.backoffMs);
    return stream;
  }

  private unreachable(id: NodeId, p: PeerLink | undefined, m: Message): void {
    if (m.type === 'snap') this.handlers?.onSnapshotStatus(id, false);
    const now = Date.now();
    if (p && now - p.lastUnreachable < 100) return;
    if (p) p.lastUnreachable = now;
    this.handlers?.onUnreachable(id);
  }

  close(): Promise<void> {
    this.closed = true;
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    return Promise.resolve();
  }
}

/**
 * The server side of `shoal.Raft`: messages go to whatever transport is current (`target()`), so
 * the service can be registered once and the Raft node replaced (leave, force-new-cluster).
 */
export function raftService(
  target: () => GrpcRaftTransport | undefined,
  resolve: (raftId: string) => string | undefined,
): RaftServer {
  return {
    processRaftMessage: unaryHandler(async (req: RaftMessageRequest) => {
      target()?.deliver(req.Message ?? new Uint8Array());
      return Promise.resolve({});
    }),
    streamRaftMessage: clientStreamHandler(async (call) => {
      if (call.metadata.get(SNAPSHOT_STREAM_HEADER).length > 0) {
        const t = target();
        if (t === undefined) {
          throw new DaemonError('DAEMON_SERVICE_UNAVAILABLE', 'raft is not running on this node now', 'unavailable', {
            retryable: true,
          });
        }
        await t.receiveSnapshotStream(call as AsyncIterable<RaftMessageRequest>);
        return {};
      }
      for await (const req of call as AsyncIterable<RaftMessageRequest>) {
        target()?.deliver(req.Message ?? new Uint8Array());
      }
      return {};
    }),
    resolveAddress: unaryHandler(async (req) => Promise.resolve({ Addr: resolve(String(req.RaftID ?? '')) ?? '' })),
  };
}
