/**
 * TLS settings for the cluster port (2377): mutual TLS between nodes, and the joiner's first
 * contact before it trusts anything.
 *
 * Node TLS (`tls.createServer`/`tls.connect`/`createSecureContext`) takes the objects below as
 * they are. For @grpc/grpc-js the `grpc*` helpers return the arguments of
 * `ServerCredentials.createSsl(rootCerts, keyCertPairs, checkClientCertificate)` and
 * `credentials.createSsl(rootCerts, privateKey, certChain, verifyOptions)`; grpc-js uses Node's
 * default minimum version, TLS 1.2.
 *
 * The cluster server asks for a client certificate but lets certificate-less clients finish the
 * handshake (`rejectUnauthorized: false`), because joiners call the CA RPCs before they have a
 * certificate; every other call must then pass {@link identifyTlsPeer} /
 * {@link verifyNodeCertificate} with the roles it allows, which refuses self-signed, foreign and
 * expired certificates with a clear permission-denied error the caller sees. `strict: true` makes
 * the TLS layer itself refuse them (for listeners without CA RPCs).
 *
 * Joiner (see docs/ca.md): 1. {@link bootstrapClientTlsOptions}: an unverified connection used
 * only to fetch the root certificate; 2. {@link checkRootAgainstToken}: the root's digest must
 * equal the token's, else CaDigestMismatchError; 3. {@link joinerClientTlsOptions}: a connection
 * that trusts only that root and requires a manager certificate, to send the CSR and the token.
 */
import type { KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import type { ConnectionOptions, PeerCertificate, TlsOptions } from 'node:tls';
import { CaDigestMismatchError, UntrustedCertificateError } from './errors.js';
import { caDigestOfDer, parseJoinToken } from './join-token.js';
import { type NodeRole } from './roles.js';
import { peerCertificateChain, verifyNodeCertificate } from './verify.js';

export const TLS_MIN_VERSION = 'TLSv1.2';

/** What a node needs for mutual TLS. */
export interface NodeTlsMaterial {
  /** The node's certificate, then any intermediates (PEM). */
  readonly certPem: string;
  readonly key: KeyObject;
  /** The cluster root certificate(s) (PEM). */
  readonly rootPem: string;
}

function keyPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Root certificates in a PEM bundle. */
export function parseRoots(rootPem: string): X509Certificate[] {
  const blocks = rootPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/** Server side of the cluster port. */
export function serverTlsOptions(m: NodeTlsMaterial, opts: { strict?: boolean } = {}): TlsOptions {
  return {
    cert: m.certPem,
    key: keyPem(m.key),
    ca: m.rootPem,
    requestCert: true,
    rejectUnauthorized: opts.strict ?? false,
    minVersion: TLS_MIN_VERSION,
  };
}

/**
 * A `checkServerIdentity` that ignores host names (nodes are reached by address) and instead
 * requires the server's certificate to be a node certificate of the cluster with one of `roles`.
 * Node calls it only after the chain verified against `ca`.
 */
export function nodeServerIdentityCheck(
  rootPem: string,
  opts: { roles?: readonly NodeRole[]; clusterId?: string; now?: () => number } = {},
): (host: string, cert: PeerCertificate) => Error | undefined {
  const roots = parseRoots(rootPem);
  return (_host, cert) => {
    try {
      verifyNodeCertificate(peerCertificateChain(cert), roots, {
        roles: opts.roles,
        clusterId: opts.clusterId,
        now: opts.now?.(),
      });
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new UntrustedCertificateError(String(err));
    }
  };
}

/** Client side of mutual TLS from one node to another (default: the server must be a manager). */
export function clientTlsOptions(
  m: NodeTlsMaterial,
  opts: { roles?: readonly NodeRole[]; clusterId?: string } = {},
): ConnectionOptions {
  return {
    cert: m.certPem,
    key: keyPem(m.key),
    ca: m.rootPem,
    rejectUnauthorized: true,
    minVersion: TLS_MIN_VERSION,
    checkServerIdentity: nodeServerIdentityCheck(m.rootPem, {
      roles: opts.roles ?? ['manager'],
      clusterId: opts.clusterId,
    }),
  };
}

/** A joiner's first, unverified connection: use it only to fetch the root certificate. */
export function bootstrapClientTlsOptions(): ConnectionOptions {
  return { rejectUnauthorized: false, minVersion: TLS_MIN_VERSION };
}

/**
 * Pins the CA: `rootPem` (what a manager sent over the bootstrap connection) must have the
 * digest in `token`. Returns the root PEM to trust from now on; throws CaDigestMismatchError.
 */
export function checkRootAgainstToken(rootPem: string, token: string): string {
  const { caDigest } = parseJoinToken(token);
  const roots = parseRoots(rootPem);
  if (roots.length !== 1) {
    throw new UntrustedCertificateError(`the manager sent ${roots.length} root certificates, expected 1`);
  }
  const root = roots[0]!;
  const actual = caDigestOfDer(root.raw);
  if (actual !== caDigest) throw new CaDigestMismatchError(caDigest, actual);
  return root.toString();
}

/** The joiner's second connection: trusts only the pinned root and requires a manager certificate. */
export function joinerClientTlsOptions(pinnedRootPem: string): ConnectionOptions {
  return {
    ca: pinnedRootPem,
    rejectUnauthorized: true,
    minVersion: TLS_MIN_VERSION,
    checkServerIdentity: nodeServerIdentityCheck(pinnedRootPem, { roles: ['manager'] }),
  };
}

/**
 * Arguments of grpc-js `ServerCredentials.createSsl(rootCerts, keyCertPairs, checkClientCertificate)`
 * for a strict listener: grpc-js then requires a client certificate that chains to the root and
 * refuses others in the handshake. Not for the cluster port, where joiners call the CA RPCs
 * without a certificate: that one uses `NodeCertificateProvider` (grpc-certs.ts).
 */
export function grpcServerCredentialsArgs(m: NodeTlsMaterial): {
  rootCerts: Buffer;
  keyCertPairs: { private_key: Buffer; cert_chain: Buffer }[];
  checkClientCertificate: boolean;
} {
  return {
    rootCerts: Buffer.from(m.rootPem),
    keyCertPairs: [{ private_key: Buffer.from(keyPem(m.key)), cert_chain: Buffer.from(m.certPem) }],
    checkClientCertificate: true,
  };
}

/** Arguments of grpc-js `credentials.createSsl(rootCerts, privateKey, certChain, verifyOptions)`. */
export function grpcClientCredentialsArgs(
  m: NodeTlsMaterial,
  opts: { roles?: readonly NodeRole[]; clusterId?: string } = {},
): {
  rootCerts: Buffer;
  privateKey: Buffer;
  certChain: Buffer;
  verifyOptions: { checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined };
} {
  return {
    rootCerts: Buffer.from(m.rootPem),
    privateKey: Buffer.from(keyPem(m.key)),
    certChain: Buffer.from(m.certPem),
    verifyOptions: {
      checkServerIdentity: nodeServerIdentityCheck(m.rootPem, {
        roles: opts.roles ?? ['manager'],
        clusterId: opts.clusterId,
      }),
    },
  };
}
