/**
 * Key pairs and the bridge between Node's KeyObject (TLS, storage) and WebCrypto's CryptoKey
 * (what @peculiar/x509 signs with). Node keys are ECDSA P-256, as SwarmKit's; an external root
 * may also be ECDSA P-384 or RSA.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, webcrypto } from 'node:crypto';
import { InvalidCaError } from './errors.js';

export type CryptoKey = webcrypto.CryptoKey;

/** WebCrypto algorithm parameters for signing with a key. */
export interface SigningParams {
  /** For importing the key into WebCrypto. */
  readonly importAlgorithm: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  /** For signing certificates with it. */
  readonly signingAlgorithm: webcrypto.EcdsaParams | webcrypto.Algorithm;
}

/** A new ECDSA P-256 private key. */
export function generateNodeKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

/** PKCS#8 PEM of a private key. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function privateKeyFromPem(pem: string | Buffer): KeyObject {
  return createPrivateKey(pem);
}

/** SubjectPublicKeyInfo DER of a private or public key. */
export function spkiDer(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ format: 'der', type: 'spki' });
}

/** How to sign with `key`: ECDSA P-256 (SHA-256), P-384 (SHA-384) or RSA PKCS#1 v1.5 (SHA-256). */
export function signingParams(key: KeyObject): SigningParams {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') {
      return {
        importAlgorithm: { name: 'ECDSA', namedCurve: 'P-256' },
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      };
    }
    if (curve === 'secp384r1' || curve === 'P-384') {
      return {
        importAlgorithm: { name: 'ECDSA', namedCurve: 'P-384' },
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
      };
    }
    throw new InvalidCaError(`unsupported EC curve ${curve ?? 'unknown'} (use P-256 or P-384)`);
  }
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new InvalidCaError(`RSA key of ${bits} bits is too short (at least 2048)`);
    return {
      importAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' },
    };
  }
  throw new InvalidCaError(`unsupported key type ${type ?? 'unknown'} (use ECDSA P-256/P-384 or RSA)`);
}

/** The private key as a WebCrypto signing key. */
export async function toSigningKey(key: KeyObject): Promise<CryptoKey> {
  const { importAlgorithm } = signingParams(key);
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return webcrypto.subtle.importKey('pkcs8', der, importAlgorithm, false, ['sign']);
}

/** The public half of `key` as a WebCrypto verify key (what a certificate embeds). */
export async function toPublicCryptoKey(key: KeyObject): Promise<CryptoKey> {
  const { importAlgorithm } = signingParams(key);
  return webcrypto.subtle.importKey('spki', spkiDer(key), importAlgorithm, true, ['verify']);
}

/** A WebCrypto key pair for @peculiar/x509 generators (CSR signing). */
export async function toCryptoKeyPair(key: KeyObject): Promise<webcrypto.CryptoKeyPair> {
  return { privateKey: await toSigningKey(key), publicKey: await toPublicCryptoKey(key) };
}
