/**
 * RaftMembership (leader): a manager joins the Raft group with its manager certificate and its
 * advertised address; Leave takes a manager out. Raft member IDs are node IDs (the `NodeID` of
 * each RaftMember; `RaftID` stays 0). The member's address is kept in its Node object
 * (ManagerStatus.Addr), which is where the member list and the dispatcher's manager list come from.
 */
import type { RaftJoinRequest, RaftJoinResponse, RaftLeaveRequest, RaftMember } from '@shoal/api';
import { CallerNotAllowedError, InvalidRequestError, NodeNotFoundError, NotLeaderError } from './errors.js';
import { checkQuorumWithout, type ManagerContext, membership, type StoredNode, updateNode } from './context.js';
import type { CallerIdentity } from './identity.js';

/** `host:port` with a port 1-65535 and a non-empty host (IPv6 in brackets). */
export function checkRaftAddr(addr: string): void {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(addr);
  const port = m?.[2] === undefined ? NaN : Number(m[2]);
  if (m === null || !(port >= 1 && port <= 65535)) {
    throw new InvalidRequestError(`invalid raft address '${addr}': use host:port (e.g. 198.18.0.2:2377)`);
  }
}

export class RaftMembershipApi {
  constructor(private readonly ctx: ManagerContext) {}

  members(): RaftMember[] {
    return membership(this.ctx).voters.map((id) => ({
      RaftID: 0,
      NodeID: id,
      Addr: this.ctx.store.get<StoredNode>('node', id)?.ManagerStatus?.Addr ?? '',
    }));
  }

  private requireLeader(what: string): void {
    const info = this.ctx.raft.leaderInfo();
    if (!info.isLeader) throw new NotLeaderError(what, info.leader);
  }

  async join(req: RaftJoinRequest, caller: CallerIdentity, signal?: AbortSignal): Promise<RaftJoinResponse> {
    this.requireLeader('a raft join');
    const nodeId = caller.nodeId;
    if (nodeId === undefined || caller.role !== 'manager') {
      throw new CallerNotAllowedError('joining raft needs a manager certificate');
    }
    const addr = req.Addr ?? '';
    checkRaftAddr(addr);
    const node = this.ctx.store.get<StoredNode>('node', nodeId);
    if (node === undefined) throw new NodeNotFoundError(nodeId);
    if (node.Spec?.Role !== 'manager') {
      throw new CallerNotAllowedError(`node ${nodeId} is not a manager in the cluster (demoted?): it cannot join raft`);
    }
    const m = membership(this.ctx);
    if (!m.voters.includes(nodeId) || node.ManagerStatus?.Addr !== addr) {
      await this.ctx.raft.addMember(nodeId, addr, signal === undefined ? {} : { signal });
      await updateNode(this.ctx, nodeId, (n) =>
        n.ManagerStatus?.Addr === addr ? undefined : { ...n, ManagerStatus: { ...n.ManagerStatus, Addr: addr } },
      );
      this.ctx.logger.info({ nodeId, addr }, 'manager joined raft');
    }
    return { RaftID: 0, Members: this.members(), RemovedMembers: [] };
  }

  async leave(req: RaftLeaveRequest, caller: CallerIdentity, signal?: AbortSignal): Promise<Record<string, never>> {
    this.requireLeader('a raft leave');
    const target = req.Node?.NodeID || caller.nodeId;
    if (target === undefined || target === '')
      throw new InvalidRequestError('raft leave: name the member (Node.NodeID)');
    const m = membership(this.ctx);
    if (!m.voters.includes(target)) return {};
    checkQuorumWithout(this.ctx, target, 'remove from raft');
    if (target === this.ctx.raft.id) {
      // The leader leaving: hand leadership over first; the caller retries on the new leader.
      const other = m.voters.find((v) => v !== target && m.reachable(v) !== false);
      if (other !== undefined) await this.ctx.raft.transferLeadership(other, signal === undefined ? {} : { signal });
      throw new NotLeaderError('a raft leave of the leader', other ?? '');
    }
    await this.ctx.raft.removeMember(target, signal === undefined ? {} : { signal });
    if (this.ctx.store.get('node', target) !== undefined) {
      await updateNode(this.ctx, target, (n) => {
        const { ManagerStatus: _ms, ...rest } = n;
        return rest;
      });
    }
    this.ctx.logger.info({ nodeId: target }, 'manager left raft');
    return {};
  }
}
