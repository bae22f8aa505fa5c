/**
 * Autolock keys and sealing. Formats (all ours unless said):
 *
 * - Unlock key, shown to the user: `SWMKEY-1-<base64 of 32 random bytes>` (as Docker; padding
 *   optional when parsing).
 * - KEK: HKDF-SHA256 of the unlock key's 32 bytes with a random 16-byte salt per sealed value and
 *   the info string `shoal kek v1 <purpose>`; the unlock key is already full entropy, so no slow KDF.
 * - Envelope (a wrapped DEK or node key): `'SHLK' | u8 version 1 | salt[16] | nonce[12] |
 *   AES-256-GCM ciphertext | tag[16]`, with the purpose as additional authenticated data so a
 *   wrapped DEK cannot be passed off as a wrapped key.
 * - Record cipher (Raft WAL records and snapshots, sealed with the DEK): `u8 version 1 |
 *   nonce[12] | AES-256-GCM ciphertext | tag[16]`, random nonces. At 2^32 records per DEK the
 *   random-nonce collision bound calls for a new DEK (the DEK rotation seam).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { DecryptionFailedError, InvalidUnlockKeyError, WrongUnlockKeyError } from './errors.js';

export const UNLOCK_KEY_PREFIX = 'SWMKEY-1-';
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ENVELOPE_MAGIC = Buffer.from('SHLK', 'latin1');
const ENVELOPE_VERSION = 1;
const RECORD_VERSION = 1;

/** The 32 bytes behind an unlock key. Keep it in memory only; print it with {@link formatUnlockKey}. */
export class UnlockKey {
  private constructor(readonly bytes: Buffer) {}

  static generate(): UnlockKey {
    return new UnlockKey(randomBytes(KEY_BYTES));
  }

  /** Parses `SWMKEY-1-<base64>`; the error never echoes the key. */
  static parse(text: string): UnlockKey {
    const t = text.trim();
    if (!t.startsWith(UNLOCK_KEY_PREFIX)) throw new InvalidUnlockKeyError(`it must start with ${UNLOCK_KEY_PREFIX}`);
    const b64 = t.slice(UNLOCK_KEY_PREFIX.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new InvalidUnlockKeyError('the part after the prefix is not base64');
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length !== KEY_BYTES) {
      throw new InvalidUnlockKeyError(`it must encode ${KEY_BYTES} bytes, got ${bytes.length}`);
    }
    return new UnlockKey(bytes);
  }

  format(): string {
    return UNLOCK_KEY_PREFIX + this.bytes.toString('base64').replace(/=+$/, '');
  }

  equals(other: UnlockKey): boolean {
    return this.bytes.equals(other.bytes);
  }
}

export function formatUnlockKey(key: UnlockKey): string {
  return key.format();
}

function deriveKek(unlock: UnlockKey, salt: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', unlock.bytes, salt, `shoal kek v1 ${purpose}`, KEY_BYTES));
}

/** Seals `plain` under a KEK derived from `unlock`; `purpose` is bound as associated data. */
export function sealWithUnlockKey(unlock: UnlockKey, plain: Uint8Array, purpose: string): Buffer {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', deriveKek(unlock, salt, purpose), nonce);
  c.setAAD(Buffer.from(purpose, 'utf8'));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([ENVELOPE_MAGIC, Buffer.of(ENVELOPE_VERSION), salt, nonce, body, c.getAuthTag()]);
}

/** Opens an envelope from {@link sealWithUnlockKey}; `WrongUnlockKeyError` if it does not authenticate. */
export function openWithUnlockKey(unlock: UnlockKey, sealed: Uint8Array, purpose: string): Buffer {
  const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const head = ENVELOPE_MAGIC.length + 1;
  if (b.length < head + SALT_BYTES + NONCE_BYTES + TAG_BYTES || !b.subarray(0, 4).equals(ENVELOPE_MAGIC)) {
    throw new DecryptionFailedError(`${purpose} (not a Shoal key envelope)`);
  }
  if (b[4] !== ENVELOPE_VERSION) throw new DecryptionFailedError(`${purpose} (envelope version ${b[4]})`);
  const salt = b.subarray(head, head + SALT_BYTES);
  const nonce = b.subarray(head + SALT_BYTES, head + SALT_BYTES + NONCE_BYTES);
  const body = b.subarray(head + SALT_BYTES + NONCE_BYTES, b.length - TAG_BYTES);
  const d = createDecipheriv('aes-256-gcm', deriveKek(unlock, salt, purpose), nonce);
  d.setAAD(Buffer.from(purpose, 'utf8'));
  d.setAuthTag(b.subarray(b.length - TAG_BYTES));
  try {
    return Buffer.concat([d.update(body), d.final()]);
  } catch (err) {
    // GCM authentication failure is the only error final() throws here: the key is wrong.
    throw new WrongUnlockKeyError(purpose, { cause: err });
  }
}

/** A new 32-byte data-encryption key for the Raft WAL and snapshots. */
export function generateDek(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** Wraps a DEK with the unlock key (for storage beside the node key while autolocked). */
export function wrapDek(unlock: UnlockKey, dek: Uint8Array): Buffer {
  return sealWithUnlockKey(unlock, dek, 'raft DEK');
}

export function unwrapDek(unlock: UnlockKey, wrapped: Uint8Array): Buffer {
  const dek = openWithUnlockKey(unlock, wrapped, 'raft DEK');
  if (dek.length !== KEY_BYTES) throw new DecryptionFailedError('raft DEK (wrong length)');
  return dek;
}

/** Re-wraps a DEK from the old unlock key to a new one (unlock-key rotation). */
export function rewrapDek(oldKey: UnlockKey, newKey: UnlockKey, wrapped: Uint8Array): Buffer {
  return wrapDek(newKey, unwrapDek(oldKey, wrapped));
}

/**
 * Seals and opens records at rest. Structurally the same as `RecordCipher` in
 * `@shoal/raft` (`packages/raft/src/wal/record.ts`: `seal(plain: Uint8Array): Uint8Array;
 * open(sealed: Uint8Array): Uint8Array`, `open` throwing when the bytes do not authenticate), so a
 * {@link DekCipher} can be passed as the WAL's and snapshotter's `cipher` without ca importing
 * raft (the layers allow ca -> common, api only).
 */
export interface RecordCipherLike {
  seal(plain: Uint8Array): Uint8Array;
  open(sealed: Uint8Array): Uint8Array;
}

/** AES-256-GCM with random 96-bit nonces under one DEK. Synchronous, as the WAL needs. */
export class DekCipher implements RecordCipherLike {
  private readonly key: Buffer;
  constructor(dek: Uint8Array) {
    if (dek.length !== KEY_BYTES) throw new RangeError(`a DEK is ${KEY_BYTES} bytes, got ${dek.length}`);
    this.key = Buffer.from(dek);
  }

  seal(plain: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key, nonce);
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([Buffer.of(RECORD_VERSION), nonce, body, c.getAuthTag()]);
  }

  open(sealed: Uint8Array): Uint8Array {
    const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (b.length < 1 + NONCE_BYTES + TAG_BYTES) throw new DecryptionFailedError('record (too short)');
    if (b[0] !== RECORD_VERSION) throw new DecryptionFailedError(`record (unknown version ${b[0]})`);
    const d = createDecipheriv('aes-256-gcm', this.key, b.subarray(1, 1 + NONCE_BYTES));
    d.setAuthTag(b.subarray(b.length - TAG_BYTES));
    try {
      return Buffer.concat([d.update(b.subarray(1 + NONCE_BYTES, b.length - TAG_BYTES)), d.final()]);
    } catch (err) {
      throw new DecryptionFailedError('record', { cause: err });
    }
  }
}
