/**
 * Glue for @grpc/grpc-js without importing it (ca may import only common and api).
 *
 * grpc-js `ServerCredentials.createSsl(..., true)` both requests and requires a client
 * certificate, which would shut out joiners (they call the CA RPCs before they have one), and
 * with `false` it never asks for one. The cluster port therefore uses
 * `grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false)`:
 * request a certificate, let the handshake finish without a valid one, and check the peer in each
 * call with {@link identifyGrpcPeer} (which refuses self-signed, foreign and expired certificates
 * and wrong roles with a permission-denied error the caller sees). {@link NodeCertificateProvider}
 * has the shape of grpc-js's `experimental.CertificateProvider`, and {@link
 * NodeCertificateProvider.update} swaps certificate and key live after a renewal or a role change.
 * Clients use `grpc.experimental.createCertificateProviderChannelCredentials(provider, provider,
 * { checkServerIdentity: nodeServerIdentityCheck(rootPem) })` or `credentials.createSsl` with
 * {@link grpcClientCredentialsArgs}.
 */
import type { PeerCertificate } from 'node:tls';
import type { NodeTlsMaterial } from './tls.js';
import { parseRoots } from './tls.js';
import { UntrustedCertificateError } from './errors.js';
import type { NodeIdentity } from './roles.js';
import { peerCertificateChain, verifyNodeCertificate, type VerifyOptions } from './verify.js';

/** grpc-js `CaCertificateUpdate`. */
export interface CaCertificateUpdate {
  caCertificate: Buffer;
}
/** grpc-js `IdentityCertificateUpdate`. */
export interface IdentityCertificateUpdate {
  certificate: Buffer;
  privateKey: Buffer;
}
type Listener<T> = (update: T | null) => void;

/** A grpc-js `CertificateProvider` fed from memory; `update()` after renewal or promote/demote. */
export class NodeCertificateProvider {
  private ca: CaCertificateUpdate | null = null;
  private identity: IdentityCertificateUpdate | null = null;
  private readonly caListeners = new Set<Listener<CaCertificateUpdate>>();
  private readonly identityListeners = new Set<Listener<IdentityCertificateUpdate>>();

  constructor(material?: NodeTlsMaterial | { rootPem: string }) {
    if (material) this.update(material);
  }

  /** New trust roots and, when given, a new certificate and key; pushed to every listener. */
  update(material: NodeTlsMaterial | { rootPem: string }): void {
    this.ca = { caCertificate: Buffer.from(material.rootPem) };
    for (const l of this.caListeners) l(this.ca);
    if ('certPem' in material) {
      this.identity = {
        certificate: Buffer.from(material.certPem),
        privateKey: Buffer.from(material.key.export({ format: 'pem', type: 'pkcs8' })),
      };
      for (const l of this.identityListeners) l(this.identity);
    }
  }

  addCaCertificateListener(listener: Listener<CaCertificateUpdate>): void {
    this.caListeners.add(listener);
    this.deliverLater(listener, this.caListeners, () => this.ca);
  }
  removeCaCertificateListener(listener: Listener<CaCertificateUpdate>): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: Listener<IdentityCertificateUpdate>): void {
    this.identityListeners.add(listener);
    this.deliverLater(listener, this.identityListeners, () => this.identity);
  }
  removeIdentityCertificateListener(listener: Listener<IdentityCertificateUpdate>): void {
    this.identityListeners.delete(listener);
  }

  /**
   * The current value goes to a new listener on a later tick, as grpc-js's own providers do:
   * grpc-js registers its watcher only after adding the listener, so a synchronous first update
   * would be lost and the server would never get a TLS context.
   */
  private deliverLater<T>(listener: Listener<T>, set: Set<Listener<T>>, current: () => T | null): void {
    setImmediate(() => {
      const value = current();
      if (set.has(listener) && value) listener(value);
    });
  }
}

/**
 * The caller of a grpc-js call, from `call.getAuthContext()`, verified against `rootPem`.
 * grpc-js (1.14) exposes the peer certificate only when the TLS layer verified it, so a missing,
 * self-signed, expired or foreign certificate all arrive here as "none" and get one combined
 * reason; the raw-TLS path (`identifyTlsPeer`) names the exact one, and a refused node can
 * find it by running {@link verifyNodeCertificate} on its own certificate.
 */
export function identifyGrpcPeer(
  authContext: { sslPeerCertificate?: PeerCertificate } | null | undefined,
  rootPem: string,
  opts: VerifyOptions = {},
): NodeIdentity {
  const peer = authContext?.sslPeerCertificate;
  if (!peer?.raw) {
    throw new UntrustedCertificateError(
      'no verified client certificate: the caller sent none, or one that is self-signed, expired, ' +
        'or not issued by the cluster root CA',
    );
  }
  return verifyNodeCertificate(peerCertificateChain(peer), parseRoots(rootPem), opts);
}
