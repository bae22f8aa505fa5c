/**
 * The dispatcher (leader only): node sessions and heartbeats. A session opens with the node's
 * certificate, marks the node ready with the address it calls from and the description it
 * sends, and streams the node its own Node object, the manager list and the heartbeat period
 * whenever they change. Each heartbeat pushes the node's deadline to period x 3 (SwarmKit's
 * grace multiplier); a node whose deadline passes is marked down. A new leader gives every node
 * a fresh deadline of twice that (as SwarmKit after a leader change), so a failover never marks
 * a live node down: its node has time to find the new leader and open a session there.
 *
 * A session that ends because its node went away (the client cancelled, or its connection
 * closed: a killed daemon's socket is closed by its kernel; a cut link is found by the cluster
 * port's HTTP/2 keepalive pings) brings the node's deadline forward to SESSION_LOSS_GRACE_MS:
 * a node that does not open a new session by then is marked down, without waiting for period x 3
 * of missed heartbeats. A node that reconnects within it (a transient error) stays ready. A node
 * whose daemon stops in an orderly way says so in a last heartbeat (`Stopping`) and keeps its
 * heartbeat deadline, so a restarted daemon finds its tasks still assigned to it. Sessions this
 * dispatcher ends itself (step-down, replacement, removal, expiry) never shorten a deadline.
 */
import type {
  AttachNetworkRequest,
  AttachNetworkResponse,
  DetachNetworkRequest,
  DetachNetworkResponse,
  AssignmentsMessage,
  AssignmentsRequest,
  HeartbeatRequest,
  HeartbeatResponse,
  NodeDescription,
  SessionMessage,
  SessionRequest,
  UpdateTaskStatusRequest,
  UpdateTaskStatusResponse,
  WeightedPeer,
} from '@shoal/api';
import { errorMessage, newObjectId } from '@shoal/common';
import type { Change } from '@shoal/store';
import { CallerNotAllowedError, NodeNotFoundError, NotLeaderError, SessionInvalidError } from './errors.js';
import { AssignmentSet } from './dispatcher-assignments.js';
import { NetworkStates } from './dispatcher-networks.js';
import { StatusBatcher } from './dispatcher-status.js';
import { heartbeatPeriodMs, type ManagerContext, membership, type StoredNode, updateNode } from './context.js';
import type { CallerIdentity } from './identity.js';
import type { NetworkAttachments } from './networks/attachments.js';
import { nodeView } from './nodes.js';

/** Missed periods before a node is marked down (SwarmKit's grace multiplier). */
export const HEARTBEAT_GRACE = 3;
/** Extra factor of the first deadline after a leader change. */
export const FAILOVER_GRACE_FACTOR = 2;
/**
 * How long a node whose session ended (without a `Stopping` heartbeat) has to open a new one
 * before it is marked down. The worker reconnects to the same manager first, within a few
 * hundred ms; a leader change ends sessions on the old leader, whose deadlines stop with it, and
 * the new leader gives every node the failover grace above.
 */
export const SESSION_LOSS_GRACE_MS = 2000;
/** Node status messages of the two ways a node is found gone. */
export const DOWN_HEARTBEAT = 'heartbeat failure';
export const DOWN_SESSION_LOST = 'session lost and not reopened';
/** Weight of every manager in the list a node gets (SwarmKit's default observation weight). */
const MANAGER_WEIGHT = 10;

interface Session {
  readonly id: string;
  readonly nodeId: string;
  push(msg: SessionMessage): void;
  end(err?: Error): void;
  /** The node said (in a heartbeat) that its daemon is stopping in an orderly way. */
  stopping: boolean;
  /** Resolves when the session ends (with the error it ended with, if any). */
  readonly ended: Promise<Error | undefined>;
}

export class Dispatcher {
  private running = false;
  private generation = 0;
  private readonly sessions = new Map<string, Session>();
  private readonly deadlines = new Map<string, { cancel(): void; at: number }>();
  private watchAbort: AbortController | undefined;
  private managersKey = '';
  readonly status: StatusBatcher;
  /** The overlay network states, shared by every node's assignments stream. */
  readonly networks: NetworkStates;

  constructor(private readonly ctx: ManagerContext) {
    this.status = new StatusBatcher(ctx);
    this.networks = new NetworkStates(ctx.store);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** The time (clock ms) at which `nodeId` is marked down unless it heartbeats; for tests. */
  deadlineOf(nodeId: string): number | undefined {
    return this.deadlines.get(nodeId)?.at;
  }

  sessionIdOf(nodeId: string): string | undefined {
    return this.sessions.get(nodeId)?.id;
  }

  /** Starts on election: every node gets a fresh (failover) deadline; this manager is ready. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const gen = ++this.generation;
    const grace = heartbeatPeriodMs(this.ctx) * HEARTBEAT_GRACE * FAILOVER_GRACE_FACTOR;
    for (const n of this.ctx.store.list<StoredNode>('node')) {
      if (n.ID === this.ctx.nodeId || n.Status?.State === 'down') continue;
      this.arm(n.ID, grace);
    }
    this.managersKey = this.computeManagersKey();
    const self = this.ctx.store.get<StoredNode>('node', this.ctx.nodeId);
    if (self !== undefined && self.Status?.State !== 'ready') {
      void updateNode(this.ctx, self.ID, (n) =>
        n.Status?.State === 'ready' ? undefined : { ...n, Status: { ...n.Status, State: 'ready', Message: '' } },
      ).catch((err: unknown) => this.ctx.logger.warn({ err: errorMessage(err) }, 'could not mark this manager ready'));
    }
    const ac = new AbortController();
    this.watchAbort = ac;
    void this.watchNodes(ac.signal, gen);
  }

  /** Stops on step-down: no more deadlines, and every session ends (nodes go to the new leader). */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.generation++;
    this.watchAbort?.abort();
    this.watchAbort = undefined;
    for (const d of this.deadlines.values()) d.cancel();
    this.deadlines.clear();
    const leader = this.ctx.raft.leaderInfo().leader;
    for (const s of [...this.sessions.values()]) s.end(new NotLeaderError('the dispatcher session', leader));
    this.sessions.clear();
    this.status.stop();
  }

  private requireRunning(what: string): void {
    if (!this.running) throw new NotLeaderError(what, this.ctx.raft.leaderInfo().leader);
  }

  private arm(nodeId: string, ms: number, why = DOWN_HEARTBEAT): void {
    if (nodeId === this.ctx.nodeId) return;
    this.deadlines.get(nodeId)?.cancel();
    const gen = this.generation;
    const at = this.ctx.clock.now() + ms;
    const t = this.ctx.clock.setTimeout(() => void this.expire(nodeId, gen, why, at), ms);
    this.deadlines.set(nodeId, { cancel: () => t.cancel(), at });
  }

  /** A node's session ended because the node went away: its deadline comes forward to the grace. */
  private sessionLost(nodeId: string): void {
    if (!this.running || this.sessions.has(nodeId)) return;
    const d = this.deadlines.get(nodeId);
    if (d !== undefined && d.at <= this.ctx.clock.now() + SESSION_LOSS_GRACE_MS) return;
    this.ctx.logger.info({ nodeId, graceMs: SESSION_LOSS_GRACE_MS }, 'node session lost: down unless it reconnects');
    this.arm(nodeId, SESSION_LOSS_GRACE_MS, DOWN_SESSION_LOST);
  }

  private async expire(nodeId: string, gen: number, why: string, at: number): Promise<void> {
    if (!this.running || gen !== this.generation) return;
    const late = this.ctx.clock.now() - at;
    if (why === DOWN_SESSION_LOST && late > SESSION_LOSS_GRACE_MS) {
      // This process stalled for longer than the grace itself (an overloaded host): the node may
      // have found no leader to reconnect to. It gets one more grace, as a heartbeat deadline.
      this.ctx.logger.warn({ nodeId, lateMs: late }, 'session-loss deadline fired late: one more grace');
      this.arm(nodeId, SESSION_LOSS_GRACE_MS, DOWN_HEARTBEAT);
      return;
    }
    this.deadlines.delete(nodeId);
    this.sessions.get(nodeId)?.end(new SessionInvalidError(nodeId));
    this.sessions.delete(nodeId);
    try {
      await updateNode(this.ctx, nodeId, (n) =>
        n.Status?.State === 'down' ? undefined : { ...n, Status: { ...n.Status, State: 'down', Message: why } },
      );
      this.ctx.logger.warn({ nodeId, why }, 'node marked down');
    } catch (err) {
      if (err instanceof NodeNotFoundError) return;
      this.ctx.logger.warn({ nodeId, err: errorMessage(err) }, 'could not mark node down; retrying');
      if (this.running && gen === this.generation) this.arm(nodeId, heartbeatPeriodMs(this.ctx), why);
    }
  }

  /** One node session: resolves when the session ends (client gone or replaced), throws on errors. */
  async session(
    req: SessionRequest,
    caller: CallerIdentity,
    write: (msg: SessionMessage) => void,
    signal: AbortSignal,
  ): Promise<void> {
    this.requireRunning('the dispatcher session');
    const nodeId = caller.nodeId;
    if (nodeId === undefined) throw new CallerNotAllowedError('a session needs a node certificate');
    if (this.ctx.store.get<StoredNode>('node', nodeId) === undefined) throw new NodeNotFoundError(nodeId);
    this.sessions.get(nodeId)?.end();
    const id = newObjectId();
    let finish!: (err?: Error) => void;
    const ended = new Promise<Error | undefined>((resolve) => (finish = resolve));
    const session: Session = {
      id,
      nodeId,
      push: (msg) => {
        if (!signal.aborted) write(msg);
      },
      end: (err) => finish(err),
      ended,
      stopping: false,
    };
    let lost = false;
    const onAbort = (): void => {
      lost = true;
      finish();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.sessions.set(nodeId, session);
    this.arm(nodeId, heartbeatPeriodMs(this.ctx) * HEARTBEAT_GRACE);
    try {
      await this.markReady(nodeId, caller.addr, req.Description);
      const msg = this.message(nodeId, id);
      if (msg !== undefined) session.push(msg);
      const err = await ended;
      if (err !== undefined) throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (this.sessions.get(nodeId) === session) {
        this.sessions.delete(nodeId);
        if (lost && !session.stopping) this.sessionLost(nodeId);
      }
    }
  }

  heartbeat(req: HeartbeatRequest, caller: CallerIdentity): HeartbeatResponse {
    this.requireRunning('the heartbeat');
    const nodeId = caller.nodeId;
    if (nodeId === undefined) throw new CallerNotAllowedError('a heartbeat needs a node certificate');
    const s = this.sessions.get(nodeId);
    if (s === undefined || (req.SessionID !== undefined && req.SessionID !== '' && req.SessionID !== s.id)) {
      throw new SessionInvalidError(nodeId);
    }
    if (req.Stopping === true) {
      s.stopping = true;
      this.ctx.logger.info({ nodeId }, 'node daemon stopping: its heartbeat deadline stands');
    }
    const period = heartbeatPeriodMs(this.ctx);
    this.arm(nodeId, period * HEARTBEAT_GRACE);
    return { Period: period * 1e6 };
  }

  private currentSession(nodeId: string | undefined, sessionId: string | undefined, what: string): Session {
    this.requireRunning(what);
    if (nodeId === undefined) throw new CallerNotAllowedError(`${what} needs a node certificate`);
    const s = this.sessions.get(nodeId);
    if (s === undefined || (sessionId !== undefined && sessionId !== '' && sessionId !== s.id)) {
      throw new SessionInvalidError(nodeId);
    }
    return s;
  }

  /**
   * The node's assignments: the complete set, then incremental changes from a store watch,
   * until the client goes away or the session ends (then with the session's error, or
   * MANAGER_SESSION_INVALID: open a new session and a new stream).
   */
  async assignments(
    req: AssignmentsRequest,
    caller: CallerIdentity,
    write: (msg: AssignmentsMessage) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const session = this.currentSession(caller.nodeId, req.SessionID, 'the assignments stream');
    const nodeId = session.nodeId;
    const set = new AssignmentSet(this.ctx.store, nodeId, this.networks);
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let failed!: (err: Error) => void;
    const watchFailed = new Promise<Error>((resolve) => (failed = resolve));
    const fromRevision = this.ctx.store.revision;
    write(set.complete());
    let scheduled = false;
    const flush = (): void => {
      scheduled = false;
      if (ac.signal.aborted) return;
      const msg = set.incremental();
      if (msg !== undefined) write(msg);
    };
    const watch = async (): Promise<void> => {
      const kinds: ('task' | 'secret' | 'config' | 'service' | 'node' | 'network')[] = [
        'task',
        'secret',
        'config',
        'service',
        'node',
        'network',
      ];
      for await (const c of this.ctx.store.watch({ fromRevision, kinds, signal: ac.signal })) {
        if (!set.concerns(c) || scheduled) continue;
        scheduled = true;
        setImmediate(flush);
      }
    };
    watch().catch((err: unknown) => {
      if (!ac.signal.aborted) failed(err instanceof Error ? err : new Error(String(err)));
    });
    const aborted = new Promise<undefined>((resolve) => ac.signal.addEventListener('abort', () => resolve(undefined)));
    try {
      const how = await Promise.race([
        session.ended.then((err) => ({ err: err ?? new SessionInvalidError(nodeId) })),
        watchFailed.then((err) => ({ err })),
        aborted.then(() => ({ err: undefined })),
      ]);
      if (how.err !== undefined && !signal.aborted) throw how.err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      ac.abort();
    }
  }

  /** Task status from a node: its own tasks only; batched into store transactions. */
  async updateTaskStatus(req: UpdateTaskStatusRequest, caller: CallerIdentity): Promise<UpdateTaskStatusResponse> {
    const session = this.currentSession(caller.nodeId, req.SessionID, 'a task status update');
    await this.status.submit(session.nodeId, req.Updates ?? []);
    return {};
  }

  /**
   * A plain container's attachment to an attachable network on the caller's node (its session's
   * node): see networks/attachments.ts.
   */
  async attachNetwork(
    req: AttachNetworkRequest,
    caller: CallerIdentity,
    attachments: NetworkAttachments,
  ): Promise<AttachNetworkResponse> {
    const session = this.currentSession(caller.nodeId, req.SessionID, 'a network attachment');
    return { AttachmentID: await attachments.attach(session.nodeId, req.Config, req.ContainerID ?? '') };
  }

  /** Ends one of the caller's network attachments. */
  async detachNetwork(
    req: DetachNetworkRequest,
    caller: CallerIdentity,
    attachments: NetworkAttachments,
  ): Promise<DetachNetworkResponse> {
    const session = this.currentSession(caller.nodeId, req.SessionID, 'a network detachment');
    await attachments.detach(session.nodeId, req.AttachmentID ?? '');
    return {};
  }

  /** Ends the session of a removed node. */
  dropNode(nodeId: string): void {
    this.deadlines.get(nodeId)?.cancel();
    this.deadlines.delete(nodeId);
    this.sessions.get(nodeId)?.end(new NodeNotFoundError(nodeId));
    this.sessions.delete(nodeId);
  }

  private async markReady(nodeId: string, addr: string, description: NodeDescription | undefined): Promise<void> {
    await updateNode(this.ctx, nodeId, (n) => {
      const sameDesc = description === undefined || JSON.stringify(description) === JSON.stringify(n.Description);
      if (n.Status?.State === 'ready' && (addr === '' || n.Status.Addr === addr) && sameDesc) return undefined;
      return {
        ...n,
        ...(description === undefined ? {} : { Description: description }),
        Status: { State: 'ready', Message: '', Addr: addr === '' ? (n.Status?.Addr ?? '') : addr },
      };
    });
  }

  private managers(): WeightedPeer[] {
    const m = membership(this.ctx);
    return m.voters
      .map((id) => this.ctx.store.get<StoredNode>('node', id))
      .filter((n): n is StoredNode => n !== undefined && (n.ManagerStatus?.Addr ?? '') !== '')
      .map((n) => ({ Peer: { NodeID: n.ID, Addr: n.ManagerStatus?.Addr ?? '' }, Weight: MANAGER_WEIGHT }));
  }

  private computeManagersKey(): string {
    return this.managers()
      .map((p) => `${p.Peer?.NodeID}=${p.Peer?.Addr}`)
      .sort()
      .join(',');
  }

  private message(nodeId: string, sessionId: string): SessionMessage | undefined {
    const n = this.ctx.store.get<StoredNode>('node', nodeId);
    if (n === undefined) return undefined;
    return {
      SessionID: sessionId,
      Node: nodeView(n, membership(this.ctx)),
      Managers: this.managers(),
      RootCA: Buffer.from(this.ctx.rootCA.certPem),
      HeartbeatPeriod: heartbeatPeriodMs(this.ctx) * 1e6,
    };
  }

  private async watchNodes(signal: AbortSignal, gen: number): Promise<void> {
    try {
      for await (const c of this.ctx.store.watch({ fromRevision: this.ctx.store.revision, kinds: ['node'], signal })) {
        if (gen !== this.generation) return;
        this.onNodeChange(c);
      }
    } catch (err) {
      if (this.running && gen === this.generation) {
        this.ctx.logger.warn({ err: errorMessage(err) }, 'dispatcher node watch ended');
      }
    }
  }

  private onNodeChange(c: Change): void {
    const id = c.object.ID;
    if (c.action === 'remove') this.dropNode(id);
    // A node that joined must open its session within the grace, like any other.
    if (c.action === 'create' && !this.deadlines.has(id)) this.arm(id, heartbeatPeriodMs(this.ctx) * HEARTBEAT_GRACE);
    const key = this.computeManagersKey();
    const managersChanged = key !== this.managersKey;
    this.managersKey = key;
    for (const s of this.sessions.values()) {
      if (s.nodeId !== id && !managersChanged) continue;
      const msg = this.message(s.nodeId, s.id);
      if (msg !== undefined) s.push(msg);
    }
  }
}
