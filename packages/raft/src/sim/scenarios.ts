/**
 * Scripted fault scenarios that react to the cluster's state, for the two situations random
 * chaos rarely reaches:
 *
 * - stale reads: the leader is cut off while its clock runs slow (timer starvation), so it keeps
 *   believing it leads long after the others elected a new leader and committed writes; clients
 *   keep reading from it. Raft's ReadIndex must not answer there (no heartbeat quorum).
 * - figure 8 (Raft paper §5.4.2): entries of an old term reach a majority only under a later
 *   leader, which then vanishes, while a node holding a conflicting entry of a term in between
 *   can still win. A leader must never count replicas of an older term's entry to commit it.
 */
import type { NodeId } from '../core/types.js';
import type { Prng } from './prng.js';
import type { SimMember } from './sim-member.js';
import type { SimNet } from './sim-net.js';

export interface ScenarioHost {
  readonly net: SimNet;
  readonly rng: Prng;
  leader(): SimMember | undefined;
  /** Ids of the members still in play (not retired). */
  memberIds(): NodeId[];
  /** Every node id ever started (for cutting all links of one node). */
  allIds(): NodeId[];
  /** Calls `fn` after every state change of any node; returns the unsubscribe function. */
  watch(fn: (n: SimMember) => void): () => void;
  log(line: string): void;
}

/** Cuts the leader off and slows its clock 3-10×; false when there is no leader. */
export function isolatedSlowLeader(h: ScenarioHost): boolean {
  const l = h.leader();
  if (l === undefined) return false;
  const rate = h.rng.pick([3, 5, 10]);
  h.net.isolate(l.id, h.allIds());
  l.clockRate = rate;
  h.log(`chaos: isolate leader ${l.id}, its clock ${rate}x slow`);
  return true;
}

/**
 * Figure 8, reactively: (1) the leader L1 and a minority are split from the rest, so L1's new
 * entries stay in the minority; (2) the moment the majority elects S, S is cut off (its first
 * entry stays on S alone) and the split heals; (3) the next leader L2 (a later term) replicates
 * L1's entries; the moment its commit index moves, L2 (and sometimes one more node) is cut off
 * and S comes back. If L2 committed old-term entries by counting replicas, S can now win and
 * overwrite them. Returns false when there is no leader to start from.
 */
export function figure8(h: ScenarioHost): boolean {
  const l1 = h.leader();
  if (l1 === undefined) return false;
  const ids = h.memberIds();
  const others = h.rng.shuffle(ids.filter((id) => id !== l1.id));
  const minority = [l1.id, ...others.slice(0, Math.max(0, Math.floor((ids.length - 1) / 2) - 1))];
  const majority = ids.filter((id) => !minority.includes(id));
  h.net.split(minority, majority);
  h.log(`chaos: figure-8 from leader ${l1.id}: split [${minority.join(',')}] | [${majority.join(',')}]`);
  let stage: 'await-s' | 'await-l2' | 'await-commit' = 'await-s';
  let s = '';
  let sTerm = 0;
  let l2 = '';
  let l2Commit = 0;
  const stop = h.watch((n) => {
    const r = n.raft;
    if (r.state !== 'leader') return;
    if (stage === 'await-s' && majority.includes(n.id)) {
      s = n.id;
      sTerm = r.term;
      h.net.clearCuts();
      h.net.isolate(s, h.allIds());
      stage = 'await-l2';
      h.log(`chaos: figure-8: ${s} leads term ${sTerm}; cut it off, heal the split`);
    } else if (stage === 'await-l2' && n.id !== s && r.term > sTerm) {
      l2 = n.id;
      l2Commit = r.log.committed;
      stage = 'await-commit';
      h.log(`chaos: figure-8: ${l2} leads term ${r.term} at commit ${l2Commit}`);
    } else if (stage === 'await-commit' && n.id === l2 && r.log.committed > l2Commit) {
      h.net.clearCuts();
      h.net.isolate(l2, h.allIds());
      // The rest of the old minority has L2's newest entries and would outvote S: cut it too.
      const extra = minority.includes(l2) ? minority.filter((id) => id !== l2) : [];
      for (const id of extra) h.net.isolate(id, h.allIds());
      h.log(`chaos: figure-8: ${l2} committed ${r.log.committed}; cut it off with [${extra.join(',')}], ${s} back`);
      stop();
    }
  });
  return true;
}
