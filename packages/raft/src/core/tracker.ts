/**
 * The membership configuration (voters, joint outgoing voters, learners) and the leader's
 * progress per member, plus the votes of the current election.
 */
import type { Progress } from './progress.js';
import { jointCommitted, jointVote, type VoteResult } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

export interface TrackerConfig {
  readonly incoming: Set<NodeId>;
  /** Non-empty while in a joint configuration. */
  readonly outgoing: Set<NodeId>;
  readonly learners: Set<NodeId>;
  /** Learners to add when leaving the joint configuration (they are still voters in outgoing). */
  readonly learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export function emptyConfig(): TrackerConfig {
  return { incoming: new Set(), outgoing: new Set(), learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

export function cloneConfig(c: TrackerConfig): TrackerConfig {
  return {
    incoming: new Set(c.incoming),
    outgoing: new Set(c.outgoing),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

const sorted = (s: ReadonlySet<NodeId>): NodeId[] => [...s].sort();

export function configToConfState(c: TrackerConfig): ConfState {
  return {
    voters: sorted(c.incoming),
    learners: sorted(c.learners),
    votersOutgoing: sorted(c.outgoing),
    learnersNext: sorted(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export class ProgressTracker {
  config: TrackerConfig = emptyConfig();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;

  constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  confState(): ConfState {
    return configToConfState(this.config);
  }

  isJoint(): boolean {
    return this.config.outgoing.size > 0;
  }

  isVoter(id: NodeId): boolean {
    return this.config.incoming.has(id) || this.config.outgoing.has(id);
  }

  /** True when this is a one-voter, non-joint configuration. */
  isSingleton(): boolean {
    return this.config.incoming.size === 1 && this.config.outgoing.size === 0;
  }

  /** Voter ids (both halves), sorted. */
  voterIds(): NodeId[] {
    const s = new Set(this.config.incoming);
    for (const id of this.config.outgoing) s.add(id);
    return sorted(s);
  }

  /** Every member with progress (voters and learners), sorted for deterministic message order. */
  memberIds(): NodeId[] {
    return sorted(new Set(this.progress.keys()));
  }

  /** The highest index acknowledged by a quorum of voters. */
  committed(): number {
    return jointCommitted(this.config.incoming, this.config.outgoing, (id) => this.progress.get(id)?.match ?? 0);
  }

  /** True if a quorum of voters was recently active (check-quorum). */
  quorumActive(self: NodeId): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      votes.set(id, id === self || pr.recentActive);
    }
    return jointVote(this.config.incoming, this.config.outgoing, votes) === 'won';
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): VoteResult {
    return jointVote(this.config.incoming, this.config.outgoing, this.votes);
  }
}
