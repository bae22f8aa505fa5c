/**
 * What a manager does with a join request (the future `IssueNodeCertificate` RPC without a
 * client certificate): check the token, assign a new node ID and the role the token grants,
 * and sign the CSR. Nothing is issued when any check fails.
 */
import { checkJoinToken, type JoinTokens } from './join-token.js';
import { type IssuedCertificate, type RootCA, newNodeId } from './root-ca.js';
import type { NodeRole } from './roles.js';

/** The cluster settings a join needs (from the cluster object in the store). */
export interface JoinPolicy {
  readonly clusterId: string;
  readonly tokens: JoinTokens;
  /** Node certificate validity (`--cert-expiry`); default 90 days. */
  readonly certExpiryMs?: number;
}

export interface JoinRequest {
  readonly csrPem: string;
  readonly token: string;
  /** The role the joiner asks for; default the token's. A worker token never gives manager. */
  readonly role?: NodeRole;
}

export async function issueForJoin(
  root: RootCA,
  policy: JoinPolicy,
  req: JoinRequest,
  opts: { now?: number; nodeId?: string } = {},
): Promise<IssuedCertificate> {
  const role = checkJoinToken(req.token, policy.tokens, root.digest, req.role);
  return root.issue(req.csrPem, {
    nodeId: opts.nodeId ?? newNodeId(),
    role,
    clusterId: policy.clusterId,
    expiryMs: policy.certExpiryMs,
    now: opts.now,
  });
}
