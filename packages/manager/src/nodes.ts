/**
 * Node lookups and views: resolving a reference (ID, unique ID prefix, hostname), `node ls`
 * filters as Docker's, and ManagerStatus derived from Raft (Leader, Reachability, Addr).
 */
import type { ListNodesFilters, ManagerStatus, Node } from '@shoal/api';
import { AmbiguousNodeError, NodeNotFoundError } from './errors.js';
import { fromStored, type ManagerContext, type Membership, type StoredNode, membership } from './context.js';

/** The node `ref` names: its ID, a unique ID prefix, or a unique hostname / name. */
export function resolveNode(ctx: ManagerContext, ref: string): StoredNode {
  if (ref === '') throw new NodeNotFoundError("''");
  const exact = ctx.store.get<StoredNode>('node', ref);
  if (exact !== undefined) return exact;
  const all = ctx.store.list<StoredNode>('node');
  const byPrefix = all.filter((n) => n.ID.startsWith(ref));
  if (byPrefix.length === 1 && byPrefix[0] !== undefined) return byPrefix[0];
  if (byPrefix.length > 1) throw new AmbiguousNodeError(ref, byPrefix.length);
  const byName = all.filter((n) => n.Description?.Hostname === ref || (n.Spec?.Name ?? '') === ref);
  if (byName.length === 1 && byName[0] !== undefined) return byName[0];
  if (byName.length > 1) throw new AmbiguousNodeError(ref, byName.length);
  throw new NodeNotFoundError(ref);
}

/** The node as `node inspect` shows it: ManagerStatus from Raft for members, none for others. */
export function nodeView(stored0: StoredNode, m: Membership): Node {
  const n = fromStored(stored0);
  const { ManagerStatus: stored, ...rest } = n;
  if (!m.voters.includes(n.ID)) return rest;
  const r = m.reachable(n.ID);
  const ms: ManagerStatus = {
    Leader: m.leader === n.ID,
    Reachability: r === undefined ? 'unknown' : r ? 'reachable' : 'unreachable',
    Addr: stored?.Addr ?? '',
    RaftID: stored?.RaftID ?? 0,
  };
  return { ...rest, ManagerStatus: ms };
}

function labelsMatch(
  want: Readonly<Record<string, string>>,
  have: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const [k, v] of Object.entries(want)) {
    const got = have?.[k];
    if (got === undefined) return false;
    if (v !== '' && got !== v) return false;
  }
  return true;
}

function names(n: Node): string[] {
  return [n.Description?.Hostname ?? '', n.Spec?.Name ?? ''].filter((s) => s !== '');
}

/** True when `n` passes every filter list (each list matches any of its values). */
export function nodeMatches(n: Node, f: ListNodesFilters | undefined): boolean {
  if (f === undefined) return true;
  const any = <T>(list: readonly T[] | undefined, pred: (v: T) => boolean): boolean =>
    list === undefined || list.length === 0 || list.some(pred);
  return (
    any(f.IDPrefixes, (p) => (n.ID ?? '').startsWith(p)) &&
    any(f.Names, (name) => names(n).includes(name)) &&
    any(f.NamePrefixes, (p) => names(n).some((x) => x.startsWith(p))) &&
    any(f.Roles, (r) => n.Spec?.Role === r) &&
    // Every node that holds a certificate from this CA is accepted (no manual acceptance).
    any(f.Memberships, (m) => m === 'accepted') &&
    labelsMatch(f.Labels ?? {}, n.Description?.Engine?.Labels) &&
    labelsMatch(f.NodeLabels ?? {}, n.Spec?.Labels)
  );
}

/** Every node passing `filters`, as `node ls` shows them (by hostname, then ID). */
export function listNodeViews(ctx: ManagerContext, filters: ListNodesFilters | undefined): Node[] {
  const m = membership(ctx);
  return ctx.store
    .list<StoredNode>('node')
    .filter((n) => nodeMatches(n, filters))
    .sort(
      (a, b) =>
        (a.Description?.Hostname ?? '').localeCompare(b.Description?.Hostname ?? '') || a.ID.localeCompare(b.ID),
    )
    .map((n) => nodeView(n, m));
}
