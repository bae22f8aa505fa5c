/**
 * Quorum arithmetic: the commit index and vote outcome of a majority configuration, and of a
 * joint configuration (both majorities must agree). An empty majority agrees with anything, so a
 * non-joint configuration is a joint one whose outgoing half is empty.
 */
import type { NodeId } from './types.js';

export type VoteResult = 'pending' | 'lost' | 'won';

/** The largest index that a majority of `voters` has acknowledged (Infinity for no voters). */
export function majorityCommitted(voters: ReadonlySet<NodeId>, acked: (id: NodeId) => number): number {
  const n = voters.size;
  if (n === 0) return Number.POSITIVE_INFINITY;
  if (n === 1) for (const id of voters) return acked(id);
  const idx: number[] = [];
  for (const id of voters) idx.push(acked(id));
  idx.sort((a, b) => b - a);
  return idx[n >> 1]!;
}

export function majorityVote(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won';
  let yes = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) yes++;
  }
  const q = (voters.size >> 1) + 1;
  if (yes >= q) return 'won';
  if (yes + missing >= q) return 'pending';
  return 'lost';
}

export function jointCommitted(
  incoming: ReadonlySet<NodeId>,
  outgoing: ReadonlySet<NodeId>,
  acked: (id: NodeId) => number,
): number {
  return Math.min(majorityCommitted(incoming, acked), majorityCommitted(outgoing, acked));
}

export function jointVote(
  incoming: ReadonlySet<NodeId>,
  outgoing: ReadonlySet<NodeId>,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const a = majorityVote(incoming, votes);
  const b = majorityVote(outgoing, votes);
  if (a === b) return a;
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}
