/**
 * The node's worker side in shoald: the worker's Agent on the daemon's engine (local-engine.ts:
 * `<data-root>/engine` with the collector role, so exits are collected and health checks run here). The
 * dispatcher session (worker-session.ts) stays in the daemon, because it also carries membership
 * (manager list on disk, role changes, certificates); it hands the agent one DispatcherLink per
 * session.
 */
import type { DispatcherClient } from '@shoal/api';
import { serverStream, unary } from '@shoal/api';
import type { Logger } from '@shoal/common';
import type { Engine } from '@shoal/engine';
import { Agent, LogPublisher, type DispatcherLink } from '@shoal/worker';

/** How long one UpdateTaskStatus call may take before the session counts as broken. */
const STATUS_DEADLINE_MS = 30_000;

export interface NodeAgent {
  engine: Engine;
  agent: Agent;
  /** Serves `service logs` subscriptions from the engine's task containers. */
  logs: LogPublisher;
}

export async function startNodeAgent(opts: {
  /** The daemon's engine (collector role, held for the daemon's lifetime; see local-engine.ts). */
  engine: Engine;
  nodeId: string;
  hostname: string;
  insecureRegistries: () => string[];
  /** The node's underlay address (its VTEP) until the managers say otherwise (Node.Status.Addr). */
  advertiseAddr: string;
  /** The gateway bridge's subnet; empty: Docker's default. */
  gatewaySubnet: string;
  logger: Logger;
}): Promise<NodeAgent> {
  const agent = new Agent({
    engine: opts.engine,
    node: { id: opts.nodeId, hostname: opts.hostname },
    insecureRegistries: opts.insecureRegistries,
    network: {
      hostTag: nodeHostTag(opts.nodeId),
      vtepAddress: hostOf(opts.advertiseAddr),
      ...(opts.gatewaySubnet ? { gatewaySubnet: opts.gatewaySubnet } : {}),
    },
    logger: opts.logger.child({ component: 'agent' }),
  });
  await agent.start();
  const logs = new LogPublisher({
    engine: opts.engine,
    nodeId: opts.nodeId,
    logger: opts.logger.child({ component: 'logs' }),
  });
  return { engine: opts.engine, agent, logs };
}

/**
 * The tag in this node's namespace names (`shoal-ov-<tag>-...`, `shoal-t-<tag>-...`): /run/netns
 * is shared by every node on one machine (lab hosts are namespaces of one machine), node IDs are not.
 */
export function nodeHostTag(nodeId: string): string {
  return (
    nodeId
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 10) || 'node'
  );
}

/** The host of `host:port` (or a bare address). */
function hostOf(addr: string): string {
  const m = /^\[?([^\]]*?)\]?(?::\d+)?$/.exec(addr);
  return m?.[1] ?? addr;
}

/** Stops following tasks; containers keep running and the engine stays open (it is the daemon's). */
export async function stopNodeAgent(n: NodeAgent): Promise<void> {
  await n.agent.stop();
}

/** The agent's view of one dispatcher session over gRPC. */
export function grpcDispatcherLink(client: DispatcherClient, sessionId: string): DispatcherLink {
  return {
    assignments: (signal) => serverStream(client.assignments.bind(client), { SessionID: sessionId }, { signal }),
    async updateTaskStatus(updates) {
      await unary(
        client.updateTaskStatus.bind(client),
        { SessionID: sessionId, Updates: updates },
        { deadline: Date.now() + STATUS_DEADLINE_MS },
      );
    },
    async attachNetwork(config, containerId) {
      const r = await unary(
        client.attachNetwork.bind(client),
        { SessionID: sessionId, Config: config, ContainerID: containerId },
        { deadline: Date.now() + STATUS_DEADLINE_MS },
      );
      return r.AttachmentID ?? '';
    },
    async detachNetwork(attachmentId) {
      await unary(
        client.detachNetwork.bind(client),
        { SessionID: sessionId, AttachmentID: attachmentId },
        { deadline: Date.now() + STATUS_DEADLINE_MS },
      );
    },
  };
}
