/**
 * Snapshot files: `<dir>/<term 16-hex>-<index 16-hex>.snap`, each
 *
 *   magic "SHSN" | u16 version | u16 reserved | u64 term | u64 index | ConfState | u32 len | data | u32 CRC-32
 *
 * where data passes through the RecordCipher seam and the CRC covers every byte before it.
 * Written atomically: `.tmp`, fsync, rename, fsync the directory. Loading takes the newest file
 * that verifies and that the caller accepts (it has a WAL marker); a file that fails to verify is
 * renamed `.broken` and the next older one is tried.
 */
import { readFileSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type Logger, silentLogger, fsyncDir, fsyncDirSync } from '@shoal/common';
import type { Snapshot } from '../core/types.js';
import { BinaryReader, BinaryWriter } from '../codec/binary.js';
import { readConfState, writeConfState } from '../codec/message-codec.js';
import { SnapshotCorruptError, StorageFatalError } from '../errors.js';
import { identityCipher, type RecordCipher } from '../wal/record.js';

const MAGIC = 0x4e534853; // "SHSN"
const VERSION = 1;
const SNAP_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function snapshotFileName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

export function encodeSnapshotFile(s: Snapshot, cipher: RecordCipher = identityCipher): Buffer {
  const data = cipher.seal(s.data);
  const w = new BinaryWriter(64 + data.byteLength)
    .u32(MAGIC)
    .u16(VERSION)
    .u16(0)
    .u64(s.metadata.term)
    .u64(s.metadata.index);
  writeConfState(w, s.metadata.confState);
  w.bytes(data);
  const body = w.finish();
  const out = Buffer.allocUnsafe(body.length + 4);
  body.copy(out);
  out.writeUInt32LE(crc32(body), body.length);
  return out;
}

export function decodeSnapshotFile(file: string, buf: Buffer, cipher: RecordCipher = identityCipher): Snapshot {
  if (buf.length < 32) throw new SnapshotCorruptError(file, `only ${buf.length} bytes`);
  const body = buf.subarray(0, buf.length - 4);
  if (crc32(body) !== buf.readUInt32LE(buf.length - 4)) throw new SnapshotCorruptError(file, 'checksum mismatch');
  try {
    const r = new BinaryReader(body, `snapshot ${file}`);
    if (r.u32() !== MAGIC) throw new Error('bad magic');
    const version = r.u16();
    if (version !== VERSION) throw new Error(`unsupported version ${version}`);
    r.u16();
    const term = r.u64();
    const index = r.u64();
    const confState = readConfState(r);
    const data = cipher.open(r.bytes());
    r.done();
    return { metadata: { term, index, confState }, data };
  } catch (err) {
    throw new SnapshotCorruptError(file, (err as Error).message);
  }
}

export interface SnapshotterOptions {
  readonly cipher?: RecordCipher;
  readonly logger?: Logger;
}

export class Snapshotter {
  private readonly cipher: RecordCipher;
  private readonly log: Logger;

  constructor(
    readonly dir: string,
    opts: SnapshotterOptions = {},
  ) {
    this.cipher = opts.cipher ?? identityCipher;
    this.log = opts.logger ?? silentLogger();
  }

  /**
   * Writes `s` atomically and durably (tmp, fsync, rename, fsync dir) without blocking the event
   * loop. I/O errors are fatal (StorageFatalError).
   */
  async save(s: Snapshot): Promise<void> {
    const name = snapshotFileName(s.metadata.term, s.metadata.index);
    const tmp = join(this.dir, `${name}.tmp`);
    const buf = encodeSnapshotFile(s, this.cipher);
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        for (let done = 0; done < buf.length;) {
          done += (await fh.write(buf, done, buf.length - done, done)).bytesWritten;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(this.dir, name));
      await fsyncDir(this.dir);
    } catch (err) {
      throw new StorageFatalError(join(this.dir, name), 'snapshot write', { cause: err });
    }
  }

  /** Snapshot file names, newest (highest index, then term) first. */
  list(): { name: string; term: number; index: number }[] {
    const out: { name: string; term: number; index: number }[] = [];
    for (const name of readdirSync(this.dir)) {
      if (name.endsWith('.snap.tmp')) {
        unlinkSync(join(this.dir, name));
        continue;
      }
      const m = SNAP_RE.exec(name);
      if (m) out.push({ name, term: parseInt(m[1]!, 16), index: parseInt(m[2]!, 16) });
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /**
   * The newest snapshot that verifies and that `accept(term, index)` allows (e.g. has a WAL
   * marker), or undefined. Files failing verification are renamed `<name>.broken`.
   */
  loadNewest(accept: (term: number, index: number) => boolean = () => true): Snapshot | undefined {
    for (const f of this.list()) {
      if (!accept(f.term, f.index)) continue;
      const path = join(this.dir, f.name);
      try {
        const s = decodeSnapshotFile(f.name, readFileSync(path), this.cipher);
        if (s.metadata.term !== f.term || s.metadata.index !== f.index) {
          throw new SnapshotCorruptError(f.name, 'contents do not match the file name');
        }
        return s;
      } catch (err) {
        if (!(err instanceof SnapshotCorruptError)) throw err;
        this.log.error({ file: f.name, err: err.message }, 'broken snapshot renamed; falling back to an older one');
        renameSync(path, `${path}.broken`);
        fsyncDirSync(this.dir);
      }
    }
    return undefined;
  }

  /** Deletes all but the newest `keep` snapshot files. */
  purge(keep: number): void {
    const files = this.list();
    let removed = false;
    for (const f of files.slice(keep)) {
      unlinkSync(join(this.dir, f.name));
      removed = true;
    }
    if (removed) fsyncDirSync(this.dir);
  }
}
