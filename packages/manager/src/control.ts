/**
 * The Control service for nodes and the cluster object, with Docker's rules: availability and
 * labels; promote and demote (the last manager is never demoted, nor one whose leaving would
 * break quorum); `node rm` refuses a node that is not down without --force and a manager still
 * in Raft; the cluster spec with a version check, join-token and unlock-key rotation, and the
 * certificate expiry. The RPCs of later issues answer failed-precondition "not implemented yet".
 */
import {
  type Cluster,
  type ClusterSpec,
  type GetClusterRequest,
  type GetClusterResponse,
  type GetNodeRequest,
  type GetNodeResponse,
  type GetUnlockKeyResponse,
  type ListClustersResponse,
  type ListNodesRequest,
  type ListNodesResponse,
  NODE_AVAILABILITIES,
  NODE_ROLES,
  type RemoveNodeRequest,
  type UpdateClusterRequest,
  type UpdateClusterResponse,
  type UpdateNodeRequest,
  type UpdateNodeResponse,
} from '@shoal/api';
import { checkCertExpiry, rotateJoinTokens, UnlockKey, UNLOCK_KEY_PREFIX, type NodeRole } from '@shoal/ca';
import {
  ClusterNotFoundError,
  InvalidRequestError,
  LastManagerError,
  NodeIsManagerError,
  NodeNotDownError,
} from './errors.js';
import {
  checkQuorumWithout,
  type ManagerContext,
  membership,
  type StoredCluster,
  type StoredNode,
  theCluster,
  fromStored,
} from './context.js';
import { listNodeViews, nodeView, resolveNode } from './nodes.js';

/** The cluster as clients see it: no CA key, no unlock key; the trust root in TLSInfo. */
export function clusterView(stored: StoredCluster): Cluster {
  const c = fromStored(stored);
  const { RootCA: root, UnlockKey: _unlock, ...rest } = c;
  const spec: ClusterSpec | undefined =
    rest.Spec === undefined
      ? undefined
      : {
          ...rest.Spec,
          ...(rest.Spec.CAConfig === undefined ? {} : { CAConfig: { ...rest.Spec.CAConfig, SigningCAKey: '' } }),
        };
  const trustRoot = root?.CACert === undefined ? '' : Buffer.from(root.CACert).toString();
  return {
    ...rest,
    ...(spec === undefined ? {} : { Spec: spec }),
    TLSInfo: { ...rest.TLSInfo, TrustRoot: rest.TLSInfo?.TrustRoot || trustRoot },
  };
}

function unlockKeyText(bytes: Uint8Array | undefined): string {
  if (bytes === undefined || bytes.length === 0) return '';
  return UnlockKey.parse(UNLOCK_KEY_PREFIX + Buffer.from(bytes).toString('base64')).format();
}

export class ControlApi {
  constructor(
    private readonly ctx: ManagerContext,
    /** Called after a node is removed (the dispatcher ends its session). */
    private readonly onNodeRemoved: (id: string) => void = () => undefined,
  ) {}

  getNode(req: GetNodeRequest): GetNodeResponse {
    const n = resolveNode(this.ctx, req.NodeID ?? '');
    return { Node: nodeView(n, membership(this.ctx)) };
  }

  listNodes(req: ListNodesRequest): ListNodesResponse {
    return { Nodes: listNodeViews(this.ctx, req.Filters) };
  }

  async updateNode(req: UpdateNodeRequest): Promise<UpdateNodeResponse> {
    const cur = resolveNode(this.ctx, req.NodeID ?? '');
    if (req.NodeVersion === undefined) {
      throw new InvalidRequestError(`update of node ${cur.ID}: NodeVersion (the version read before) is required`);
    }
    const spec = req.Spec;
    if (spec === undefined) throw new InvalidRequestError(`update of node ${cur.ID}: Spec is required`);
    // Over gRPC an unset string arrives as '': it keeps the current value.
    const role = spec.Role || cur.Spec?.Role || 'worker';
    if (!(NODE_ROLES as readonly string[]).includes(role)) {
      throw new InvalidRequestError(`invalid role '${role}' for node ${cur.ID}: use ${NODE_ROLES.join(' or ')}`);
    }
    const availability = spec.Availability || cur.Spec?.Availability || 'active';
    if (!(NODE_AVAILABILITIES as readonly string[]).includes(availability)) {
      throw new InvalidRequestError(
        `invalid availability '${availability}' for node ${cur.ID}: use ${NODE_AVAILABILITIES.join(', ')}`,
      );
    }
    if (cur.Spec?.Role === 'manager' && role === 'worker') {
      const managers = this.ctx.store.find<StoredNode>('node', 'role', 'manager');
      if (managers.filter((n) => n.ID !== cur.ID).length === 0) throw new LastManagerError(cur.ID);
      checkQuorumWithout(this.ctx, cur.ID, 'demote');
    }
    const next: StoredNode = {
      ...cur,
      Spec: { Name: spec.Name ?? '', Labels: spec.Labels ?? {}, Role: role, Availability: availability },
      Version: { Index: req.NodeVersion.Index ?? 0 },
    };
    await this.ctx.store.update((tx) => tx.update('node', next));
    const after = this.ctx.store.get<StoredNode>('node', cur.ID);
    return { Node: after === undefined ? undefined : nodeView(after, membership(this.ctx)) };
  }

  async removeNode(req: RemoveNodeRequest): Promise<Record<string, never>> {
    const n = resolveNode(this.ctx, req.NodeID ?? '');
    if (n.Spec?.Role === 'manager' || membership(this.ctx).voters.includes(n.ID)) throw new NodeIsManagerError(n.ID);
    const state = n.Status?.State ?? 'unknown';
    if (req.Force !== true && (state === 'ready' || state === 'unknown')) throw new NodeNotDownError(n.ID, state);
    await this.ctx.store.update((tx) => tx.remove('node', n.ID, n.Version.Index));
    this.onNodeRemoved(n.ID);
    return {};
  }

  private clusterByRef(ref: string | undefined): StoredCluster {
    const c = theCluster(this.ctx);
    if (ref === undefined || ref === '' || ref === 'default' || ref === c.ID || ref === c.Spec?.Name) return c;
    throw new ClusterNotFoundError(ref);
  }

  getCluster(req: GetClusterRequest): GetClusterResponse {
    return { Cluster: clusterView(this.clusterByRef(req.ClusterID)) };
  }

  listClusters(): ListClustersResponse {
    return { Clusters: this.ctx.store.list<StoredCluster>('cluster').map(clusterView) };
  }

  async updateCluster(req: UpdateClusterRequest): Promise<UpdateClusterResponse> {
    const cur = this.clusterByRef(req.ClusterID);
    if (req.ClusterVersion === undefined) {
      throw new InvalidRequestError('update of the cluster: ClusterVersion (the version read before) is required');
    }
    const given = req.Spec ?? cur.Spec;
    if (given === undefined) throw new InvalidRequestError('update of the cluster: Spec is required');
    const spec: ClusterSpec = { ...given, Name: given.Name || cur.Spec?.Name || '' };
    if (spec.Name !== (cur.Spec?.Name ?? '')) {
      throw new InvalidRequestError(`renaming the cluster is not supported (${cur.Spec?.Name} -> ${spec.Name})`);
    }
    const expiryNs = spec.CAConfig?.NodeCertExpiry ?? 0;
    if (expiryNs !== 0) {
      if (expiryNs < 0) throw new InvalidRequestError(`invalid certificate expiry ${expiryNs}ns: it must be positive`);
      checkCertExpiry(Math.round(expiryNs / 1e6));
    }
    const hb = spec.Dispatcher?.HeartbeatPeriod ?? 0;
    if (hb < 0) throw new InvalidRequestError(`invalid heartbeat period ${hb}ns: it must be positive`);
    if (spec.CAConfig?.SigningCAKey !== undefined && spec.CAConfig.SigningCAKey !== '') {
      throw new InvalidRequestError('changing the signing CA (swarm ca --rotate) is not supported yet');
    }
    const rot = req.Rotation ?? {};
    const roles: NodeRole[] = [];
    if (rot.WorkerJoinToken === true) roles.push('worker');
    if (rot.ManagerJoinToken === true) roles.push('manager');
    const curTokens = { worker: cur.JoinTokens?.Worker ?? '', manager: cur.JoinTokens?.Manager ?? '' };
    const tokens = roles.length > 0 ? rotateJoinTokens(curTokens, this.ctx.rootCA.digest, roles) : curTokens;
    const autolock = spec.EncryptionConfig?.AutoLockManagers === true;
    let unlock: Uint8Array = fromStored(cur.UnlockKey) ?? Buffer.alloc(0);
    if (!autolock) unlock = Buffer.alloc(0);
    else if (unlock.length === 0 || rot.ManagerUnlockKey === true) unlock = UnlockKey.generate().bytes;
    const next: StoredCluster = {
      ...cur,
      Spec: {
        ...spec,
        CAConfig: { ...spec.CAConfig, SigningCAKey: cur.Spec?.CAConfig?.SigningCAKey ?? '' },
      },
      JoinTokens: { Worker: tokens.worker, Manager: tokens.manager },
      UnlockKey: unlock,
      Version: { Index: req.ClusterVersion.Index ?? 0 },
    };
    await this.ctx.store.update((tx) => tx.update('cluster', next));
    return { Cluster: clusterView(this.clusterByRef(cur.ID)) };
  }

  getUnlockKey(): GetUnlockKeyResponse {
    const c = theCluster(this.ctx);
    return { UnlockKey: unlockKeyText(fromStored(c.UnlockKey)), Version: { Index: c.Version.Index } };
  }
}
