/** grpc-js credentials for the cluster port and for node-to-node calls, from ca's TLS helpers. */
import { credentials, experimental, type ChannelCredentials, type ServerCredentials } from '@grpc/grpc-js';
import {
  grpcClientCredentialsArgs,
  nodeServerIdentityCheck,
  type NodeCertificateProvider,
  type NodeTlsMaterial,
} from '@shoal/ca';

/** The cluster port: asks for a client certificate, lets joiners in without one (CA RPCs). */
export function clusterServerCredentials(provider: NodeCertificateProvider): ServerCredentials {
  return experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/** This node calling a manager with its own certificate; the server must be a manager of the cluster. */
export function nodeClientCredentials(m: NodeTlsMaterial): ChannelCredentials {
  const a = grpcClientCredentialsArgs(m, { roles: ['manager'] });
  return credentials.createSsl(a.rootCerts, a.privateKey, a.certChain, a.verifyOptions);
}

/** A joiner's first connection: TLS without verification, only to fetch the root certificate. */
export function bootstrapClientCredentials(): ChannelCredentials {
  return credentials.createSsl(null, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined });
}

/** A joiner's second connection: trusts only the pinned root; the server must be a manager. */
export function joinerClientCredentials(pinnedRootPem: string): ChannelCredentials {
  return credentials.createSsl(Buffer.from(pinnedRootPem), null, null, {
    checkServerIdentity: nodeServerIdentityCheck(pinnedRootPem, { roles: ['manager'] }),
  });
}
