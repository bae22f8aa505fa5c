/**
 * The Raft state machine: roles, terms and votes, message handling per role, replication and
 * commit, ReadIndex, leader transfer and membership. Deterministic and free of I/O: inputs are
 * ticks, messages and local requests; outputs are queued messages and log/state changes that
 * RawNode turns into Ready values.
 */
import { InvalidConfChangeError, ProposalDroppedError, RaftInvariantError } from '../errors.js';
import { CompactedError, SnapshotTemporarilyUnavailableError } from '../errors.js';
import { Changer, restoreConfState, type ChangeResult } from './confchange.js';
import { decodeConfChange, encodeConfChange } from './conf-codec.js';
import { campaignRequests, type CampaignKind } from './election.js';
import {
  TRANSFER_CTX,
  decodeNodeId,
  isTransferCtx,
  newMessage,
  voteRespType,
  withFields,
  type MessageFields,
} from './messages.js';
import { RaftLog } from './raft-log.js';
import { ReadOnly } from './read-only.js';
import { ProgressTracker } from './tracker.js';
import type { ConfChange, ConfState, Entry, HardState, Message, MessageType, NodeId, RaftConfig } from './types.js';
import { NONE, type ReadState, type Role, type Snapshot } from './types.js';
import { EMPTY_BYTES, payloadSize } from './util.js';

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: Role = 'follower';
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  /** Outgoing messages not yet handed out in a Ready. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee: NodeId = NONE;
  /** Index of the newest conf change proposed by this leader; no new one until it is applied. */
  pendingConfIndex = 0;
  uncommittedSize = 0;
  readOnly = new ReadOnly();
  /** ReadIndex requests received before the leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  readonly maxInflight: number;
  private readonly random: () => number;

  constructor(c: RaftConfig) {
    this.id = c.id;
    this.electionTimeout = c.electionTicks;
    this.heartbeatTimeout = c.heartbeatTicks;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize > 0 ? c.maxUncommittedEntriesSize : Infinity;
    this.maxInflight = c.maxInflightMsgs;
    this.random = c.random;
    this.log = new RaftLog(c.storage);
    this.trk = new ProgressTracker(c.maxInflightMsgs);
    const { hardState, confState } = c.storage.initialState();
    const r = restoreConfState(confState, this.log.lastIndex(), this.maxInflight);
    this.trk.config = r.config;
    this.trk.progress = r.progress;
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    // A torn write may keep entries of a newer term without the hard state that came with them:
    // our term is never below a term in our log (the vote of that term is unknown, so none).
    const lastTerm = this.log.lastTerm();
    if (lastTerm > this.term) {
      this.term = lastTerm;
      this.vote = NONE;
    }
    if (c.applied > 0) {
      // What the state machine applied was committed, even if the commit index was not synced.
      this.log.commitTo(Math.min(Math.max(this.log.committed, c.applied), this.log.lastIndex()));
      this.log.appliedTo(Math.min(c.applied, this.log.committed));
    }
    this.becomeFollower(this.term, NONE);
  }

  private loadState(hs: HardState): void {
    const last = this.log.lastIndex();
    if (hs.commit > last) throw new RaftInvariantError(`hard state commit ${hs.commit} is beyond last index ${last}`);
    // A commit below the snapshot (not synced before a crash) is implied by the snapshot.
    this.log.committed = Math.max(hs.commit, this.log.committed);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  confState(): ConfState {
    return this.trk.confState();
  }

  // ---- sending ----

  send(type: MessageType, to: NodeId, f: MessageFields = {}): void {
    const withTerm =
      type === 'vote' || type === 'preVote' || type === 'voteResp' || type === 'preVoteResp'
        ? f
        : type === 'prop' || type === 'readIndex'
          ? { ...f, term: 0 }
          : { ...f, term: this.term };
    this.msgs.push(newMessage(type, to, { ...withTerm, from: this.id }));
  }

  private forward(m: Message, to: NodeId): void {
    this.msgs.push(withFields(m, { to, term: m.type === 'prop' || m.type === 'readIndex' ? 0 : this.term }));
  }

  /**
   * Sends a MsgApp (or a snapshot when the needed entries are compacted) to `to` if its progress
   * allows. With sendIfEmpty false, nothing is sent when there are no entries. Returns true if a
   * message was queued.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const first = this.log.firstIndex();
    if (prevIndex < first - 1) return this.sendSnapshot(to);
    const prevTerm = this.log.termOr0(prevIndex);
    let ents: Entry[] = [];
    if (pr.state !== 'replicate' || !pr.inflights.full()) {
      try {
        ents = this.log.entriesFrom(pr.next, this.maxMsgSize);
      } catch (err) {
        if (err instanceof CompactedError) return this.sendSnapshot(to);
        throw err;
      }
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (let k = 0; k < ents.length; k++) bytes += payloadSize(ents[k]!);
    this.send('app', to, { index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed });
    pr.sentEntries(ents.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId): boolean {
    const pr = this.trk.progress.get(to)!;
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (err) {
      if (err instanceof SnapshotTemporarilyUnavailableError) return false;
      throw err;
    }
    if (snap.metadata.index === 0) throw new RaftInvariantError('need a non-empty snapshot to catch up a follower');
    pr.becomeSnapshot(snap.metadata.index);
    this.send('snap', to, { snapshot: snap });
    return true;
  }

  bcastAppend(): void {
    for (const id of this.trk.memberIds()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingRequestCtx();
    for (const id of this.trk.memberIds()) {
      if (id === this.id) continue;
      const pr = this.trk.progress.get(id)!;
      this.send('heartbeat', id, {
        commit: Math.min(pr.match, this.log.committed),
        context: ctx ?? EMPTY_BYTES,
      });
    }
  }

  // ---- role changes ----

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      pr.becomeProbe();
      pr.match = id === this.id ? this.log.unstable.offset - 1 : 0;
      pr.next = last + 1;
      pr.recentActive = id === this.id;
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = 'follower';
  }

  becomeCandidate(): void {
    if (this.state === 'leader') throw new RaftInvariantError('leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = 'candidate';
  }

  becomePreCandidate(): void {
    if (this.state === 'leader') throw new RaftInvariantError('leader cannot become pre-candidate');
    // Neither term nor vote change: a pre-election must not disturb anyone.
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = 'preCandidate';
  }

  becomeLeader(): void {
    if (this.state === 'follower') throw new RaftInvariantError('follower cannot become leader');
    this.reset(this.term);
    this.lead = this.id;
    this.state = 'leader';
    const self = this.trk.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // The empty entry commits everything before it (figure 8). No conf change may be proposed
    // until it is applied, so a new configuration never follows an uncommitted one of an old term.
    this.appendEntries([{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }], true);
    this.pendingConfIndex = this.log.lastIndex();
  }

  // ---- ticks ----

  tick(): void {
    if (this.state === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.trk.quorumActive(this.id)) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
      }
      // A snapshot whose outcome never came back (lost ack, lost transport report): after one to
      // two election timeouts, probe again; the follower accepts or we send a new snapshot.
      for (const [id, pr] of this.trk.progress) {
        if (id === this.id || pr.state !== 'snapshot') continue;
        if (pr.snapshotStale) pr.becomeProbe();
        else pr.snapshotStale = true;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** A voter not waiting for a snapshot may campaign. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.log.unstable.snapshot === undefined;
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const ents = this.log.slice(this.log.applied + 1, this.log.committed + 1, Number.MAX_SAFE_INTEGER);
    for (const e of ents) if (e.type === 'confChange') return true;
    return false;
  }

  /** Starts an election (pre-vote first when enabled, unless this is a leader transfer). */
  hup(transfer: boolean): void {
    if (this.state === 'leader') return;
    if (!this.promotable()) return;
    // A committed but unapplied conf change may remove us: apply it first.
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(this.preVote && !transfer ? 'preElection' : 'election', transfer);
  }

  campaign(kind: CampaignKind, transfer: boolean): void {
    if (!this.promotable()) return;
    let term: number;
    let type: MessageType;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      type = 'preVote';
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      type = 'vote';
      term = this.term;
    }
    this.trk.recordVote(this.id, true);
    const res = this.trk.tallyVotes();
    if (res === 'won') {
      if (kind === 'preElection') this.campaign('election', transfer);
      else this.becomeLeader();
      return;
    }
    const reqs = campaignRequests(this.trk.voterIds(), this.id, type, term, this.log.lastIndex(), this.log.lastTerm());
    for (const m of reqs) this.msgs.push(transfer ? withFields(m, { context: TRANSFER_CTX }) : m);
  }

  // ---- step ----

  /** Steps a message; `local` is true for requests made through this node's own API (they may throw). */
  step(m: Message, local = false): void {
    if (m.term === 0) {
      // Local or forwarded message (proposal, read index): no term handling.
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const force = isTransferCtx(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        // We hear from a live leader: ignore the vote request (disruptive server protection).
        if (!force && inLease) return;
      }
      if (m.type === 'preVote') {
        // Never change the term because of a pre-vote.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // Granted pre-votes carry the future term; the term moves when the pre-election is won.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader (e.g. after a partition) learns our term from this and steps down.
        this.send('appResp', m.from);
      } else if (m.type === 'preVote') {
        this.send('preVoteResp', m.from, { term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case 'vote':
      case 'preVote': {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === 'preVote' && m.term > this.term);
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          // Learners answer too: they may be voters in a configuration we have not applied yet.
          this.send(voteRespType(m.type), m.from, { term: m.term });
          if (m.type === 'vote') {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(voteRespType(m.type), m.from, { term: this.term, reject: true });
        }
        return;
      }
      case 'app':
      case 'appResp':
      case 'voteResp':
      case 'preVoteResp':
      case 'heartbeat':
      case 'heartbeatResp':
      case 'snap':
      case 'prop':
      case 'readIndex':
      case 'readIndexResp':
      case 'timeoutNow':
      case 'transferLeader':
        break; // handled by the role below
      default:
        unknownMessage(m.type);
    }
    switch (this.state) {
      case 'leader':
        this.stepLeader(m, local);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m, local);
        return;
      case 'follower':
        this.stepFollower(m, local);
        return;
    }
  }

  private stepCandidate(m: Message, local: boolean): void {
    const myResp: MessageType = this.state === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'prop':
        if (local) throw new ProposalDroppedError('no leader (election in progress)');
        return;
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'readIndex':
        if (local) throw new ProposalDroppedError('no leader for read index');
        return;
      case 'transferLeader':
        if (local) throw new ProposalDroppedError('no leader to transfer from');
        return;
      case 'voteResp':
      case 'preVoteResp':
        break; // counted below when it answers our own kind of election
      case 'vote':
      case 'preVote':
      case 'appResp':
      case 'heartbeatResp':
      case 'readIndexResp':
      case 'timeoutNow':
        return; // votes were answered in step(); the rest is for leaders or followers
      default:
        unknownMessage(m.type);
    }
    if (m.type === myResp) {
      this.trk.recordVote(m.from, !m.reject);
      const res = this.trk.tallyVotes();
      if (res === 'won') {
        if (this.state === 'preCandidate') {
          this.campaign('election', false);
        } else {
          this.becomeLeader();
          this.bcastAppend();
        }
      } else if (res === 'lost') {
        this.becomeFollower(this.term, NONE);
      }
    }
  }

  private stepFollower(m: Message, local: boolean): void {
    switch (m.type) {
      case 'prop':
        if (this.lead === NONE) {
          if (local) throw new ProposalDroppedError('no leader');
          return;
        }
        this.forward(m, this.lead);
        return;
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'transferLeader':
        if (this.lead === NONE) {
          if (local) throw new ProposalDroppedError('no leader to transfer from');
          return;
        }
        this.forward(m, this.lead);
        return;
      case 'timeoutNow':
        // Transfers skip the pre-vote: the leader asked for it, nobody is partitioned.
        this.hup(true);
        return;
      case 'readIndex':
        if (this.lead === NONE) {
          if (local) throw new ProposalDroppedError('no leader for read index');
          return;
        }
        this.forward(m, this.lead);
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
      case 'vote':
      case 'preVote':
      case 'voteResp':
      case 'preVoteResp':
      case 'appResp':
      case 'heartbeatResp':
        return; // votes were answered in step(); late responses of a former role are dropped
      default:
        unknownMessage(m.type);
    }
  }

  handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send('appResp', m.from, { index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== -1) {
      this.send('appResp', m.from, { index: lastNew });
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <= m.logTerm, so the leader
    // can skip a whole term of conflicting entries at once.
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send('appResp', m.from, { index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(match, commit): never beyond what our log shares with it.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send('heartbeatResp', m.from, { context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s !== undefined && this.restore(s)) {
      this.send('appResp', m.from, { index: this.log.lastIndex() });
    } else {
      this.send('appResp', m.from, { index: this.log.committed });
    }
  }

  /** Installs a snapshot from the leader; false when it is stale (<= commit) or already matched. */
  restore(s: Snapshot): boolean {
    const meta = s.metadata;
    if (meta.index <= this.log.committed) return false;
    if (this.state !== 'follower') {
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = meta.confState;
    // A snapshot taken before this node was added does not list it: accept it anyway; the conf
    // change that adds it follows in the log.
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already have the entries: just move commit forward.
      this.log.commitTo(meta.index);
      return false;
    }
    this.log.restore(s);
    const r = restoreConfState(cs, this.log.lastIndex(), this.maxInflight);
    this.switchToConfig(r);
    return true;
  }

  private stepLeader(m: Message, local: boolean): void {
    switch (m.type) {
      case 'prop':
        this.handleProposal(m, local);
        return;
      case 'readIndex':
        if (this.trk.isSingleton()) {
          this.respondReadIndex(m, this.log.committed);
          return;
        }
        if (!this.committedEntryInCurrentTerm()) {
          // Until our empty entry commits, our commit index may be behind the cluster's.
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.startReadIndex(m);
        return;
      case 'transferLeader':
        this.handleTransferLeader(m, local);
        return;
      case 'appResp':
      case 'heartbeatResp':
        this.stepLeaderResponse(m, m.type);
        return;
      case 'vote':
      case 'preVote':
      case 'voteResp':
      case 'preVoteResp':
      case 'app':
      case 'heartbeat':
      case 'snap':
      case 'readIndexResp':
      case 'timeoutNow':
        // Votes were answered in step(); messages of another leader of this term cannot exist
        // (election safety); stale election results and follower-only messages are dropped.
        return;
      default:
        unknownMessage(m.type);
    }
  }

  /** Leader: a follower's answer to an append or a heartbeat. */
  private stepLeaderResponse(m: Message, type: 'appResp' | 'heartbeatResp'): void {
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return;
    switch (type) {
      case 'appResp': {
        pr.recentActive = true;
        if (m.reject) {
          let nextProbe = m.rejectHint;
          if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
          if (pr.maybeDecrTo(m.index, nextProbe)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.maybeSendAppend(m.from, true);
          }
          return;
        }
        this.handleAck(m.from, m.index);
        return;
      }
      case 'heartbeatResp': {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // Also recovers a follower stuck in Probe after a lost MsgApp.
        if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.maybeSendAppend(m.from, true);
        if (m.context.byteLength === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (acks === undefined) return;
        const votes = new Map<NodeId, boolean>();
        for (const id of acks) votes.set(id, true);
        if (!this.quorumOf(votes)) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondReadIndex(rs.req, rs.index);
        return;
      }
      default:
        unknownMessage(type);
    }
  }

  /** Leader: `from` (possibly ourselves, after persisting) has the log up to `index`. */
  handleAck(from: NodeId, index: number): void {
    const pr = this.trk.progress.get(from);
    if (pr === undefined) return;
    const oldPaused = pr.isPaused();
    if (!(pr.maybeUpdate(index) || (pr.match === index && pr.state === 'probe'))) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      // Caught up by MsgApp while a snapshot was pending: resume normal replication.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (from !== this.id && oldPaused) {
      this.maybeSendAppend(from, true);
    }
    if (from !== this.id) {
      // Fill the window: several size-limited MsgApps may go out now.
      while (this.maybeSendAppend(from, false)) {
        /* keep sending */
      }
      if (from === this.leadTransferee && pr.match === this.log.lastIndex()) this.send('timeoutNow', from);
    }
  }

  private quorumOf(votes: ReadonlyMap<NodeId, boolean>): boolean {
    const v = new Map(votes);
    v.set(this.id, true);
    const saved = this.trk.votes;
    this.trk.votes = v;
    const won = this.trk.tallyVotes() === 'won';
    this.trk.votes = saved;
    return won;
  }

  /** Commits the quorum's match index if it is an entry of the current term (figure 8). */
  maybeCommit(): boolean {
    const mci = this.trk.committed();
    if (!Number.isFinite(mci)) return false;
    return this.log.maybeCommit(mci, this.term);
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.termOr0(this.log.committed) === this.term;
  }

  private startReadIndex(m: Message): void {
    this.readOnly.addRequest(this.log.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    const ctx = m.context;
    for (const id of this.trk.memberIds()) {
      if (id === this.id) continue;
      const pr = this.trk.progress.get(id)!;
      this.send('heartbeat', id, { commit: Math.min(pr.match, this.log.committed), context: ctx });
    }
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) {
      if (this.trk.isSingleton()) this.respondReadIndex(m, this.log.committed);
      else this.startReadIndex(m);
    }
  }

  private respondReadIndex(req: Message, index: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, requestCtx: req.context });
    } else {
      this.send('readIndexResp', req.from, { index, context: req.context });
    }
  }

  private handleProposal(m: Message, local: boolean): void {
    const drop = (why: string): void => {
      if (local) throw new ProposalDroppedError(why);
    };
    if (m.entries.length === 0) throw new RaftInvariantError('empty proposal');
    if (!this.trk.progress.has(this.id)) return drop('this node was removed from the configuration');
    if (this.leadTransferee !== NONE) return drop(`leader transfer to ${this.leadTransferee} in progress`);
    const ents = m.entries.slice();
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!;
      if (e.type !== 'confChange') continue;
      const cc = decodeConfChange(e.data);
      const leave = cc.changes.length === 0;
      let refused = '';
      if (this.pendingConfIndex > this.log.applied) refused = 'a configuration change is already pending';
      else if (this.trk.isJoint() && !leave) refused = 'must leave the joint configuration first';
      else if (!this.trk.isJoint() && leave) refused = 'not in a joint configuration';
      if (refused !== '') {
        if (local) throw new ProposalDroppedError(refused);
        ents[k] = { term: 0, index: 0, type: 'normal', data: EMPTY_BYTES };
      } else {
        this.pendingConfIndex = this.log.lastIndex() + k + 1;
      }
    }
    if (!this.appendEntries(ents, false)) return drop('too many uncommitted entries');
    this.bcastAppend();
  }

  /** Appends entries in the current term; false if the uncommitted-size cap refuses them. */
  appendEntries(es: readonly Entry[], force: boolean): boolean {
    let size = 0;
    for (let k = 0; k < es.length; k++) size += payloadSize(es[k]!);
    if (!force && this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > this.maxUncommittedSize) {
      return false;
    }
    this.uncommittedSize += size;
    const li = this.log.lastIndex();
    const out: Entry[] = new Array<Entry>(es.length);
    for (let k = 0; k < es.length; k++) {
      const e = es[k]!;
      out[k] = { term: this.term, index: li + 1 + k, type: e.type, data: e.data };
    }
    this.log.append(out);
    // Our own progress moves only once the entries are persisted (RawNode.advance).
    return true;
  }

  reduceUncommittedSize(ents: readonly Entry[]): void {
    let s = 0;
    for (let k = 0; k < ents.length; k++) s += payloadSize(ents[k]!);
    this.uncommittedSize = Math.max(0, this.uncommittedSize - s);
  }

  private handleTransferLeader(m: Message, local: boolean): void {
    const to = decodeNodeId(m.context);
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isLearner) {
      if (local) throw new ProposalDroppedError(`cannot transfer leadership to ${to}: not a voter`);
      return;
    }
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === to) return;
      this.leadTransferee = NONE;
    }
    if (to === this.id) return;
    // The transfer must finish within one election timeout (see tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = to;
    if (pr.match === this.log.lastIndex()) this.send('timeoutNow', to);
    else this.maybeSendAppend(to, true);
  }

  // ---- local reports ----

  reportUnreachable(id: NodeId): void {
    if (this.state !== 'leader') return;
    const pr = this.trk.progress.get(id);
    if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.state !== 'leader') return;
    const pr = this.trk.progress.get(id);
    if (pr === undefined || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or a heartbeat response) before probing again.
    pr.msgAppFlowPaused = true;
  }

  // ---- membership ----

  applyConfChange(cc: ConfChange): ConfState {
    const changer = new Changer(this.log.lastIndex(), this.maxInflight);
    const r = changer.apply({ config: this.trk.config, progress: this.trk.progress }, cc);
    return this.switchToConfig(r);
  }

  private switchToConfig(r: ChangeResult): ConfState {
    this.trk.config = r.config;
    this.trk.progress = r.progress;
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    if ((pr === undefined || pr.isLearner) && this.state === 'leader') {
      // Removed or demoted: a leader outside the configuration is not part of its own quorum.
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== 'leader' || cs.voters.length === 0) return cs;
    if (this.maybeCommit()) this.bcastAppend();
    else for (const id of this.trk.memberIds()) if (id !== this.id) this.maybeSendAppend(id, false);
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    return cs;
  }

  /** Leader: propose leaving an auto-leave joint configuration once entering it is applied. */
  maybeAutoLeave(): void {
    if (this.state !== 'leader' || !this.trk.config.autoLeave) return;
    if (this.log.applied < this.pendingConfIndex) return;
    const data = encodeConfChange({ changes: [], transition: 'auto', context: EMPTY_BYTES });
    if (this.appendEntries([{ term: 0, index: 0, type: 'confChange', data }], true)) {
      this.pendingConfIndex = this.log.lastIndex();
      this.bcastAppend();
    }
  }

  /** Validates a ConfChange before proposing it (so a bad one fails at the caller). */
  static checkConfChange(cc: ConfChange): void {
    for (const ch of cc.changes) {
      if (ch.nodeId === NONE) throw new InvalidConfChangeError('empty node id');
    }
  }
}

/** Exhaustiveness check of message switches: tsc fails when a MessageType is not handled. */
function unknownMessage(type: never): never {
  throw new RaftInvariantError(`unknown message type ${String(type)}`);
}
