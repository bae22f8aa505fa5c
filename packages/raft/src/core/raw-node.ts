/**
 * RawNode: the public face of the core (etcd's RawNode). Wraps the Raft state machine and turns
 * its state changes into Ready values, and the caller's advance() into stable/applied marks.
 * At most one Ready is outstanding: hasReady() is false until advance() is called.
 */
import { InvalidRaftConfigError, ReadyNotAdvancedError, RaftInvariantError } from '../errors.js';
import { decodeConfChange, encodeConfChange } from './conf-codec.js';
import { encodeNodeId, newMessage } from './messages.js';
import { Raft } from './raft.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ProgressStatus,
  RaftConfig,
  RawNodeApi,
  Ready,
  SoftState,
  Snapshot,
  Status,
} from './types.js';
import { NONE } from './types.js';
import { hardStateEqual } from './util.js';

const NO_LIMIT = Number.MAX_SAFE_INTEGER;

/** Checks a RaftConfig; throws InvalidRaftConfigError naming the bad field. */
export function validateConfig(c: RaftConfig): void {
  const bad = (m: string): never => {
    throw new InvalidRaftConfigError(m);
  };
  if (c.id === NONE) bad('id must not be empty');
  if (!Number.isSafeInteger(c.heartbeatTicks) || c.heartbeatTicks <= 0) bad('heartbeatTicks must be > 0');
  if (!Number.isSafeInteger(c.electionTicks) || c.electionTicks <= c.heartbeatTicks) {
    bad('electionTicks must be greater than heartbeatTicks');
  }
  if (!Number.isSafeInteger(c.maxInflightMsgs) || c.maxInflightMsgs <= 0) bad('maxInflightMsgs must be > 0');
  if (!(c.maxSizePerMsg > 0)) bad('maxSizePerMsg must be > 0');
  if (!(c.maxUncommittedEntriesSize >= 0)) bad('maxUncommittedEntriesSize must be >= 0');
  if (!Number.isSafeInteger(c.applied) || c.applied < 0) bad('applied must be a non-negative integer');
}

interface InFlight {
  lastEntry: { index: number; term: number } | undefined;
  snapshotIndex: number;
  lastCommitted: number;
  committed: readonly Entry[];
}

export class RawNode implements RawNodeApi {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private inFlight: InFlight | undefined;

  constructor(config: RaftConfig) {
    validateConfig(config);
    this.raft = new Raft(config);
    this.prevSoft = { leader: this.raft.lead, role: this.raft.state };
    // Compare with what is stored, so that a term raised at boot is persisted.
    this.prevHard = config.storage.initialState().hardState;
  }

  tick(): void {
    this.raft.tick();
  }

  /** Steps a message received from a peer. Local message types are refused. */
  step(m: Message): void {
    if (m.from === this.raft.id && m.type !== 'prop' && m.type !== 'readIndex' && m.type !== 'transferLeader') {
      throw new RaftInvariantError(`step: message ${m.type} from self`);
    }
    this.raft.step(m);
  }

  campaign(): void {
    this.raft.hup(false);
  }

  propose(data: Uint8Array): void {
    this.raft.step(
      newMessage('prop', NONE, { from: this.raft.id, entries: [{ term: 0, index: 0, type: 'normal', data }] }),
      true,
    );
  }

  /** Proposes several commands at once (one Ready, one MsgApp): cheaper than many propose() calls. */
  proposeBatch(datas: readonly Uint8Array[]): void {
    if (datas.length === 0) return;
    const entries: Entry[] = datas.map((data) => ({ term: 0, index: 0, type: 'normal', data }));
    this.raft.step(newMessage('prop', NONE, { from: this.raft.id, entries }), true);
  }

  proposeConfChange(cc: ConfChange): void {
    Raft.checkConfChange(cc);
    const data = encodeConfChange(cc);
    this.raft.step(
      newMessage('prop', NONE, { from: this.raft.id, entries: [{ term: 0, index: 0, type: 'confChange', data }] }),
      true,
    );
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Applies the ConfChange carried by a committed 'confChange' entry. */
  applyConfChangeEntry(e: Entry): ConfState {
    return this.raft.applyConfChange(decodeConfChange(e.data));
  }

  readIndex(requestCtx: Uint8Array): void {
    this.raft.step(newMessage('readIndex', NONE, { from: this.raft.id, context: requestCtx }), true);
  }

  transferLeader(to: NodeId): void {
    this.raft.step(
      newMessage('transferLeader', NONE, { from: this.raft.id, term: this.raft.term, context: encodeNodeId(to) }),
      true,
    );
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.state };
  }

  hasReady(): boolean {
    if (this.inFlight !== undefined) return false;
    const r = this.raft;
    const ss = this.softState();
    if (ss.leader !== this.prevSoft.leader || ss.role !== this.prevSoft.role) return true;
    if (!hardStateEqual(r.hardState(), this.prevHard)) return true;
    if (r.log.unstable.nextSnapshot() !== undefined) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstable.offsetInProgress < r.log.unstable.offset + r.log.unstable.entries.length) return true;
    return r.log.hasNextCommittedEnts();
  }

  ready(): Ready {
    if (this.inFlight !== undefined) throw new ReadyNotAdvancedError();
    const r = this.raft;
    const entries = r.log.unstable.nextEntries();
    const snapshot: Snapshot | undefined = r.log.unstable.nextSnapshot();
    const committedEntries = r.log.nextCommittedEnts(NO_LIMIT);
    const ss = this.softState();
    const hs = r.hardState();
    const softChanged = ss.leader !== this.prevSoft.leader || ss.role !== this.prevSoft.role;
    const hardChanged = !hardStateEqual(hs, this.prevHard);
    const mustSync =
      entries.length > 0 || snapshot !== undefined || hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote;
    const rd: Ready = {
      ...(softChanged ? { softState: ss } : {}),
      ...(hardChanged ? { hardState: hs } : {}),
      entries,
      ...(snapshot !== undefined ? { snapshot } : {}),
      committedEntries,
      messages: r.msgs,
      readStates: r.readStates,
      mustSync,
    };
    r.msgs = [];
    r.readStates = [];
    if (softChanged) this.prevSoft = ss;
    if (hardChanged) this.prevHard = hs;
    r.log.unstable.acceptInProgress();
    const lastCommitted =
      committedEntries.length > 0 ? committedEntries[committedEntries.length - 1]!.index : r.log.applying;
    r.log.applying = lastCommitted;
    const last = entries[entries.length - 1];
    this.inFlight = {
      lastEntry: last === undefined ? undefined : { index: last.index, term: last.term },
      snapshotIndex: snapshot?.metadata.index ?? 0,
      lastCommitted,
      committed: committedEntries,
    };
    return rd;
  }

  /** The caller persisted, sent and applied everything in the last Ready. */
  advance(): void {
    const f = this.inFlight;
    if (f === undefined) return;
    this.inFlight = undefined;
    const r = this.raft;
    if (f.snapshotIndex > 0) {
      r.log.unstable.stableSnapTo(f.snapshotIndex);
      if (f.snapshotIndex > r.log.applied) {
        r.log.applied = f.snapshotIndex;
        if (r.log.applying < f.snapshotIndex) r.log.applying = f.snapshotIndex;
      }
    }
    if (f.lastEntry !== undefined) {
      r.log.unstable.stableTo(f.lastEntry.index, f.lastEntry.term);
      // The leader counts itself only for entries that are now durable.
      if (r.state === 'leader' && r.log.unstable.snapshot === undefined) {
        const stable = Math.min(f.lastEntry.index, r.log.unstable.offset - 1);
        if (r.log.termOr0(stable) !== 0) r.handleAck(r.id, stable);
      }
    }
    if (f.lastCommitted > r.log.applied) {
      r.log.appliedTo(f.lastCommitted);
      if (r.state === 'leader') r.reduceUncommittedSize(f.committed);
    }
    r.maybeAutoLeave();
  }

  status(): Status {
    const r = this.raft;
    let progress: Map<NodeId, ProgressStatus> | undefined;
    if (r.state === 'leader') {
      progress = new Map();
      for (const [id, pr] of r.trk.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
        });
      }
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: this.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.confState(),
      leadTransferee: r.leadTransferee,
      ...(progress === undefined ? {} : { progress }),
    };
  }
}

/** The snapshot a new cluster starts from: index 1, term 1, with the initial voters. */
export function bootstrapSnapshot(voters: readonly NodeId[], data: Uint8Array = new Uint8Array(0)): Snapshot {
  return {
    metadata: {
      index: 1,
      term: 1,
      confState: { voters: [...voters].sort(), learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
    data,
  };
}
