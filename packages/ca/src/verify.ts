/**
 * Verification of a node certificate presented by a peer: the chain leads to a trusted root,
 * every certificate on it is within its validity, and the leaf names a node (CN), a role (OU)
 * and a cluster (O). Uses Node's X509Certificate (OpenSSL) for the signature checks.
 */
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import { CertificateExpiredError, RoleNotAllowedError, UntrustedCertificateError } from './errors.js';
import { type NodeIdentity, type NodeRole, ouToRole } from './roles.js';

/** Longest chain accepted from a peer (leaf, intermediates from root rotation, ...). */
const MAX_CHAIN = 4;

export interface VerifyOptions {
  /** The instant to check validity at (ms since epoch); default now. */
  readonly now?: number;
  /** Refuse certificates of another cluster. */
  readonly clusterId?: string;
  /** Refuse roles not listed (e.g. ['manager'] for manager-only RPCs). */
  readonly roles?: readonly NodeRole[];
}

/** Parses `CN=..\nOU=..\nO=..` (Node's subject format) into attribute -> values. */
export function subjectAttributes(subject: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const k = line.slice(0, eq);
    const list = out.get(k) ?? [];
    list.push(line.slice(eq + 1));
    out.set(k, list);
  }
  return out;
}

function single(attrs: Map<string, string[]>, name: string, what: string): string {
  const v = attrs.get(name);
  const first = v?.[0];
  if (v?.length !== 1 || first === undefined || first === '') {
    throw new UntrustedCertificateError(`the certificate subject must carry exactly one ${name} (${what})`);
  }
  return first;
}

function isSelfSigned(c: X509Certificate): boolean {
  return c.checkIssued(c) && c.verify(c.publicKey);
}

function checkValidity(c: X509Certificate, now: number, who: string): void {
  const notBefore = new Date(c.validFrom);
  const notAfter = new Date(c.validTo);
  if (now < notBefore.getTime() || now > notAfter.getTime()) {
    throw new CertificateExpiredError(who, notBefore, notAfter, new Date(now));
  }
}

/** The identity in a node certificate's subject, without checking trust. */
export function identityOf(cert: X509Certificate): NodeIdentity {
  const attrs = subjectAttributes(cert.subject);
  const nodeId = single(attrs, 'CN', 'node ID');
  const ou = single(attrs, 'OU', 'role');
  const clusterId = single(attrs, 'O', 'cluster ID');
  const role = ouToRole(ou);
  if (role === undefined) throw new UntrustedCertificateError(`unknown role OU=${ou} in certificate of ${nodeId}`);
  return {
    nodeId,
    role,
    clusterId,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serial: cert.serialNumber.toLowerCase(),
  };
}

/**
 * Verifies `chain` (leaf first, then intermediates) against `roots` and returns the leaf's
 * identity. Throws UntrustedCertificateError (no chain to a root, self-signed, not a node
 * certificate, other cluster), CertificateExpiredError or RoleNotAllowedError; all have kind
 * `permission-denied`.
 */
export function verifyNodeCertificate(
  chain: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  opts: VerifyOptions = {},
): NodeIdentity {
  const now = opts.now ?? Date.now();
  const leaf = chain[0];
  if (leaf === undefined) throw new UntrustedCertificateError('no certificate presented');
  const leafName = leaf.subject.replace(/\n/g, ',');
  if (leaf.ca) throw new UntrustedCertificateError(`${leafName} is a CA certificate, not a node certificate`);
  // Walk up from the leaf until a trusted root signed the current certificate.
  let current = leaf;
  for (let depth = 0; ; depth++) {
    if (depth >= MAX_CHAIN) throw new UntrustedCertificateError(`chain of ${leafName} is longer than ${MAX_CHAIN}`);
    const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root) {
      checkValidity(root, now, `the root CA ${root.subject.replace(/\n/g, ',')}`);
      break;
    }
    if (isSelfSigned(current)) {
      throw new UntrustedCertificateError(
        current === leaf
          ? `${leafName} is self-signed, not issued by the cluster root CA`
          : `${leafName} chains to a self-signed CA that is not the cluster root`,
      );
    }
    const parent = chain.slice(1).find((c) => c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (!parent) {
      throw new UntrustedCertificateError(
        `${leafName} was not issued by the cluster root CA (issuer ${current.issuer.replace(/\n/g, ',')})`,
      );
    }
    checkValidity(parent, now, `intermediate CA ${parent.subject.replace(/\n/g, ',')}`);
    current = parent;
  }
  checkValidity(leaf, now, leafName);
  const id = identityOf(leaf);
  if (opts.clusterId !== undefined && id.clusterId !== opts.clusterId) {
    throw new UntrustedCertificateError(`node ${id.nodeId} belongs to cluster ${id.clusterId}, not ${opts.clusterId}`);
  }
  if (opts.roles && !opts.roles.includes(id.role)) throw new RoleNotAllowedError(id.role, opts.roles);
  return id;
}

/** Leaf-first certificates of a peer certificate from `getPeerCertificate(true)` or grpc-js's auth context. */
export function peerCertificateChain(peer: PeerCertificate | DetailedPeerCertificate | undefined): X509Certificate[] {
  const out: X509Certificate[] = [];
  let p: PeerCertificate | DetailedPeerCertificate | undefined = peer;
  const seen = new Set<unknown>();
  while (p?.raw && p.raw.length > 0 && !seen.has(p) && out.length < MAX_CHAIN + 1) {
    seen.add(p);
    out.push(new X509Certificate(p.raw));
    const next: DetailedPeerCertificate | undefined = 'issuerCertificate' in p ? p.issuerCertificate : undefined;
    if (next === p) break;
    p = next;
  }
  return out;
}

/**
 * The identity of the peer on a TLS socket (server side: the client's certificate), verified with
 * {@link verifyNodeCertificate}. Works whether the TLS layer rejected unauthorized peers or let
 * them through for per-call checks (the cluster port must accept certificate-less joiners).
 */
export function identifyTlsPeer(
  socket: TLSSocket,
  roots: readonly X509Certificate[],
  opts: VerifyOptions = {},
): NodeIdentity {
  const peer = socket.getPeerCertificate(true);
  if (!peer || Object.keys(peer).length === 0) {
    throw new UntrustedCertificateError('the peer presented no certificate');
  }
  return verifyNodeCertificate(peerCertificateChain(peer), roots, opts);
}
