import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { experimental, type ServerCredentials } from '@grpc/grpc-js';

/** PEM (or DER) material of a TLS identity and the roots it trusts. */
export interface TlsMaterial {
  /** Root CA certificate(s), PEM. */
  ca: Buffer;
  /** This node's certificate chain, PEM. */
  cert: Buffer;
  /** This node's private key, PEM. */
  key: Buffer;
}

/**
 * gRPC server credentials on one port for every caller: the server asks for a client
 * certificate but lets callers without one connect (joining nodes call the anonymous CA RPCs).
 * Node's TLS has no "verify if given" mode, so the certificate a client presents is NOT checked
 * by the handshake: the role resolver must accept it only through verifiedPeerCertificate.
 */
export function serverCredentialsWithOptionalClientCert(material: TlsMaterial): ServerCredentials {
  // Updates are delivered on a microtask: grpc-js registers its own watcher only after adding
  // these listeners, so a synchronous update would be lost and every connection dropped.
  const provider: experimental.CertificateProvider = {
    addCaCertificateListener: (listener) => queueMicrotask(() => listener({ caCertificate: material.ca })),
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (listener) =>
      queueMicrotask(() => listener({ certificate: material.cert, privateKey: material.key })),
    removeIdentityCertificateListener: () => undefined,
  };
  // grpc-js names the first parameter caCertificateProvider but uses it as the identity; the
  // same provider gives both, so the order does not matter here.
  return experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/**
 * The client's certificate when it was issued by one of `roots` and is valid at `now`;
 * undefined when there is none or it is self-signed, expired, not yet valid, or from another CA.
 */
export function verifiedPeerCertificate(
  peer: PeerCertificate | undefined,
  roots: readonly X509Certificate[],
  now: Date = new Date(),
): X509Certificate | undefined {
  if (!peer?.raw || peer.raw.length === 0) return undefined;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(peer.raw);
  } catch (err) {
    if (err instanceof Error) return undefined; // not a certificate at all
    throw err;
  }
  const t = now.getTime();
  const valid = (c: X509Certificate): boolean => Date.parse(c.validFrom) <= t && t <= Date.parse(c.validTo);
  if (!valid(leaf)) return undefined;
  for (const root of roots) {
    if (valid(root) && leaf.checkIssued(root) && leaf.verify(root.publicKey)) return leaf;
  }
  return undefined;
}
