/**
 * A node's TLS material on disk, in a directory made 0700:
 *
 * - `root.crt`: the cluster root certificate(s) this node trusts (PEM, 0644);
 * - `node.crt`: the node's certificate, then any intermediates (PEM, 0644);
 * - `node.key`: the node's private key and its Raft DEK (0600), one of
 *   - `PRIVATE KEY` (PKCS#8) with header `Shoal-Raft-DEK: <base64 DEK>` when not autolocked;
 *   - `SHOAL ENCRYPTED PRIVATE KEY` when autolocked: headers `Shoal-Key-Encryption: SHLK-1` and
 *     `Shoal-Raft-DEK: <base64 envelope of the DEK>`, body the envelope of the PKCS#8 DER (both
 *     envelopes sealed with the unlock key, see autolock.ts).
 *
 * The DEK lives in the key file (as SwarmKit's does) so that key, DEK and their encryption change
 * in one atomic rename. Every write is atomic (tmp + fsync + rename + fsync dir). The certificate is
 * written after the key; a reader checks that they match, so a crash between the two is detected.
 */
import { readFile } from 'node:fs/promises';
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { ensurePrivateDir, writeFileAtomic } from './atomic-file.js';
import { openWithUnlockKey, sealWithUnlockKey, type UnlockKey, unwrapDek, wrapDek } from './autolock.js';
import { InvalidPemError, KeyMismatchError, NodeLockedError } from './errors.js';
import { spkiDer } from './keys.js';
import { decodePemBlocks, encodePem } from './pem.js';

export const KEY_FILE = 'node.key';
export const CERT_FILE = 'node.crt';
export const ROOT_FILE = 'root.crt';
export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;
export const DIR_MODE = 0o700;

const PLAIN_TYPE = 'PRIVATE KEY';
const LOCKED_TYPE = 'SHOAL ENCRYPTED PRIVATE KEY';
const DEK_HEADER = 'Shoal-Raft-DEK';
const ENC_HEADER = 'Shoal-Key-Encryption';
const ENC_VALUE = 'SHLK-1';
const KEY_PURPOSE = 'node key';

/** What the key file holds once opened. */
export interface NodeKeyMaterial {
  readonly key: KeyObject;
  /** The Raft data-encryption key, if the node has one (managers). */
  readonly dek?: Buffer;
}

/** Encodes a key file: locked when `unlock` is given. */
export function encodeKeyFile(material: NodeKeyMaterial, unlock?: UnlockKey): string {
  const pkcs8 = material.key.export({ format: 'der', type: 'pkcs8' });
  const headers = new Map<string, string>();
  if (unlock === undefined) {
    if (material.dek) headers.set(DEK_HEADER, material.dek.toString('base64'));
    return encodePem(PLAIN_TYPE, pkcs8, headers);
  }
  headers.set(ENC_HEADER, ENC_VALUE);
  if (material.dek) headers.set(DEK_HEADER, wrapDek(unlock, material.dek).toString('base64'));
  return encodePem(LOCKED_TYPE, sealWithUnlockKey(unlock, pkcs8, KEY_PURPOSE), headers);
}

/** True if the key file text is autolocked. */
export function isLockedKeyFile(text: string, where = KEY_FILE): boolean {
  return decodeKeyBlock(text, where).type === LOCKED_TYPE;
}

function decodeKeyBlock(text: string, where: string) {
  const blocks = decodePemBlocks(text, where).filter((b) => b.type === PLAIN_TYPE || b.type === LOCKED_TYPE);
  if (blocks.length !== 1) {
    throw new InvalidPemError(where, `expected one ${PLAIN_TYPE} or ${LOCKED_TYPE} block, found ${blocks.length}`);
  }
  return blocks[0]!;
}

/** Decodes a key file; a locked one needs `unlock` (else NodeLockedError, or WrongUnlockKeyError). */
export function decodeKeyFile(text: string, unlock?: UnlockKey, where = KEY_FILE): NodeKeyMaterial {
  const block = decodeKeyBlock(text, where);
  const dekText = block.headers.get(DEK_HEADER);
  if (block.type === PLAIN_TYPE) {
    const key = parseKey(block.der, where);
    return dekText === undefined ? { key } : { key, dek: Buffer.from(dekText, 'base64') };
  }
  if (block.headers.get(ENC_HEADER) !== ENC_VALUE) {
    throw new InvalidPemError(where, `unknown ${ENC_HEADER} ${JSON.stringify(block.headers.get(ENC_HEADER))}`);
  }
  if (unlock === undefined) throw new NodeLockedError(where);
  const key = parseKey(openWithUnlockKey(unlock, block.der, KEY_PURPOSE), where);
  return dekText === undefined ? { key } : { key, dek: unwrapDek(unlock, Buffer.from(dekText, 'base64')) };
}

function parseKey(der: Buffer, where: string): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new InvalidPemError(where, 'not a PKCS#8 private key', { cause: err });
  }
}

/** The TLS material of one node, in one directory. */
export class NodeKeyStore {
  readonly keyPath: string;
  readonly certPath: string;
  readonly rootPath: string;

  constructor(readonly dir: string) {
    this.keyPath = join(dir, KEY_FILE);
    this.certPath = join(dir, CERT_FILE);
    this.rootPath = join(dir, ROOT_FILE);
  }

  async writeRoot(rootPem: string): Promise<void> {
    await ensurePrivateDir(this.dir, DIR_MODE);
    await writeFileAtomic(this.rootPath, rootPem, CERT_MODE);
  }

  async readRoot(): Promise<string> {
    return readFile(this.rootPath, 'utf8');
  }

  /** Writes key (+DEK) then certificate; the key is sealed with `unlock` when given. */
  async write(certPem: string, material: NodeKeyMaterial, unlock?: UnlockKey): Promise<void> {
    await ensurePrivateDir(this.dir, DIR_MODE);
    checkMatch(certPem, material.key, this.certPath);
    await writeFileAtomic(this.keyPath, encodeKeyFile(material, unlock), KEY_MODE);
    await writeFileAtomic(this.certPath, certPem, CERT_MODE);
  }

  /** Reads certificate, key and DEK; checks the certificate belongs to the key. */
  async read(unlock?: UnlockKey): Promise<{ certPem: string } & NodeKeyMaterial> {
    const [keyText, certPem] = await Promise.all([readFile(this.keyPath, 'utf8'), readFile(this.certPath, 'utf8')]);
    const material = decodeKeyFile(keyText, unlock, this.keyPath);
    checkMatch(certPem, material.key, this.certPath);
    return { certPem, ...material };
  }

  /** True if node.key exists and is autolocked. */
  async isLocked(): Promise<boolean> {
    try {
      return isLockedKeyFile(await readFile(this.keyPath, 'utf8'), this.keyPath);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Re-encrypts the key file from `from` to `to` in one atomic write: lock (undefined -> key),
   * unlock for good (key -> undefined) or rotate the unlock key (old -> new). The DEK keeps its value.
   */
  async reencrypt(from: UnlockKey | undefined, to: UnlockKey | undefined): Promise<void> {
    const material = decodeKeyFile(await readFile(this.keyPath, 'utf8'), from, this.keyPath);
    await writeFileAtomic(this.keyPath, encodeKeyFile(material, to), KEY_MODE);
  }

  /** Replaces the DEK (DEK rotation seam), keeping key and lock state. */
  async writeDek(dek: Buffer, unlock?: UnlockKey): Promise<void> {
    const material = decodeKeyFile(await readFile(this.keyPath, 'utf8'), unlock, this.keyPath);
    await writeFileAtomic(this.keyPath, encodeKeyFile({ key: material.key, dek }, unlock), KEY_MODE);
  }
}

function checkMatch(certPem: string, key: KeyObject, where: string): void {
  const cert = new X509Certificate(certPem);
  if (!spkiDer(cert.publicKey).equals(spkiDer(key))) throw new KeyMismatchError(where);
}
