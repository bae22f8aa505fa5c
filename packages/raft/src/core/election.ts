/**
 * Election helpers. The rules themselves live in Raft.step/tick; this module documents them and
 * builds the vote requests.
 *
 * - Pre-vote (thesis §9.6): a would-be candidate first asks "would you vote for me at term+1?"
 *   without changing any term. Only with a quorum of yes does it start a real election, so a node
 *   coming back from a partition cannot depose a healthy leader by bumping terms.
 * - Check-quorum: a leader that has not heard from a quorum within an election timeout steps
 *   down; a voter that heard from a leader within the election timeout ("in lease") ignores
 *   vote and pre-vote requests, unless they carry the transfer context (leader transfer).
 * - Randomized timeouts: [electionTicks, 2 * electionTicks) ticks, from the injected random().
 */
import { newMessage } from './messages.js';
import type { Message, MessageType, NodeId } from './types.js';

export type CampaignKind = 'preElection' | 'election';

/** The vote (or pre-vote) requests a candidate sends to every other voter. */
export function campaignRequests(
  voters: readonly NodeId[],
  self: NodeId,
  type: MessageType,
  term: number,
  lastIndex: number,
  lastTerm: number,
): Message[] {
  const out: Message[] = [];
  for (const id of voters) {
    if (id === self) continue;
    out.push(newMessage(type, id, { from: self, term, index: lastIndex, logTerm: lastTerm }));
  }
  return out;
}
