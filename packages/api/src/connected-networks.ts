/**
 * The swarm networks a plain container was connected to with `network connect` (after the one it
 * was started on), kept in a label of its engine record so that `container start` of the stopped
 * container attaches it again to each of them, in order, with its aliases (Docker keeps a
 * container's networks across stop/start). shoald's agent writes the label when a connect
 * succeeds and drops the network from it on disconnect; the CLI reads it at start.
 */
export const CONNECTED_NETWORKS_LABEL = 'com.shoal.network.connected';
/** The label that names a container's first network attachment (its task ID). */
export const ATTACHMENT_LABEL = 'com.shoal.network.attachment';
/** The labels that keep the first network (as given to --network) and its aliases (JSON list). */
export const NETWORK_LABEL = 'com.shoal.network.name';
export const ALIASES_LABEL = 'com.shoal.network.aliases';

export interface ConnectedNetwork {
  /** The network as given to `network connect` (name or ID). */
  network: string;
  aliases: string[];
}

/** The label's list; an absent or unreadable label is an empty list. */
export function parseConnectedNetworks(label: string | undefined): ConnectedNetwork[] {
  if (label === undefined || label === '') return [];
  let v: unknown;
  try {
    v = JSON.parse(label);
  } catch (err) {
    if (err instanceof SyntaxError) return [];
    throw err;
  }
  if (!Array.isArray(v)) return [];
  return v.flatMap((e: unknown) => {
    if (typeof e !== 'object' || e === null) return [];
    const { network, aliases } = e as { network?: unknown; aliases?: unknown };
    if (typeof network !== 'string' || network === '') return [];
    const list = Array.isArray(aliases) ? aliases.filter((a): a is string => typeof a === 'string') : [];
    return [{ network, aliases: list }];
  });
}

/** `list` with `entry` added (in place of an entry of the same network, else last). */
export function withConnectedNetwork(list: readonly ConnectedNetwork[], entry: ConnectedNetwork): ConnectedNetwork[] {
  const i = list.findIndex((e) => e.network === entry.network);
  return i < 0 ? [...list, entry] : list.map((e, j) => (j === i ? entry : e));
}

/** The label's value for `list`, or undefined (the label removed) when it is empty. */
export function formatConnectedNetworks(list: readonly ConnectedNetwork[]): string | undefined {
  return list.length === 0 ? undefined : JSON.stringify(list);
}
