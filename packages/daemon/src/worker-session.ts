/**
 * A worker's link to the managers: a Dispatcher session (server stream) to one manager with
 * heartbeats at the period the manager asks; on any failure the next known manager is tried
 * (after a backoff), and the session's manager list replaces the known one (state.json), so the
 * worker follows the cluster as managers come and go. Once the session is open, the node's Agent
 * (@shoal/worker) consumes its Assignments stream and reports task states through it; the end
 * or failure of that stream ends the session too, so both move to the next manager together.
 */
import { DispatcherClient, serverStream, unary } from '@shoal/api';
import { Backoff, errorMessage, ignoreAborted, sleep, type Logger } from '@shoal/common';
import type { Daemon } from './daemon.js';
import { clusterChannelOptions } from './grpc-raft-transport.js';
import { writeNodeState } from './layout.js';
import { wantRole } from './node-certificate.js';
import type { Agent, LogPublisher } from '@shoal/worker';
import { grpcDispatcherLink } from './node-agent.js';
import { runLogListener } from './log-listener.js';

export class WorkerSession {
  private readonly ac = new AbortController();
  private loop: Promise<void> | undefined;
  private next = 0;
  /** The manager the session is open on, '' when none. */
  connectedTo = '';
  heartbeats = 0;

  constructor(
    private readonly opts: {
      daemon: Daemon;
      logger: Logger;
      agent?: Agent | undefined;
      logs?: LogPublisher | undefined;
    },
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const d = this.opts.daemon;
    const backoff = new Backoff({ initialMs: 200, maxMs: 5000 });
    while (!this.ac.signal.aborted) {
      const managers = [
        ...new Set([...(d.state?.remoteManagers ?? []), ...Object.values(d.manager ? d.raftPeers() : {})]),
      ];
      if (managers.length === 0) {
        await sleep(1000, this.ac.signal).catch(ignoreAborted);
        continue;
      }
      const addr = managers[this.next++ % managers.length]!;
      try {
        await this.session(addr, () => backoff.reset());
      } catch (err) {
        if (this.ac.signal.aborted) break;
        this.opts.logger.warn(
          { manager: addr, err: (err as Error).message },
          'dispatcher session failed: trying the next manager',
        );
      }
      this.connectedTo = '';
      if (this.ac.signal.aborted) break;
      await sleep(backoff.next(), this.ac.signal).catch(ignoreAborted);
    }
  }

  private async session(addr: string, onOpen: () => void): Promise<void> {
    const d = this.opts.daemon;
    const client = new DispatcherClient(addr, d.clientCredentials(), clusterChannelOptions());
    const ac = new AbortController();
    const stopAll = (): void => ac.abort();
    this.ac.signal.addEventListener('abort', stopAll, { once: true });
    let heartbeat: Promise<void> | undefined;
    let assignments: Promise<void> | undefined;
    let logs: Promise<void> | undefined;
    try {
      const description = d.description();
      for await (const msg of serverStream(
        client.session.bind(client),
        { Description: description },
        { signal: ac.signal },
      )) {
        const sessionId = msg.SessionID ?? '';
        const managers = (msg.Managers ?? []).map((m) => m.Peer?.Addr ?? '').filter((a) => a !== '');
        if (managers.length > 0 && d.state && JSON.stringify(managers) !== JSON.stringify(d.state.remoteManagers)) {
          d.state = { ...d.state, remoteManagers: managers };
          await writeNodeState(d.layout, d.state);
        }
        if (msg.Node) {
          this.opts.agent?.setNode(msg.Node);
          wantRole(d, msg.Node, this.opts.logger);
        }
        if (!heartbeat) {
          onOpen();
          this.connectedTo = addr;
          this.opts.logger.info({ manager: addr, sessionId }, 'dispatcher session open');
          const periodMs = Math.max(100, (msg.HeartbeatPeriod ?? 5e9) / 1e6);
          heartbeat = this.heartbeats_(client, sessionId, periodMs, ac);
          assignments = this.assignments(client, sessionId, ac);
          const publisher = this.opts.logs;
          if (publisher) {
            const credentials = d.clientCredentials();
            const logger = this.opts.logger;
            const channel = client.getChannel();
            logs = runLogListener({ addr, credentials, channel, publisher, logger, signal: ac.signal });
          }
        }
      }
    } finally {
      ac.abort();
      this.ac.signal.removeEventListener('abort', stopAll);
      // The session is over either way; a heartbeat failure is why it ended, not news.
      await heartbeat?.catch((err: unknown) =>
        this.opts.logger.debug({ err: errorMessage(err) }, 'heartbeats ended with an error'),
      );
      await assignments;
      await logs;
      client.close();
    }
  }

  /** Runs the agent on this session's Assignments stream; its end or failure ends the session. */
  private async assignments(client: DispatcherClient, sessionId: string, ac: AbortController): Promise<void> {
    const agent = this.opts.agent;
    if (!agent) return;
    try {
      await agent.runSession(grpcDispatcherLink(client, sessionId), ac.signal);
      if (!ac.signal.aborted) this.opts.logger.warn('assignments stream ended: reconnecting');
    } catch (err) {
      if (!ac.signal.aborted) this.opts.logger.warn({ err: errorMessage(err) }, 'assignments failed: reconnecting');
      else this.opts.logger.debug({ err: errorMessage(err) }, 'assignments ended with the session');
    }
    ac.abort();
  }

  private async heartbeats_(
    client: DispatcherClient,
    sessionId: string,
    firstMs: number,
    ac: AbortController,
  ): Promise<void> {
    let periodMs = firstMs;
    while (!ac.signal.aborted) {
      await sleep(periodMs, ac.signal).catch(ignoreAborted);
      if (ac.signal.aborted) return;
      try {
        const res = await unary(
          client.heartbeat.bind(client),
          { SessionID: sessionId },
          { deadline: Date.now() + periodMs, signal: ac.signal },
        );
        this.heartbeats++;
        if (res.Period) periodMs = Math.max(100, res.Period / 1e6);
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message }, 'heartbeat failed: reconnecting');
        ac.abort();
      }
    }
  }
}
