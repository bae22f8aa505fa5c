/**
 * Membership changes on a copy of the tracker's configuration and progress: one voter at a time
 * (simple), entering a joint configuration C(old, new) for several changes at once, leaving it,
 * and restoring a configuration from a ConfState (snapshot or boot).
 */
import { InvalidConfChangeError } from '../errors.js';
import { Progress } from './progress.js';
import { cloneConfig, emptyConfig, type TrackerConfig } from './tracker.js';
import type { ConfChange, ConfChangeSingle, ConfState, NodeId } from './types.js';

export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

export class Changer {
  private readonly lastIndex: number;
  private readonly maxInflight: number;

  constructor(lastIndex: number, maxInflight: number) {
    this.lastIndex = lastIndex;
    this.maxInflight = maxInflight;
  }

  /** Applies a committed ConfChange: leave joint (no changes), enter joint, or one simple change. */
  apply(cur: ChangeResult, cc: ConfChange): ChangeResult {
    if (cc.changes.length === 0) return this.leaveJoint(cur);
    if (cc.transition === 'explicit' || cc.changes.length > 1) {
      return this.enterJoint(cur, cc.transition === 'auto', cc.changes);
    }
    return this.simple(cur, cc.changes);
  }

  enterJoint(cur: ChangeResult, autoLeave: boolean, changes: readonly ConfChangeSingle[]): ChangeResult {
    const r = this.copy(cur);
    if (r.config.outgoing.size > 0) throw new InvalidConfChangeError('configuration is already joint');
    if (r.config.incoming.size === 0) throw new InvalidConfChangeError('cannot make a zero-voter configuration joint');
    for (const id of r.config.incoming) r.config.outgoing.add(id);
    this.applyChanges(r, changes);
    r.config.autoLeave = autoLeave;
    check(r);
    return r;
  }

  leaveJoint(cur: ChangeResult): ChangeResult {
    const r = this.copy(cur);
    const c = r.config;
    if (c.outgoing.size === 0) throw new InvalidConfChangeError('cannot leave a non-joint configuration');
    for (const id of c.learnersNext) {
      c.learners.add(id);
      const pr = r.progress.get(id);
      if (pr !== undefined) pr.isLearner = true;
    }
    c.learnersNext.clear();
    for (const id of c.outgoing) {
      if (!c.incoming.has(id) && !c.learners.has(id)) r.progress.delete(id);
    }
    c.outgoing.clear();
    c.autoLeave = false;
    check(r);
    return r;
  }

  /** One change that alters the voter set by at most one member (etcd's ConfChangeV1 path). */
  simple(cur: ChangeResult, changes: readonly ConfChangeSingle[]): ChangeResult {
    const r = this.copy(cur);
    if (r.config.outgoing.size > 0)
      throw new InvalidConfChangeError('cannot apply a simple change in a joint configuration');
    this.applyChanges(r, changes);
    let diff = 0;
    for (const id of r.config.incoming) if (!cur.config.incoming.has(id)) diff++;
    for (const id of cur.config.incoming) if (!r.config.incoming.has(id)) diff++;
    if (diff > 1) throw new InvalidConfChangeError('more than one voter changed without entering joint consensus');
    check(r);
    return r;
  }

  private copy(cur: ChangeResult): ChangeResult {
    const progress = new Map<NodeId, Progress>();
    for (const [id, pr] of cur.progress) progress.set(id, pr.clone());
    return { config: cloneConfig(cur.config), progress };
  }

  private applyChanges(r: ChangeResult, changes: readonly ConfChangeSingle[]): void {
    for (const ch of changes) {
      if (ch.nodeId === '') continue;
      switch (ch.type) {
        case 'addNode':
          this.makeVoter(r, ch.nodeId);
          break;
        case 'addLearner':
          this.makeLearner(r, ch.nodeId);
          break;
        case 'removeNode':
          this.remove(r, ch.nodeId);
          break;
      }
    }
    if (r.config.incoming.size === 0) throw new InvalidConfChangeError('removed all voters');
  }

  private initProgress(r: ChangeResult, id: NodeId, learner: boolean): void {
    // Probe from the last index; mark active so check-quorum does not fire before it answers.
    r.progress.set(id, new Progress(Math.max(this.lastIndex, 1), this.maxInflight, learner));
    if (learner) r.config.learners.add(id);
    else r.config.incoming.add(id);
  }

  private makeVoter(r: ChangeResult, id: NodeId): void {
    const pr = r.progress.get(id);
    if (pr === undefined) return this.initProgress(r, id, false);
    pr.isLearner = false;
    r.config.learners.delete(id);
    r.config.learnersNext.delete(id);
    r.config.incoming.add(id);
  }

  private makeLearner(r: ChangeResult, id: NodeId): void {
    const pr = r.progress.get(id);
    if (pr === undefined) return this.initProgress(r, id, true);
    if (pr.isLearner) return;
    this.remove(r, id);
    // Removing may have dropped the progress (not an outgoing voter): keep it for the learner.
    r.progress.set(id, pr);
    if (r.config.outgoing.has(id)) {
      // Still a voter of the outgoing half: becomes a learner only when leaving the joint config.
      r.config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      r.config.learners.add(id);
    }
  }

  private remove(r: ChangeResult, id: NodeId): void {
    if (!r.progress.has(id)) return;
    r.config.incoming.delete(id);
    r.config.learners.delete(id);
    r.config.learnersNext.delete(id);
    if (!r.config.outgoing.has(id)) r.progress.delete(id);
  }
}

function check(r: ChangeResult): void {
  const c = r.config;
  for (const set of [c.incoming, c.outgoing, c.learners, c.learnersNext]) {
    for (const id of set) if (!r.progress.has(id)) throw new InvalidConfChangeError(`no progress for ${id}`);
  }
  for (const id of c.learnersNext) {
    if (!c.outgoing.has(id)) throw new InvalidConfChangeError(`${id} is in learnersNext but not an outgoing voter`);
    if (r.progress.get(id)!.isLearner)
      throw new InvalidConfChangeError(`${id} is in learnersNext but already a learner`);
  }
  for (const id of c.learners) {
    if (c.incoming.has(id) || c.outgoing.has(id)) throw new InvalidConfChangeError(`${id} is both learner and voter`);
    if (!r.progress.get(id)!.isLearner) throw new InvalidConfChangeError(`${id} is a learner without learner progress`);
  }
  if (c.outgoing.size === 0 && c.autoLeave) throw new InvalidConfChangeError('autoLeave set outside a joint config');
}

/** Builds the configuration and fresh progress described by a ConfState (snapshot or boot). */
export function restoreConfState(cs: ConfState, lastIndex: number, maxInflight: number): ChangeResult {
  const config = emptyConfig();
  const progress = new Map<NodeId, Progress>();
  const next = Math.max(lastIndex, 1);
  const add = (id: NodeId, learner: boolean): void => {
    if (!progress.has(id)) progress.set(id, new Progress(next, maxInflight, learner));
  };
  for (const id of cs.voters) {
    config.incoming.add(id);
    add(id, false);
  }
  for (const id of cs.votersOutgoing) {
    config.outgoing.add(id);
    add(id, false);
  }
  for (const id of cs.learners) {
    config.learners.add(id);
    add(id, true);
  }
  for (const id of cs.learnersNext) config.learnersNext.add(id);
  config.autoLeave = cs.votersOutgoing.length > 0 && cs.autoLeave;
  const r = { config, progress };
  if (cs.voters.length > 0 || cs.learners.length > 0) check(r);
  return r;
}
