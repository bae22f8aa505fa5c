/**
 * The engine's `rejoin` hook in shoald (see EngineOptions.rejoin): a container on swarm networks
 * that a user stopped gave its attachments back (its sandbox is gone); when shoald starts again
 * and the container's restart policy says to start it (`always`, as Docker's daemon start), it
 * is attached again as `container start` does it (the CLI's container-attach.ts reattach): the
 * old attachment given back, its first network with its aliases, then each network `network
 * connect` added, in order. The node's session with a manager comes up after the engine opened:
 * the hook waits for it (a while), then gives up and the container stays stopped.
 */
import {
  ALIASES_LABEL,
  ATTACHMENT_LABEL,
  CONNECTED_NETWORKS_LABEL,
  NETWORK_LABEL,
  parseConnectedNetworks,
} from '@shoal/api';
import { hasCode, sleep } from '@shoal/common';
import type { ContainerRecord, StartOptions } from '@shoal/engine';
import type { Agent } from '@shoal/worker';
import { DaemonError } from './errors.js';

/** How long a restart waits for the node's session with a manager. */
const SESSION_WAIT_MS = 120_000;

export async function rejoinNetworks(
  agentOf: () => Agent | undefined,
  rec: ContainerRecord,
  waitMs = SESSION_WAIT_MS,
): Promise<StartOptions> {
  const network = rec.labels[NETWORK_LABEL];
  const old = rec.labels[ATTACHMENT_LABEL];
  if (!network || !old)
    throw new DaemonError(
      'DAEMON_REJOIN_REFUSED',
      `container ${rec.name}: its network namespace is gone and it was not on a swarm network: nothing can attach it again`,
      'failed-precondition',
    );
  const aliases = JSON.parse(rec.labels[ALIASES_LABEL] ?? '[]') as string[];
  const until = Date.now() + waitMs;
  // the first call that needs the session: retried while the node has none yet
  for (;;) {
    const agent = agentOf();
    try {
      if (agent === undefined) throw new DaemonError('DAEMON_NOT_IN_SWARM', 'no node agent yet', 'unavailable');
      await agent.detachNetwork(old);
      break;
    } catch (err) {
      if (!hasCode(err, 'WORKER_NOT_CONNECTED') && !hasCode(err, 'DAEMON_NOT_IN_SWARM')) throw err;
      if (Date.now() > until)
        throw new DaemonError(
          'DAEMON_REJOIN_NO_MANAGER',
          `container ${rec.name}: this node has no session with a manager after ${waitMs / 1000} s: not attached again`,
          'unavailable',
          { cause: err },
        );
      await sleep(1000);
    }
  }
  const agent = agentOf();
  if (agent === undefined) throw new DaemonError('DAEMON_NOT_IN_SWARM', 'the node agent stopped', 'unavailable');
  const first = await agent.attachNetwork({ target: network, aliases, containerName: rec.name });
  try {
    for (const c of parseConnectedNetworks(rec.labels[CONNECTED_NETWORKS_LABEL]))
      await agent.attachNetwork({
        target: c.network,
        aliases: c.aliases,
        containerName: rec.name,
        sandbox: first.netnsPath,
      });
  } catch (err) {
    await agent.detachNetwork(first.attachmentId); // its legs go with it
    throw err;
  }
  const hostname = rec.createOptions?.hostname;
  return {
    rejoin: {
      network: { path: first.netnsPath },
      extraHosts: [
        ...(rec.createOptions?.extraHosts ?? []).filter((e) => !hostname || e.host !== hostname),
        ...(hostname ? first.addresses.map((ip) => ({ host: hostname, ip })) : []),
      ],
    },
    labels: { [ATTACHMENT_LABEL]: first.attachmentId },
  };
}
