/**
 * `container inspect` NetworkSettings.Networks of a container on swarm networks (`container run
 * --network NET`, `network connect`): its network-attachment tasks, as the local shoald knows
 * them (Swarm.ContainerNetworks), one entry per network by name, with Docker's fields. Without
 * a daemon (or outside a swarm) there is nothing to show and the key is left out.
 */
import type { LocalContainerNetwork } from '@shoal/api';
import { hasCode } from '@shoal/common';
import { connectDaemon } from '../daemon/client.js';

/** Docker's EndpointSettings of one network. */
export function endpointSettings(n: LocalContainerNetwork): Record<string, unknown> {
  const [ip = '', len = '0'] = (n.Address ?? '').split('/');
  const mac =
    ip === '' ? '' : ['02', '42', ...ip.split('.').map((x) => Number(x).toString(16).padStart(2, '0'))].join(':');
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: n.Aliases?.length ? [...n.Aliases] : null,
    NetworkID: n.NetworkID ?? '',
    EndpointID: n.AttachmentID ?? '',
    Gateway: '',
    IPAddress: ip,
    IPPrefixLen: Number(len),
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    MacAddress: mac,
    DriverOpts: null,
  };
}

/** NetworkSettings of a container on swarm networks, or undefined when shoald cannot say. */
export async function swarmNetworkSettings(name: string): Promise<Record<string, unknown> | undefined> {
  const client = connectDaemon(undefined);
  try {
    const r = await client.swarm.containerNetworks({ ContainerName: name });
    const nets = r.Networks ?? [];
    return { Networks: Object.fromEntries(nets.map((n) => [n.NetworkName || n.NetworkID || '', endpointSettings(n)])) };
  } catch (err) {
    // no daemon, or a daemon outside a swarm: the container's networks are not known here
    if (hasCode(err, 'CLI_DAEMON_UNREACHABLE') || hasCode(err, 'DAEMON_NOT_IN_SWARM')) return undefined;
    throw err;
  } finally {
    client.close();
  }
}
