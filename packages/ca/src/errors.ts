/**
 * Typed errors of @shoal/ca. Every class carries a stable `code` (documented in docs/ca.md) and a
 * `kind`; callers and boundaries (gRPC status, CLI) switch on those, never on the message text.
 */
import { ShoalError, type ErrorKind } from '@shoal/common';

/** Base class of every error thrown on purpose by @shoal/ca. */
export class CaError extends ShoalError {
  constructor(code: string, message: string, kind: ErrorKind, options?: { cause?: unknown }) {
    super(code, message, { ...options, kind });
  }
}

/** A join token that is not `SWMTKN-1-<50 base-36 chars>-<25 base-36 chars>`. */
export class InvalidJoinTokenError extends CaError {
  constructor(reason: string) {
    super('CA_INVALID_JOIN_TOKEN', `invalid join token: ${reason}`, 'invalid-argument');
  }
}

/** A well-formed join token that this cluster does not accept (wrong, rotated, other cluster). */
export class JoinTokenRefusedError extends CaError {
  constructor(reason: string) {
    super('CA_JOIN_TOKEN_REFUSED', `join token refused: ${reason}`, 'permission-denied');
  }
}

/** The root CA certificate a manager presented does not have the digest the join token pins. */
export class CaDigestMismatchError extends CaError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super(
      'CA_DIGEST_MISMATCH',
      `the remote root CA does not match the join token (token pins sha256 ${expected}, remote CA has ` +
        `sha256 ${actual}): possible man in the middle, or a token of another cluster`,
      'permission-denied',
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** A peer certificate that is missing, does not chain to the cluster root, or is not a node's. */
export class UntrustedCertificateError extends CaError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('CA_UNTRUSTED_CERTIFICATE', `certificate not trusted: ${reason}`, 'permission-denied', options);
  }
}

/** A peer certificate outside its validity period (expired or not yet valid). */
export class CertificateExpiredError extends CaError {
  readonly notAfter: Date;
  readonly notBefore: Date;
  constructor(subject: string, notBefore: Date, notAfter: Date, now: Date) {
    const expired = now.getTime() > notAfter.getTime();
    super(
      'CA_CERTIFICATE_EXPIRED',
      expired
        ? `certificate of ${subject} expired at ${notAfter.toISOString()} (now ${now.toISOString()})`
        : `certificate of ${subject} is not valid before ${notBefore.toISOString()} (now ${now.toISOString()})`,
      'permission-denied',
    );
    this.notAfter = notAfter;
    this.notBefore = notBefore;
  }
}

/** The peer is authenticated but its role may not do this. */
export class RoleNotAllowedError extends CaError {
  constructor(role: string, allowed: readonly string[]) {
    super(
      'CA_ROLE_NOT_ALLOWED',
      `role ${role} is not allowed here (allowed: ${allowed.join(', ') || 'none'})`,
      'permission-denied',
    );
  }
}

/** A CSR that does not parse, or whose signature does not verify with its own key. */
export class InvalidCsrError extends CaError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('CA_INVALID_CSR', `invalid certificate signing request: ${reason}`, 'invalid-argument', options);
  }
}

/** A CA certificate or key given by the user that cannot serve as the cluster root. */
export class InvalidCaError extends CaError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('CA_INVALID_ROOT', `invalid root CA: ${reason}`, 'invalid-argument', options);
  }
}

/** A certificate expiry outside the allowed range, or another bad issuing parameter. */
export class InvalidCertOptionsError extends CaError {
  constructor(reason: string) {
    super('CA_INVALID_CERT_OPTIONS', reason, 'invalid-argument');
  }
}

/** A PEM file or block that cannot be read. */
export class InvalidPemError extends CaError {
  constructor(where: string, reason: string, options?: { cause?: unknown }) {
    super('CA_INVALID_PEM', `${where}: ${reason}`, 'invalid-argument', options);
  }
}

/** An unlock key that is not `SWMKEY-1-<base64 of 32 bytes>`. */
export class InvalidUnlockKeyError extends CaError {
  constructor(reason: string) {
    super('CA_INVALID_UNLOCK_KEY', `invalid unlock key: ${reason}`, 'invalid-argument');
  }
}

/** A well-formed unlock key that does not open the node's keys. */
export class WrongUnlockKeyError extends CaError {
  constructor(where: string, options?: { cause?: unknown }) {
    super(
      'CA_WRONG_UNLOCK_KEY',
      `the unlock key does not decrypt ${where}: wrong or rotated key`,
      'permission-denied',
      options,
    );
  }
}

/** The node's keys are encrypted (autolock) and no unlock key was given. */
export class NodeLockedError extends CaError {
  constructor(where: string) {
    super(
      'CA_NODE_LOCKED',
      `${where} is encrypted (autolock): unlock the node with its unlock key (shoal swarm unlock)`,
      'failed-precondition',
    );
  }
}

/** Sealed data (WAL record, snapshot, wrapped key) that does not authenticate. */
export class DecryptionFailedError extends CaError {
  constructor(what: string, options?: { cause?: unknown }) {
    super(
      'CA_DECRYPTION_FAILED',
      `cannot decrypt ${what}: data corrupt or sealed with another key`,
      'internal',
      options,
    );
  }
}

/** The node certificate on disk does not belong to the node key on disk (torn write, tampering). */
export class KeyMismatchError extends CaError {
  constructor(where: string) {
    super(
      'CA_KEY_MISMATCH',
      `${where}: the certificate's public key does not match the private key`,
      'failed-precondition',
    );
  }
}
