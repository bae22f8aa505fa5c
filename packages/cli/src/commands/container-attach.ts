/**
 * `shoal container run|create --network NAME [--network-alias A]` for a swarm network: the local
 * shoald attaches the container-to-be to the attachable overlay NAME (the leader makes a
 * network-attachment task on this node; the node builds its sandbox) and answers with the
 * sandbox's namespace, the container's addresses and its resolv.conf (the embedded DNS server
 * at 127.0.0.11). The container is then created in that namespace (`ns:PATH`), labelled with the
 * attachment's ID, so `container rm` gives the attachment back. A container removed another way
 * (`--rm` by shoald, a CLI that died) is found by shoald, which gives it back itself.
 */
import { randomBytes } from 'node:crypto';
import { hasCode } from '@shoal/common';
import type { ContainerCreateOptions, Engine } from '@shoal/engine';
import { connectDaemon, type DaemonClient } from '../daemon/client.js';

/** A swarm network's name or ID as `--network` takes it (Docker's network name characters). */
const SWARM_NETWORK = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Docker's local network modes this engine does not have: refused, never looked up in the swarm. */
const LOCAL_MODES = new Set(['none', 'host', 'bridge', 'default']);

/** True when `--network` names a swarm network (an attachable overlay) rather than a mode. */
export function isSwarmNetwork(v: string | undefined): v is string {
  return v !== undefined && !LOCAL_MODES.has(v) && !v.startsWith('ns:') && SWARM_NETWORK.test(v);
}

/** The label that names a container's network attachment (its task ID). */
export const ATTACHMENT_LABEL = 'com.shoal.network.attachment';

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
  const aliases = [opts.name, ...(f.hostname ? [f.hostname] : []), ...f.networkAlias];
  const client = connectDaemon(host);
  let r;
  try {
    r = await client.swarm.attachNetwork({
      Target: f.network,
      Aliases: [...new Set(aliases)],
      ContainerName: opts.name,
    });
  } catch (err) {
    client.close();
    throw err;
  }
  const id = r.AttachmentID ?? '';
  opts.network = { path: r.NetnsPath ?? '' };
  if (!opts.dns?.length) {
    opts.dns = r.DNS ?? [];
    if (!opts.dnsSearch?.length && (r.DNSSearch ?? []).length > 0) opts.dnsSearch = r.DNSSearch ?? [];
    if (!opts.dnsOptions?.length) opts.dnsOptions = r.DNSOptions ?? [];
  }
  if (f.hostname)
    opts.extraHosts = [
      ...(opts.extraHosts ?? []),
      ...(r.Addresses ?? []).map((ip) => ({ host: f.hostname ?? '', ip })),
    ];
  opts.labels = { ...opts.labels, [ATTACHMENT_LABEL]: id };
  return {
    id,
    release: () => detach(client, id),
    close: () => client.close(),
  };
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
