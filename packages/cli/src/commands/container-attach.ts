/**
 * `shoal container run|create --network NAME [--network-alias A]` for a swarm network: the local
 * shoald attaches the container-to-be to the attachable overlay NAME (the leader makes a
 * network-attachment task on this node; the node builds its sandbox) and answers with the
 * sandbox's namespace, the container's addresses and its resolv.conf (the embedded DNS server
 * at 127.0.0.11). The container is then created in that namespace (`ns:PATH`), labelled with the
 * attachment's ID, so `container rm` gives the attachment back. A container removed another way
 * (`--rm` by shoald, a CLI that died) is found by shoald, which gives it back itself.
 *
 * As Docker's, a container that stops gives its attachments back (shoald's claim check finds it
 * stopped: its addresses are freed, its sandbox removed); `container start` attaches it again to
 * the same network with the same aliases (labels keep them), then to each network `network
 * connect` added (shoald keeps them in CONNECTED_NETWORKS_LABEL), and starts it in the new sandbox.
 */
import { randomBytes } from 'node:crypto';
import { hasCode } from '@shoal/common';
import type { ContainerCreateOptions, Engine, StartOptions } from '@shoal/engine';
import {
  ALIASES_LABEL,
  ATTACHMENT_LABEL,
  CONNECTED_NETWORKS_LABEL,
  NETWORK_LABEL,
  parseConnectedNetworks,
  type LocalAttachNetworkResponse,
} from '@shoal/api';
import { connectDaemon, type DaemonClient } from '../daemon/client.js';

/** A swarm network's name or ID as `--network` takes it (Docker's network name characters). */
const SWARM_NETWORK = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Docker's local network modes this engine does not have: refused, never looked up in the swarm. */
const LOCAL_MODES = new Set(['none', 'host', 'bridge', 'default']);

/** True when `--network` names a swarm network (an attachable overlay) rather than a mode. */
export function isSwarmNetwork(v: string | undefined): v is string {
  return v !== undefined && !LOCAL_MODES.has(v) && !v.startsWith('ns:') && SWARM_NETWORK.test(v);
}

// the labels that name the attachment and keep the network and aliases, to attach again at start
export { ATTACHMENT_LABEL, NETWORK_LABEL, ALIASES_LABEL };

export interface SwarmAttachment {
  readonly id: string;
  /** Gives the attachment back (the container was not made, or was removed). */
  release(): Promise<void>;
  close(): void;
}

/**
 * With `--network NAME` of a swarm network: attaches through shoald and completes `opts` (name,
 * network namespace, DNS, /etc/hosts, label). Undefined (and `opts` unchanged) otherwise.
 */
export async function attachToSwarmNetwork(
  opts: ContainerCreateOptions,
  f: { network?: string; networkAlias: string[]; hostname?: string },
  host: string | undefined,
): Promise<SwarmAttachment | undefined> {
  if (!isSwarmNetwork(f.network)) return undefined;
  // The name is the container's DNS name on the network: it must be known before the ID is.
  opts.name ??= `shoal-${randomBytes(6).toString('hex')}`;
  const aliases = [...new Set([opts.name, ...(f.hostname ? [f.hostname] : []), ...f.networkAlias])];
  const client = connectDaemon(host);
  let r;
  try {
    r = await client.swarm.attachNetwork({ Target: f.network, Aliases: aliases, ContainerName: opts.name });
  } catch (err) {
    client.close();
    throw err;
  }
  const id = r.AttachmentID ?? '';
  Object.assign(opts, joinOptions(opts, r, f.hostname));
  opts.labels = {
    ...opts.labels,
    [ATTACHMENT_LABEL]: id,
    [NETWORK_LABEL]: f.network,
    [ALIASES_LABEL]: JSON.stringify(aliases),
  };
  return {
    id,
    release: () => detach(client, id),
    close: () => client.close(),
  };
}

type JoinOptions = Required<
  Pick<ContainerCreateOptions, 'network' | 'dns' | 'dnsSearch' | 'dnsOptions' | 'extraHosts'>
>;

/**
 * The sandbox's namespace and DNS as create options: the user's --dns flags win; a --hostname
 * resolves to the container's addresses on the network (entries for it from an earlier
 * attachment are replaced).
 */
function joinOptions(
  given: Pick<ContainerCreateOptions, 'dns' | 'dnsSearch' | 'dnsOptions' | 'extraHosts'>,
  r: LocalAttachNetworkResponse,
  hostname: string | undefined,
): JoinOptions {
  const ownDns = (given.dns ?? []).length > 0;
  const search = ownDns || (given.dnsSearch ?? []).length > 0 || (r.DNSSearch ?? []).length === 0;
  return {
    network: { path: r.NetnsPath ?? '' },
    dns: ownDns ? (given.dns ?? []) : (r.DNS ?? []),
    dnsSearch: search ? (given.dnsSearch ?? []) : (r.DNSSearch ?? []),
    dnsOptions: ownDns || (given.dnsOptions ?? []).length > 0 ? (given.dnsOptions ?? []) : (r.DNSOptions ?? []),
    extraHosts: [
      ...(given.extraHosts ?? []).filter((e) => !hostname || e.host !== hostname),
      ...(hostname ? (r.Addresses ?? []).map((ip) => ({ host: hostname, ip })) : []),
    ],
  };
}

/** What `container start` needs for a container whose attachment may be gone; see reattach(). */
export interface Reattachment {
  start: StartOptions;
  attachment: SwarmAttachment;
}

/**
 * For `container start` of an exited container that was on a swarm network: gives the old
 * attachment back (shoald has usually done so when the container stopped; one already gone is
 * fine) and attaches again to the same network with the same aliases. Undefined for any other
 * container (not attached, or created and so still holding its attachment).
 */
export async function reattach(
  engine: Engine,
  ref: string,
  host: string | undefined,
): Promise<Reattachment | undefined> {
  const rec = await engine.inspect(ref);
  const old = rec.labels[ATTACHMENT_LABEL];
  const network = rec.labels[NETWORK_LABEL];
  if (rec.status !== 'exited' || !old || !network) return undefined;
  const aliases = JSON.parse(rec.labels[ALIASES_LABEL] ?? '[]') as string[];
  const client = connectDaemon(host);
  try {
    await detach(client, old);
    const r = await client.swarm.attachNetwork({ Target: network, Aliases: aliases, ContainerName: rec.name });
    const id = r.AttachmentID ?? '';
    // then each network it was connected to, in order, as `network connect` made them (legs in
    // the new sandbox); one that fails gives everything back (the legs go with the first)
    for (const c of parseConnectedNetworks(rec.labels[CONNECTED_NETWORKS_LABEL])) {
      try {
        await client.swarm.attachNetwork({
          Target: c.network,
          Aliases: c.aliases,
          ContainerName: rec.name,
          Sandbox: r.NetnsPath ?? '',
        });
      } catch (err) {
        await detach(client, id);
        throw err;
      }
    }
    // the same DNS as before (the embedded server, or the user's --dns): only the namespace and
    // the --hostname entries (its new addresses) change
    const joined = joinOptions(rec.createOptions ?? {}, r, rec.createOptions?.hostname);
    return {
      start: { rejoin: { network: joined.network, extraHosts: joined.extraHosts }, labels: { [ATTACHMENT_LABEL]: id } },
      attachment: { id, release: () => detach(client, id), close: () => client.close() },
    };
  } catch (err) {
    client.close();
    throw err;
  }
}

/** The attachment ID of a container (its label), if it has one and still exists. */
export async function attachmentOf(engine: Engine, ref: string): Promise<string | undefined> {
  try {
    const id = (await engine.inspect(ref)).labels[ATTACHMENT_LABEL];
    return id === undefined || id === '' ? undefined : id;
  } catch (err) {
    if (hasCode(err, 'ENGINE_CONTAINER_NOT_FOUND')) return undefined; // rm reports it
    throw err;
  }
}

/**
 * Gives a removed container's attachment back through shoald. Without a daemon it is only
 * warned about: shoald finds the sandbox without its container and gives it back when it runs.
 */
export async function detachFromSwarmNetwork(attachmentId: string, host: string | undefined): Promise<void> {
  const client = connectDaemon(host);
  try {
    await detach(client, attachmentId);
  } catch (err) {
    if (!hasCode(err, 'CLI_DAEMON_UNREACHABLE')) throw err;
    process.stderr.write(
      `shoal: network attachment ${attachmentId} not given back now (no daemon): shoald gives it back once it runs\n`,
    );
  } finally {
    client.close();
  }
}

async function detach(client: DaemonClient, id: string): Promise<void> {
  await client.swarm.detachNetwork({ AttachmentID: id });
}
