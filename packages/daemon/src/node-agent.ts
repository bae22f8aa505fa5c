/**
 * The node's worker side in shoald: the engine on `<data-root>/engine` with the collector role
 * (exits collected as they happen, health checks run here) and the worker's Agent on it. The
 * dispatcher session (worker-session.ts) stays in the daemon, because it also carries membership
 * (manager list on disk, role changes, certificates); it hands the agent one DispatcherLink per
 * session.
 */
import { join } from 'node:path';
import type { DispatcherClient } from '@shoal/api';
import { serverStream, unary } from '@shoal/api';
import type { Logger } from '@shoal/common';
import { Engine } from '@shoal/engine';
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
  engineRoot: string;
  runRoot: string;
  nodeId: string;
  hostname: string;
  insecureRegistries: () => string[];
  logger: Logger;
}): Promise<NodeAgent> {
  const engine = await Engine.open({
    dataRoot: opts.engineRoot,
    runRoot: join(opts.runRoot, 'engine'),
    collector: true,
    logger: opts.logger.child({ component: 'engine' }),
  });
  const agent = new Agent({
    engine,
    node: { id: opts.nodeId, hostname: opts.hostname },
    insecureRegistries: opts.insecureRegistries,
    logger: opts.logger.child({ component: 'agent' }),
  });
  try {
    await agent.start();
  } catch (err) {
    await engine.close();
    throw err;
  }
  const logs = new LogPublisher({ engine, nodeId: opts.nodeId, logger: opts.logger.child({ component: 'logs' }) });
  return { engine, agent, logs };
}

/** Stops following tasks and gives the collector role up; containers keep running. */
export async function stopNodeAgent(n: NodeAgent): Promise<void> {
  await n.agent.stop();
  await n.engine.close();
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
  };
}
