/**
 * `shoal network connect [--alias A]... NETWORK CONTAINER` and `shoal network disconnect [-f]
 * NETWORK CONTAINER` for a container of this node (docs/network.md, "Network connect"). The
 * container must run in a network-attachment sandbox (`container run --network NET` of an
 * attachable overlay): shoald asks the leader for another attachment task of the container
 * (Swarm.AttachNetwork with `Sandbox`, the container's namespace) and adds a leg for it in that
 * namespace; disconnect gives that task back (Swarm.DetachNetwork by container and network).
 * Docker's messages: a second connect is `endpoint with name X already exists in network Y`, a
 * disconnect from a network the container is not on `container X is not connected to network Y`.
 */
import type { Command } from 'commander';
import { ShoalError, hasCode } from '@shoal/common';
import type { ContainerRecord } from '@shoal/engine';
import { ATTACHMENT_LABEL } from '../commands/container-attach.js';
import { openEngine, withRoots, type GlobalOpts } from '../commands/container.js';
import { daemonAction } from '../daemon/action.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** A container that is not here, or cannot be connected as it is. */
export class ConnectRefusedError extends ShoalError {
  constructor(code: 'CLI_NO_SUCH_CONTAINER' | 'CLI_CONNECT_REFUSED' | 'CLI_CONNECT_FLAG', message: string) {
    super(code, message, {
      kind:
        code === 'CLI_NO_SUCH_CONTAINER'
          ? 'not-found'
          : code === 'CLI_CONNECT_FLAG'
            ? 'invalid-argument'
            : 'failed-precondition',
    });
  }
}

/** The container by name, ID or ID prefix, from the engine's records (nothing is changed). */
async function containerOf(o: GlobalOpts, ref: string): Promise<ContainerRecord> {
  const engine = await openEngine(o, false, false);
  try {
    return await engine.inspect(ref);
  } catch (err) {
    if (hasCode(err, 'ENGINE_CONTAINER_NOT_FOUND'))
      throw new ConnectRefusedError('CLI_NO_SUCH_CONTAINER', `No such container: ${ref}`);
    throw err;
  } finally {
    await engine.close();
  }
}

/** The container's network namespace when it is an attachment sandbox; refuses the others. */
function sandboxOf(r: ContainerRecord, network: string): string {
  const mode = r.network?.mode;
  if (mode === 'host')
    throw new ConnectRefusedError(
      'CLI_CONNECT_REFUSED',
      'container cannot be disconnected from host network or connected to host network',
    );
  if (typeof mode !== 'object' || !r.labels[ATTACHMENT_LABEL])
    throw new ConnectRefusedError(
      'CLI_CONNECT_REFUSED',
      `container ${r.name} cannot be connected to network ${network}: it is not on an attachable overlay (start it with --network NET first)`,
    );
  if (r.status !== 'running')
    throw new ConnectRefusedError('CLI_CONNECT_REFUSED', `container ${r.name} is not running`);
  return mode.path;
}

export function registerConnect(cmd: Command): void {
  withRoots(
    cmd
      .command('connect')
      .description('Connect a container of this node to an attachable overlay network')
      .argument('<network>')
      .argument('<container>')
      .option('--alias <alias>', 'add a network-scoped alias for the container (repeatable)', collect, [])
      .option('--ip <address>', 'IPv4 address (not supported: the address comes from the network)'),
  ).action(
    daemonAction(async (c, network: string, ref: string, o: GlobalOpts & { alias: string[]; ip?: string }) => {
      if (o.ip !== undefined)
        throw new ConnectRefusedError(
          'CLI_CONNECT_FLAG',
          '--ip is not supported: the container gets its address from the network',
        );
      const r = await containerOf(o, ref);
      const sandbox = sandboxOf(r, network);
      await c.swarm.attachNetwork({
        Target: network,
        Aliases: [...new Set([r.name, ...o.alias.filter((a) => a !== '')])],
        ContainerName: r.name,
        Sandbox: sandbox,
      });
    }),
  );

  withRoots(
    cmd
      .command('disconnect')
      .description('Disconnect a container of this node from a network it was connected to')
      .argument('<network>')
      .argument('<container>')
      .option('-f, --force', 'force the container to disconnect from a network'),
  ).action(
    daemonAction(async (c, network: string, ref: string, o: GlobalOpts & { force?: boolean }) => {
      const r = await containerOf(o, ref);
      await c.swarm.detachNetwork({ ContainerName: r.name, Target: network });
    }),
  );
}
