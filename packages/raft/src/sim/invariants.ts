/**
 * Raft safety invariants checked by the simulator after every event, across crashes:
 * election safety, log matching, leader completeness, state machine safety, leader
 * append-only, monotonic term/commit/applied, one vote per (node, term), at most one pending
 * conf change on a leader, acknowledged writes durable.
 */
import type { Entry, Message, NodeId } from '../core/types.js';
import type { SimMember } from './sim-member.js';

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
  }
}

const dec = new TextDecoder();
function entryKey(e: Entry): string {
  return `${e.type}:${e.data.byteLength === 0 ? '' : dec.decode(e.data)}`;
}

interface NodeTrack {
  life: number;
  term: number;
  commit: number;
  applied: number;
  leaderTerm: number;
  leaderLast: number;
  leaderLastTerm: number;
}

export class InvariantChecker {
  /** term -> leader. */
  private readonly leaders = new Map<number, NodeId>();
  /** `${index}:${term}` -> entry fingerprint and previous entry's term (log matching by induction). */
  private readonly logEntries = new Map<string, { key: string; prevTerm: number }>();
  /**
   * index -> { term, key, commitTerm } of the entry applied at that index by anyone (committed).
   * commitTerm bounds from above the term in which it was committed: the lowest current term of
   * a node applying it (a node learns a commit from a leader of its term or from its own past).
   */
  private readonly appliedAt: ({ term: number; key: string; commitTerm: number } | undefined)[] = [];
  maxApplied = 0;
  /** `${node}:${term}` -> candidate it granted its vote to. */
  private readonly votes = new Map<string, NodeId>();
  private readonly track = new Map<NodeId, NodeTrack>();
  /** Highest term each node ever sent in (survives crashes: a restarted node must not be below). */
  private readonly durableTerm = new Map<NodeId, number>();
  checks = 0;

  private fail(inv: string, msg: string): never {
    throw new InvariantViolation(inv, msg);
  }

  /** A node persisted `entries` (checked before its messages leave). */
  persisted(node: SimMember, entries: readonly Entry[], firstPrevTerm: number): void {
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      const prevTerm = k > 0 ? entries[k - 1]!.term : firstPrevTerm;
      const id = `${e.index}:${e.term}`;
      const key = entryKey(e);
      const seen = this.logEntries.get(id);
      if (seen === undefined) {
        this.logEntries.set(id, { key, prevTerm });
      } else {
        if (seen.key !== key) this.fail('log matching', `${node.id} has a different entry at ${id}`);
        if (seen.prevTerm !== prevTerm && prevTerm !== 0 && seen.prevTerm !== 0) {
          this.fail('log matching', `${node.id}: entry ${id} follows term ${prevTerm}, elsewhere ${seen.prevTerm}`);
        }
      }
    }
  }

  /** A node applied a committed entry. */
  applied(node: SimMember, e: Entry): void {
    const key = entryKey(e);
    const at = this.appliedAt[e.index];
    const termNow = node.raft.term;
    if (at === undefined) {
      this.appliedAt[e.index] = { term: e.term, key, commitTerm: termNow };
      if (e.index > this.maxApplied) this.maxApplied = e.index;
    } else if (at.term === e.term && at.key === key) {
      if (termNow < at.commitTerm) at.commitTerm = termNow;
    } else {
      this.fail(
        'state machine safety',
        `${node.id} applied ${e.index}:${e.term} (${key}) but another node applied ${e.index}:${at.term} (${at.key})`,
      );
    }
  }

  appliedEntry(index: number): { term: number; key: string } | undefined {
    return this.appliedAt[index];
  }

  /** A message is about to be sent (after persistence). */
  sent(m: Message): void {
    if (m.type === 'voteResp' && !m.reject) {
      const k = `${m.from}:${m.term}`;
      const prev = this.votes.get(k);
      if (prev !== undefined && prev !== m.to) {
        this.fail('one vote per term', `${m.from} voted for ${prev} and ${m.to} in term ${m.term}`);
      }
      this.votes.set(k, m.to);
    }
    // Pre-vote messages carry a future term the sender does not hold.
    if (m.type === 'preVote' || m.type === 'preVoteResp') return;
    const d = this.durableTerm.get(m.from) ?? 0;
    if (m.term > d) this.durableTerm.set(m.from, m.term);
  }

  /** After any state change of `node`. */
  changed(node: SimMember): void {
    this.checks++;
    const r = node.raft;
    let t = this.track.get(node.id);
    if (t === undefined || t.life !== node.life) {
      // New life: the term must not fall below anything it ever sent (term/vote durability).
      const d = this.durableTerm.get(node.id) ?? 0;
      if (r.term < d) this.fail('term durability', `${node.id} restarted at term ${r.term} after sending in ${d}`);
      t = {
        life: node.life,
        term: r.term,
        commit: r.log.committed,
        applied: r.log.applied,
        leaderTerm: 0,
        leaderLast: 0,
        leaderLastTerm: 0,
      };
      this.track.set(node.id, t);
    }
    if (r.term < t.term) this.fail('monotonic term', `${node.id} term ${t.term} -> ${r.term}`);
    if (r.log.committed < t.commit)
      this.fail('monotonic commit', `${node.id} commit ${t.commit} -> ${r.log.committed}`);
    if (r.log.applied < t.applied)
      this.fail('monotonic applied', `${node.id} applied ${t.applied} -> ${r.log.applied}`);
    t.term = r.term;
    t.commit = r.log.committed;
    t.applied = r.log.applied;

    if (r.state === 'leader') {
      const other = this.leaders.get(r.term);
      if (other === undefined) {
        this.leaders.set(r.term, node.id);
        this.checkLeaderCompleteness(node);
      } else if (other !== node.id) {
        this.fail('election safety', `${other} and ${node.id} both lead term ${r.term}`);
      }
      const last = r.log.lastIndex();
      if (t.leaderTerm === r.term) {
        if (last < t.leaderLast) this.fail('leader append-only', `${node.id} log shrank ${t.leaderLast} -> ${last}`);
        const lt = r.log.termOr0(t.leaderLast);
        if (t.leaderLast >= r.log.firstIndex() && lt !== t.leaderLastTerm) {
          this.fail('leader append-only', `${node.id} rewrote entry ${t.leaderLast}`);
        }
      }
      t.leaderTerm = r.term;
      t.leaderLast = last;
      t.leaderLastTerm = r.log.termOr0(last);
      // At most one unapplied conf change in a leader's log.
      if (this.checks % 8 === 0 && last > r.log.applied) {
        let n = 0;
        const from = Math.max(r.log.applied + 1, r.log.firstIndex());
        for (const e of r.log.slice(from, last + 1, Number.MAX_SAFE_INTEGER)) if (e.type === 'confChange') n++;
        if (n > 1) this.fail('one pending conf change', `${node.id} has ${n} unapplied conf changes`);
      }
    } else {
      t.leaderTerm = 0;
    }
    if (r.log.committed > r.log.lastIndex()) this.fail('commit within log', `${node.id} commit beyond last index`);
  }

  /**
   * Every entry committed in a term below the new leader's term must be in its log (or covered by
   * its snapshot). A leader of a lower term may legitimately appear later in real time.
   */
  checkLeaderCompleteness(node: SimMember): void {
    const log = node.raft.log;
    const term = node.raft.term;
    const first = log.firstIndex();
    const last = log.lastIndex();
    for (let i = Math.max(first, 1); i <= this.maxApplied; i++) {
      const a = this.appliedAt[i];
      if (a === undefined || a.commitTerm >= term) continue;
      if (i > last) {
        this.fail(
          'leader completeness',
          `leader ${node.id} of term ${term} has last index ${last} < index ${i} committed by term ${a.commitTerm}`,
        );
      }
      const t = log.termOr0(i);
      if (t !== a.term) {
        this.fail(
          'leader completeness',
          `leader ${node.id} of term ${term} has term ${t} at index ${i} committed (term ${a.term}) by term ${a.commitTerm}`,
        );
      }
    }
  }
}
