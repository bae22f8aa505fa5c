/**
 * Join tokens shaped like Docker's: `SWMTKN-1-<digest>-<secret>`, where digest is the SHA-256 of
 * the root CA certificate (DER) in base 36, padded to 50 characters, and secret is 16 random
 * bytes in base 36 padded to 25. The digest lets a joiner pin the CA over its first, untrusted
 * connection; the secret says which role the joiner gets. Each role has its own token.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isBase36, toBase36 } from './base36.js';
import { InvalidJoinTokenError, JoinTokenRefusedError } from './errors.js';
import type { NodeRole } from './roles.js';

export const JOIN_TOKEN_PREFIX = 'SWMTKN';
export const JOIN_TOKEN_VERSION = '1';
export const CA_DIGEST_LENGTH = 50;
export const TOKEN_SECRET_LENGTH = 25;
const SECRET_BYTES = 16;

/** The parts of a join token. */
export interface ParsedJoinToken {
  /** SHA-256 of the root CA certificate's DER, base 36, 50 characters. */
  readonly caDigest: string;
  /** 25 base-36 characters. */
  readonly secret: string;
}

/** The digest a join token carries for a root certificate given as DER bytes. */
export function caDigestOfDer(der: Uint8Array): string {
  return toBase36(createHash('sha256').update(der).digest(), CA_DIGEST_LENGTH);
}

/** A new random token secret (128 bits). */
export function newTokenSecret(): string {
  return toBase36(randomBytes(SECRET_BYTES), TOKEN_SECRET_LENGTH);
}

export function formatJoinToken(caDigest: string, secret: string): string {
  return `${JOIN_TOKEN_PREFIX}-${JOIN_TOKEN_VERSION}-${caDigest}-${secret}`;
}

/** Parses a token; the error says which part is wrong, never echoing the secret. */
export function parseJoinToken(token: string): ParsedJoinToken {
  const t = token.trim();
  const parts = t.split('-');
  if (parts[0] !== JOIN_TOKEN_PREFIX) {
    throw new InvalidJoinTokenError(`it must start with ${JOIN_TOKEN_PREFIX}-${JOIN_TOKEN_VERSION}-`);
  }
  if (parts.length !== 4) {
    throw new InvalidJoinTokenError(
      `expected 4 dash-separated parts ${JOIN_TOKEN_PREFIX}-${JOIN_TOKEN_VERSION}-<ca digest>-<secret>, got ${parts.length}`,
    );
  }
  const [, version, caDigest, secret] = parts as [string, string, string, string];
  if (version !== JOIN_TOKEN_VERSION) {
    throw new InvalidJoinTokenError(
      `unsupported version ${JSON.stringify(version)} (this node knows ${JOIN_TOKEN_VERSION})`,
    );
  }
  if (caDigest.length !== CA_DIGEST_LENGTH || !isBase36(caDigest)) {
    throw new InvalidJoinTokenError(
      `the CA digest must be ${CA_DIGEST_LENGTH} base-36 characters [0-9a-z], got ${caDigest.length} characters`,
    );
  }
  if (secret.length !== TOKEN_SECRET_LENGTH || !isBase36(secret)) {
    throw new InvalidJoinTokenError(
      `the secret must be ${TOKEN_SECRET_LENGTH} base-36 characters [0-9a-z], got ${secret.length} characters`,
    );
  }
  return { caDigest, secret };
}

/** The cluster's two join tokens. Store them in the cluster object; rotate with {@link rotateJoinTokens}. */
export interface JoinTokens {
  readonly worker: string;
  readonly manager: string;
}

/** Fresh tokens for both roles (distinct secrets) bound to the root with `caDigest`. */
export function newJoinTokens(caDigest: string): JoinTokens {
  return {
    worker: formatJoinToken(caDigest, newTokenSecret()),
    manager: formatJoinToken(caDigest, newTokenSecret()),
  };
}

/** New secrets for the roles in `roles` (default both); the others keep their token. */
export function rotateJoinTokens(
  current: JoinTokens,
  caDigest: string,
  roles: readonly NodeRole[] = ['worker', 'manager'],
): JoinTokens {
  return {
    worker: roles.includes('worker') ? formatJoinToken(caDigest, newTokenSecret()) : current.worker,
    manager: roles.includes('manager') ? formatJoinToken(caDigest, newTokenSecret()) : current.manager,
  };
}

function secretEquals(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'latin1');
  const bb = Buffer.from(b, 'latin1');
  // Both are fixed 25-byte strings once parsed; compare in constant time.
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/**
 * The role a presented token grants, or throws. Checks the form, that the token names this
 * cluster's current root (`caDigest`), and compares the secret with both roles' secrets in
 * constant time (both comparisons always run).
 */
export function roleForJoinToken(presented: string, tokens: JoinTokens, caDigest: string): NodeRole {
  const p = parseJoinToken(presented);
  if (p.caDigest !== caDigest) {
    throw new JoinTokenRefusedError(
      'the token was made for another root CA (another cluster, or before a CA rotation)',
    );
  }
  const worker = parseJoinToken(tokens.worker);
  const manager = parseJoinToken(tokens.manager);
  const isWorker = secretEquals(p.secret, worker.secret);
  const isManager = secretEquals(p.secret, manager.secret);
  if (isManager) return 'manager';
  if (isWorker) return 'worker';
  throw new JoinTokenRefusedError('the secret matches no current token (wrong or rotated token)');
}

/**
 * Checks a token for a join that asks for `wanted` role. A worker token never grants the manager
 * role; a manager token may be used to join as a worker only when asked explicitly.
 */
export function checkJoinToken(presented: string, tokens: JoinTokens, caDigest: string, wanted?: NodeRole): NodeRole {
  const role = roleForJoinToken(presented, tokens, caDigest);
  if (wanted === 'manager' && role !== 'manager') {
    throw new JoinTokenRefusedError('a worker token cannot join as a manager: use the manager token');
  }
  return wanted ?? role;
}
