/**
 * The CA service: the root certificate for joiners, certificates for joining nodes (the join
 * token decides the role, the CA the node ID) and for renewals (same ID, the role the cluster
 * wants for the node now: this is how promote and demote reach a node), and the latest
 * certificate of a node.
 */
import {
  type GetRootCACertificateResponse,
  type IssueNodeCertificateRequest,
  type IssueNodeCertificateResponse,
  NODE_AVAILABILITIES,
  type NodeCertificateStatusRequest,
  type NodeCertificateStatusResponse,
  type Node,
} from '@shoal/api';
import { issueForJoin, type NodeRole } from '@shoal/ca';
import { CallerNotAllowedError, CannotSignError, InvalidRequestError, NodeNotFoundError } from './errors.js';
import {
  certExpiryMs,
  fromStored,
  type ManagerContext,
  signingCA,
  type StoredNode,
  theCluster,
  updateNode,
} from './context.js';
import type { CallerIdentity } from './identity.js';

export class CaApi {
  constructor(private readonly ctx: ManagerContext) {}

  getRootCaCertificate(): GetRootCACertificateResponse {
    return { Certificate: Buffer.from(this.ctx.rootCA.certPem) };
  }

  async issueNodeCertificate(
    req: IssueNodeCertificateRequest,
    caller: CallerIdentity,
  ): Promise<IssueNodeCertificateResponse> {
    const csrPem = Buffer.from(req.CSR ?? new Uint8Array()).toString();
    if (csrPem.trim() === '') throw new InvalidRequestError('IssueNodeCertificate: CSR is required');
    const availability = req.Availability === undefined || req.Availability === '' ? 'active' : req.Availability;
    if (!(NODE_AVAILABILITIES as readonly string[]).includes(availability)) {
      throw new InvalidRequestError(`invalid availability '${availability}': use ${NODE_AVAILABILITIES.join(', ')}`);
    }
    const root = signingCA(this.ctx);
    if (!root.canSign) throw new CannotSignError();
    const cluster = theCluster(this.ctx);
    const expiryMs = certExpiryMs(cluster);
    const token = req.Token ?? '';
    if (token !== '') {
      const issued = await issueForJoin(
        root,
        {
          clusterId: cluster.ID,
          tokens: { worker: cluster.JoinTokens?.Worker ?? '', manager: cluster.JoinTokens?.Manager ?? '' },
          ...(expiryMs === undefined ? {} : { certExpiryMs: expiryMs }),
        },
        { csrPem, token },
      );
      const { nodeId, role } = issued.identity;
      const created: Node & { ID: string } = {
        ID: nodeId,
        Spec: { Name: '', Labels: {}, Role: role, Availability: availability },
        Description: {},
        Status: { State: 'unknown', Message: '', Addr: caller.addr },
        Certificate: { Role: role, State: 'issued', Err: '', Certificate: Buffer.from(issued.certPem), CN: nodeId },
      };
      await this.ctx.store.update((tx) => tx.create('node', { ...created }));
      this.ctx.logger.info({ nodeId, role }, 'node joined: certificate issued');
      return { NodeID: nodeId, NodeMembership: 'accepted' };
    }
    // Renewal (or a role change): the caller proves who it is with its current certificate.
    if (caller.nodeId === undefined) {
      throw new CallerNotAllowedError(
        'IssueNodeCertificate without a join token needs a valid node certificate (renewal); join with a token',
      );
    }
    const nodeId = caller.nodeId;
    const node = this.ctx.store.get<StoredNode>('node', nodeId);
    if (node === undefined) {
      throw new CallerNotAllowedError(`node ${nodeId} is not part of the cluster any more (removed): join again`);
    }
    const role: NodeRole = node.Spec?.Role === 'manager' ? 'manager' : 'worker';
    const issued = await root.issue(csrPem, {
      nodeId,
      role,
      clusterId: cluster.ID,
      ...(expiryMs === undefined ? {} : { expiryMs }),
    });
    await updateNode(this.ctx, nodeId, (n) => ({
      ...n,
      Certificate: { Role: role, State: 'issued', Err: '', Certificate: Buffer.from(issued.certPem), CN: nodeId },
    }));
    this.ctx.logger.info({ nodeId, role }, 'node certificate renewed');
    return { NodeID: nodeId, NodeMembership: 'accepted' };
  }

  nodeCertificateStatus(req: NodeCertificateStatusRequest): NodeCertificateStatusResponse {
    const id = req.NodeID ?? '';
    const node = this.ctx.store.get<StoredNode>('node', id);
    if (node === undefined) throw new NodeNotFoundError(id === '' ? "''" : id);
    return {
      Certificate: fromStored(node.Certificate) ?? { State: 'pending' },
      RootCABundle: Buffer.from(this.ctx.rootCA.trustBundlePem()),
    };
  }
}
