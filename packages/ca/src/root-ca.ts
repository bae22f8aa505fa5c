/**
 * The cluster root CA: created self-signed at `swarm init` (ECDSA P-256, 20 years, as SwarmKit),
 * or loaded from a certificate and key the user gives (validated: a CA, able to sign certificates,
 * in its validity period, and the key matches). It signs node certificates from CSRs.
 *
 * Root rotation seam: verifiers take a list of trusted roots and a chain, not one root; a
 * rotation would add the new root to `trustedRoots()` and hand out certificates chained through a
 * cross-signed intermediate (`RootCA.issuerChainPem`) until every node trusts the new root.
 */
import { type KeyObject, X509Certificate, randomBytes } from 'node:crypto';
import { newObjectId } from '@shoal/common';
import { verifyCsr } from './csr.js';
import { InvalidCaError, InvalidCertOptionsError } from './errors.js';
import { caDigestOfDer } from './join-token.js';
import {
  generateNodeKey,
  privateKeyFromPem,
  privateKeyToPem,
  signingParams,
  spkiDer,
  toPublicCryptoKey,
  toSigningKey,
} from './keys.js';
import { CA_DNS_NAME, type NodeIdentity, type NodeRole, roleToOu } from './roles.js';
import { identityOf } from './verify.js';
import { x509 } from './x509.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** Root validity, as SwarmKit's: 20 years. */
export const ROOT_CA_VALIDITY_MS = 20 * 365 * DAY;
/** Default node certificate validity: 90 days (`--cert-expiry`). */
export const DEFAULT_NODE_CERT_EXPIRY_MS = 90 * DAY;
/** Shortest allowed node certificate validity: 1 hour, as Docker. */
export const MIN_NODE_CERT_EXPIRY_MS = HOUR;
/** Node certificates start this much before issue, to tolerate clock skew between nodes. */
export const NODE_CERT_BACKDATE_MS = HOUR;
/** Subject CN of a root this package creates. */
export const ROOT_CA_CN = 'swarm-ca';

/** A node certificate as issued. */
export interface IssuedCertificate {
  /** Leaf, then any intermediates up to (not including) the root. */
  readonly certPem: string;
  readonly identity: NodeIdentity;
}

/** What the CA decides for a certificate; the CSR's own subject is ignored. */
export interface IssueOptions {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly clusterId: string;
  /** Validity in ms; default 90 days, at least 1 hour. */
  readonly expiryMs?: number;
  /** Issue time (ms since epoch); default now. */
  readonly now?: number;
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive INTEGER
  if (b[0] === 0) b[0] = 1; // no leading zero byte: DER stays 16 bytes
  return b.toString('hex');
}

/** Checks a node certificate expiry (ms) the user asked for. */
export function checkCertExpiry(expiryMs: number): number {
  if (!Number.isFinite(expiryMs) || expiryMs < MIN_NODE_CERT_EXPIRY_MS) {
    throw new InvalidCertOptionsError(
      `node certificate expiry must be at least 1h (${MIN_NODE_CERT_EXPIRY_MS} ms), got ${expiryMs} ms`,
    );
  }
  if (expiryMs > ROOT_CA_VALIDITY_MS) {
    throw new InvalidCertOptionsError(`node certificate expiry must be at most 20 years, got ${expiryMs} ms`);
  }
  return expiryMs;
}

export class RootCA {
  /** The root certificate (Node's parser). */
  readonly cert: X509Certificate;
  /** The root as PEM. */
  readonly certPem: string;
  /** The digest join tokens carry: SHA-256 of the DER in base 36, 50 characters. */
  readonly digest: string;

  private constructor(
    cert: X509Certificate,
    private readonly key: KeyObject | undefined,
  ) {
    this.cert = cert;
    this.certPem = cert.toString();
    this.digest = caDigestOfDer(cert.raw);
  }

  /** A new self-signed root with a new ECDSA P-256 key. */
  static async create(opts: { now?: number; validityMs?: number } = {}): Promise<RootCA> {
    const now = opts.now ?? Date.now();
    const key = generateNodeKey();
    const publicKey = await toPublicCryptoKey(key);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: `CN=${ROOT_CA_CN}`,
      notBefore: new Date(now - NODE_CERT_BACKDATE_MS),
      notAfter: new Date(now + (opts.validityMs ?? ROOT_CA_VALIDITY_MS)),
      keys: { privateKey: await toSigningKey(key), publicKey },
      signingAlgorithm: signingParams(key).signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
    return new RootCA(new X509Certificate(cert.toString('pem')), key);
  }

  /**
   * Loads a root from PEM. With `keyPem` (an external CA the user gives, or the cluster's own from
   * the store) the result can sign; without, it can only be trusted. Validates it is usable.
   */
  static fromPem(certPem: string, keyPem?: string, opts: { now?: number } = {}): RootCA {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch (err) {
      throw new InvalidCaError('the certificate does not parse as X.509 PEM', { cause: err });
    }
    const name = cert.subject.replace(/\n/g, ',');
    if (!cert.ca) throw new InvalidCaError(`${name} is not a CA certificate (basicConstraints CA:FALSE or missing)`);
    const now = opts.now ?? Date.now();
    if (now > new Date(cert.validTo).getTime()) throw new InvalidCaError(`${name} expired at ${cert.validTo}`);
    if (now < new Date(cert.validFrom).getTime())
      throw new InvalidCaError(`${name} is not valid before ${cert.validFrom}`);
    if (!(cert.checkIssued(cert) && cert.verify(cert.publicKey))) {
      throw new InvalidCaError(`${name} is not self-signed: give the root of the chain`);
    }
    const usage = keyUsageOf(certPem);
    if (usage !== undefined && (usage & x509.KeyUsageFlags.keyCertSign) === 0) {
      throw new InvalidCaError(`${name} has a key usage without keyCertSign`);
    }
    let key: KeyObject | undefined;
    if (keyPem !== undefined) {
      try {
        key = privateKeyFromPem(keyPem);
      } catch (err) {
        throw new InvalidCaError('the CA key does not parse as a PEM private key', { cause: err });
      }
      signingParams(key);
      if (!spkiDer(key).equals(spkiDer(cert.publicKey))) {
        throw new InvalidCaError(`the CA key does not match the public key of ${name}`);
      }
    }
    return new RootCA(cert, key);
  }

  /** True if this node holds the root key (a manager of a cluster with an internal CA). */
  get canSign(): boolean {
    return this.key !== undefined;
  }

  /** The root key as PKCS#8 PEM, to store in the cluster object (Raft, encrypted at rest). */
  keyPem(): string {
    if (!this.key) throw new InvalidCaError('this root CA has no private key');
    return privateKeyToPem(this.key);
  }

  /** Roots a verifier must accept now (one today; two during a future root rotation). */
  trustedRoots(): X509Certificate[] {
    return [this.cert];
  }

  /** PEM bundle of {@link trustedRoots}, for the `ca` of TLS contexts. */
  trustBundlePem(): string {
    return this.trustedRoots()
      .map((c) => c.toString())
      .join('');
  }

  /** Certificates between the root and a leaf, sent after the leaf (none today; rotation seam). */
  issuerChainPem(): string {
    return '';
  }

  /**
   * Issues a node certificate for the key in `csrPem`: subject CN=node ID, OU=role, O=cluster ID;
   * DNS names role OU, node ID (and swarm-ca for managers); server and client auth.
   * Reissue on promote/demote is the same call with the new role.
   */
  async issue(csrPem: string, opts: IssueOptions): Promise<IssuedCertificate> {
    if (!this.key) throw new InvalidCaError('this root CA has no private key and cannot sign');
    if (!/^[0-9a-z]{1,64}$/.test(opts.nodeId))
      throw new InvalidCertOptionsError(`bad node ID ${JSON.stringify(opts.nodeId)}`);
    if (!/^[0-9a-z]{1,64}$/.test(opts.clusterId)) {
      throw new InvalidCertOptionsError(`bad cluster ID ${JSON.stringify(opts.clusterId)}`);
    }
    const expiry = checkCertExpiry(opts.expiryMs ?? DEFAULT_NODE_CERT_EXPIRY_MS);
    const { publicKey } = await verifyCsr(csrPem);
    const now = opts.now ?? Date.now();
    const rootNotAfter = new Date(this.cert.validTo).getTime();
    const notAfter = Math.min(now + expiry, rootNotAfter);
    const ou = roleToOu(opts.role);
    const dnsNames = [ou, opts.nodeId, ...(opts.role === 'manager' ? [CA_DNS_NAME] : [])];
    const subjectKey = await toPublicCryptoKey(publicKey);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: [{ O: [opts.clusterId] }, { OU: [ou] }, { CN: [opts.nodeId] }],
      issuer: issuerName(this.certPem),
      notBefore: new Date(now - NODE_CERT_BACKDATE_MS),
      notAfter: new Date(notAfter),
      publicKey: subjectKey,
      signingKey: await toSigningKey(this.key),
      signingAlgorithm: signingParams(this.key).signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: 'dns' as const, value }))),
        await x509.SubjectKeyIdentifierExtension.create(subjectKey),
        await x509.AuthorityKeyIdentifierExtension.create(await toPublicCryptoKey(this.key)),
      ],
    });
    const pem = cert.toString('pem') + '\n' + this.issuerChainPem();
    return { certPem: pem, identity: identityOf(new X509Certificate(pem)) };
  }
}

/** The issuer Name of certificates signed by the root in `certPem`: its exact subject (DER). */
function issuerName(certPem: string): InstanceType<typeof x509.Name> {
  return new x509.X509Certificate(certPem).subjectName;
}

function keyUsageOf(certPem: string): number | undefined {
  const ext = new x509.X509Certificate(certPem).getExtension(x509.KeyUsagesExtension);
  return ext ? ext.usages : undefined;
}

/** A new node ID as SwarmKit makes them: 25 random base-36 characters. */
export function newNodeId(): string {
  return newObjectId();
}

/** A new cluster ID (same form as node IDs). */
export function newClusterId(): string {
  return newObjectId();
}
