/**
 * Certificate signing requests (PKCS#10). A node makes one with its own key; the CA verifies its
 * signature and takes only the public key from it: the identity (node ID, role, cluster) is the
 * CA's decision, never the requested subject.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { InvalidCsrError } from './errors.js';
import { spkiDer, toCryptoKeyPair, signingParams } from './keys.js';
import { x509 } from './x509.js';

/** A CSR for `key`; `subject` is informational (e.g. `CN=<node id>` when renewing). */
export async function createCsr(key: KeyObject, subject = ''): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys: await toCryptoKeyPair(key),
    signingAlgorithm: signingParams(key).signingAlgorithm,
  });
  return csr.toString('pem');
}

/** What a verified CSR gives the CA. */
export interface VerifiedCsr {
  /** The requester's public key (ECDSA P-256). */
  readonly publicKey: KeyObject;
  /** The subject the requester asked for, for logs only. */
  readonly requestedSubject: string;
}

/** Parses a CSR, checks its self-signature and that its key is ECDSA P-256. */
export async function verifyCsr(csrPem: string): Promise<VerifiedCsr> {
  let csr: InstanceType<typeof x509.Pkcs10CertificateRequest>;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new InvalidCsrError('it does not parse as PKCS#10 (PEM or DER)', { cause: err });
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (err) {
    throw new InvalidCsrError('its public key cannot be read', { cause: err });
  }
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  if (publicKey.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'P-256')) {
    throw new InvalidCsrError(
      `node keys must be ECDSA P-256, got ${publicKey.asymmetricKeyType ?? '?'} ${curve ?? ''}`.trim(),
    );
  }
  let ok: boolean;
  try {
    ok = await csr.verify();
  } catch (err) {
    throw new InvalidCsrError('its signature cannot be checked', { cause: err });
  }
  if (!ok) throw new InvalidCsrError('its signature does not verify with its own public key');
  return { publicKey, requestedSubject: csr.subject };
}

export { spkiDer };
