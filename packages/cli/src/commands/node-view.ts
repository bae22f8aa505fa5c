/**
 * What `shoal node ls` and `node ps` show of Node and Task objects, as docker's columns and
 * `--filter` keys, kept apart from the command wiring so that they test without a daemon.
 */
import type { Node } from '@shoal/api';
import { matchLabels, matchesAny, type Filters } from '../format/index.js';

/** docker's `node ls --filter` keys. */
export const NODE_FILTERS = ['id', 'label', 'node.label', 'membership', 'name', 'role'] as const;

/** One row of `node ls` (also its `--format json` object), as docker's node context. */
export interface NodeRow {
  ID: string;
  Self: boolean;
  Hostname: string;
  Status: string;
  Availability: string;
  ManagerStatus: string;
  EngineVersion: string;
  TLSStatus: string;
}

export const NODE_LS_TABLE =
  '{{.ID}} {{if .Self}}*{{else}} {{end}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}';

export const NODE_LS_HEADERS: Readonly<Record<string, string>> = {
  ID: 'ID',
  Self: '',
  Hostname: 'HOSTNAME',
  Status: 'STATUS',
  Availability: 'AVAILABILITY',
  ManagerStatus: 'MANAGER STATUS',
  EngineVersion: 'ENGINE VERSION',
  TLSStatus: 'TLS STATUS',
};

/** `ready` → `Ready`, as docker prints enum values in tables. */
export function title(s: string | undefined): string {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : '';
}

/** docker's MANAGER STATUS: Leader, or the reachability of another manager; empty for workers. */
export function managerStatus(n: Node): string {
  if (!n.ManagerStatus) return '';
  if (n.ManagerStatus.Leader) return 'Leader';
  return title(n.ManagerStatus.Reachability);
}

export function nodeRow(n: Node, selfId: string): NodeRow {
  return {
    ID: n.ID ?? '',
    Self: n.ID === selfId,
    Hostname: n.Description?.Hostname ?? '',
    Status: title(n.Status?.State),
    Availability: title(n.Spec?.Availability),
    ManagerStatus: managerStatus(n),
    EngineVersion: n.Description?.Engine?.EngineVersion ?? '',
    TLSStatus: n.Description?.TLSInfo?.TrustRoot ? 'Ready' : 'Unknown',
  };
}

/** A node's role: its spec's desired role, else whether it has a manager status. */
export function nodeRole(n: Node): string {
  return n.Spec?.Role || (n.ManagerStatus ? 'manager' : 'worker');
}

/**
 * docker's node filters: id (prefix), name (prefix of the spec name or the hostname), label
 * (engine labels), node.label (the node's own labels), role, membership (every node in the
 * store is accepted: Shoal has no pending membership).
 */
export function nodeMatches(n: Node, f: Filters): boolean {
  const id = n.ID ?? '';
  const names = [n.Spec?.Name ?? '', n.Description?.Hostname ?? ''].filter((s) => s !== '');
  return (
    matchesAny(f.get('id'), (v) => id.startsWith(v)) &&
    matchesAny(f.get('name'), (v) => names.some((name) => name.startsWith(v))) &&
    matchesAny(f.get('role'), (v) => v.toLowerCase() === nodeRole(n)) &&
    matchesAny(f.get('membership'), (v) => v.toLowerCase() === 'accepted') &&
    matchLabels(n.Description?.Engine?.Labels, f.get('label') ?? []) &&
    matchLabels(n.Spec?.Labels, f.get('node.label') ?? [])
  );
}

/** Nodes as docker lists them: by hostname, then ID. */
export function sortNodes(nodes: readonly Node[]): Node[] {
  return [...nodes].sort(
    (a, b) =>
      (a.Description?.Hostname ?? '').localeCompare(b.Description?.Hostname ?? '') ||
      (a.ID ?? '').localeCompare(b.ID ?? ''),
  );
}

export const NODE_PS_TABLE =
  '{{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}';

export const NODE_PS_HEADERS: Readonly<Record<string, string>> = {
  ID: 'ID',
  Name: 'NAME',
  Image: 'IMAGE',
  Node: 'NODE',
  DesiredState: 'DESIRED STATE',
  CurrentState: 'CURRENT STATE',
  Error: 'ERROR',
  Ports: 'PORTS',
};
