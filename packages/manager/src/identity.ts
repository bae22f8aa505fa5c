/**
 * Who is calling a manager handler. A node proves its ID and role with its certificate (ca's
 * identifyGrpcPeer, which takes the role only from a certificate issued by the cluster root and
 * valid now). A follower that forwards a call to the leader calls with its own manager
 * certificate and names the original caller in metadata: those headers are believed only from a
 * verified manager.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { identifyGrpcPeer, type NodeRole } from '@shoal/ca';

/** Metadata a forwarding manager sets: the original caller's node ID, role and address. */
export const FORWARDED_NODE_ID = 'shoal-forwarded-node-id';
export const FORWARDED_ROLE = 'shoal-forwarded-role';
export const FORWARDED_ADDR = 'shoal-forwarded-addr';

export interface CallerIdentity {
  /** Undefined for a caller without a (verified) certificate: a joiner, or the local CLI. */
  readonly nodeId?: string;
  readonly role?: NodeRole;
  /** The caller's IP address as the server sees it ('' when unknown or a unix socket). */
  readonly addr: string;
}

/** The parts of a grpc-js server call the identity needs. */
export interface CallLike {
  getPeer(): string;
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | null | undefined;
  readonly metadata: Metadata;
}

/** `ipv4:198.18.0.2:41234` -> `198.18.0.2`; `ipv6:[fd00::1]:5` -> `fd00::1`; unix -> ''. */
export function hostOfPeer(peer: string): string {
  let p = peer;
  if (p.startsWith('unix:')) return '';
  p = p.replace(/^ipv[46]:/, '');
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  if (bracket?.[1] !== undefined) return bracket[1];
  const parts = p.split(':');
  if (parts.length === 2) return parts[0] ?? '';
  return p;
}

function first(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The caller of `call`, checked against the cluster root `rootPem` (and cluster ID when given). */
export function identifyCaller(call: CallLike, rootPem: string, clusterId?: string): CallerIdentity {
  const auth = call.getAuthContext?.();
  const cert = auth?.sslPeerCertificate;
  const addr = hostOfPeer(call.getPeer());
  if (!cert?.raw || cert.raw.length === 0) return { addr };
  const id = identifyGrpcPeer(auth, rootPem, clusterId === undefined ? {} : { clusterId });
  if (id.role === 'manager') {
    const fwdId = first(call.metadata, FORWARDED_NODE_ID);
    if (fwdId !== undefined) {
      const fwdRole = first(call.metadata, FORWARDED_ROLE);
      const role: NodeRole | undefined = fwdRole === 'manager' || fwdRole === 'worker' ? fwdRole : undefined;
      return {
        nodeId: fwdId,
        ...(role === undefined ? {} : { role }),
        addr: first(call.metadata, FORWARDED_ADDR) ?? addr,
      };
    }
  }
  return { nodeId: id.nodeId, role: id.role, addr };
}
