/**
 * Snapshot files: `<dir>/<term 16-hex>-<index 16-hex>.snap`, each
 *
 *   magic "SHSN" | u16 version 2 | u16 reserved | u64 term | u64 index | u32 len | ConfState
 *   | (u32 len | chunk)* | u32 0 | u32 CRC-32
 *
 * where each chunk passes through the RecordCipher seam on its own and the CRC covers every byte
 * before it. Files are written and read as streams, chunk by chunk: a snapshot is never held in
 * memory as one buffer. Writing is atomic: `.tmp`, fsync, rename, fsync the directory. A file
 * received from a peer lands as `.recv`, is verified and fsynced, then renamed into place.
 * Loading takes the newest file that verifies and that the caller accepts (it has a WAL marker);
 * a file that fails to verify is renamed `.broken` and the next older one is tried.
 */
import { readdirSync, unlinkSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type Logger, silentLogger, fsyncDir, fsyncDirSync, ignoreErrno } from '@shoal/common';
import type { Snapshot, SnapshotMetadata } from '../core/types.js';
import { BinaryReader, BinaryWriter } from '../codec/binary.js';
import { readConfState, writeConfState } from '../codec/message-codec.js';
import { SnapshotCorruptError, StorageFatalError } from '../errors.js';
import { identityCipher, type RecordCipher } from '../wal/record.js';
import type { SnapshotReceiver } from '../driver/snapshot-stream.js';

const MAGIC = 0x4e534853; // "SHSN"
const VERSION = 2;
const SNAP_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
/** Bytes gathered before one write() call, and read per read() call. */
const IO_BLOCK = 4 * 1024 * 1024;
/**
 * A snapshot file is fdatasync'ed every this many bytes while it is written: dirty pages never
 * pile up, so the WAL's fsyncs (which on ext4 may have to flush other files' data first) stay short.
 */
const SYNC_EVERY = 16 * 1024 * 1024;
/** Chunk size when a whole-buffer snapshot is saved. */
const SPLIT = 1024 * 1024;

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function snapshotFileName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

function headerBytes(meta: SnapshotMetadata): Buffer {
  const conf = new BinaryWriter(128);
  writeConfState(conf, meta.confState);
  const cb = conf.finish();
  return new BinaryWriter(32 + cb.length)
    .u32(MAGIC)
    .u16(VERSION)
    .u16(0)
    .u64(meta.term)
    .u64(meta.index)
    .bytes(cb)
    .finish();
}

/** Splits a whole-state buffer into chunks (views, no copies). */
function* split(data: Uint8Array): Generator<Uint8Array> {
  for (let at = 0; at < data.byteLength; at += SPLIT) yield data.subarray(at, Math.min(data.byteLength, at + SPLIT));
}

/** Sequential reads of a file with a running CRC over everything handed out. */
class FileReader {
  private block: Buffer = Buffer.alloc(0);
  private pos = 0;
  private eof = false;
  crc = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly file: string,
  ) {}

  private async fill(): Promise<void> {
    const buf = Buffer.allocUnsafe(IO_BLOCK);
    const { bytesRead } = await this.fh.read(buf, 0, IO_BLOCK, null);
    if (bytesRead === 0) this.eof = true;
    this.block = buf.subarray(0, bytesRead);
    this.pos = 0;
  }

  /** Exactly n bytes (a view when they lie in one block), or SnapshotCorruptError at EOF. */
  async take(n: number, crc = true): Promise<Buffer> {
    let out: Buffer;
    if (this.pos + n <= this.block.length) {
      out = this.block.subarray(this.pos, this.pos + n);
      this.pos += n;
    } else {
      out = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        if (this.pos >= this.block.length) {
          if (this.eof) throw new SnapshotCorruptError(this.file, `truncated (wanted ${n} more bytes)`);
          await this.fill();
          continue;
        }
        const k = Math.min(n - got, this.block.length - this.pos);
        this.block.copy(out, got, this.pos, this.pos + k);
        this.pos += k;
        got += k;
      }
    }
    if (crc) this.crc = crc32(out, this.crc);
    return out;
  }

  async atEnd(): Promise<boolean> {
    if (this.pos < this.block.length) return false;
    if (!this.eof) await this.fill();
    return this.pos >= this.block.length;
  }
}

/** Buffered sequential writes with a running CRC. */
class FileWriter {
  private parts: Uint8Array[] = [];
  private size = 0;
  crc = 0;
  written = 0;
  private synced = 0;

  constructor(private readonly fh: FileHandle) {}

  async write(b: Uint8Array, crc = true): Promise<void> {
    if (crc) this.crc = crc32(b, this.crc);
    this.parts.push(b);
    this.size += b.byteLength;
    if (this.size >= IO_BLOCK) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const parts = this.parts;
    this.parts = [];
    this.size = 0;
    // writev without copying the parts into one buffer; loops on short writes.
    let pending = parts;
    while (pending.length > 0) {
      const { bytesWritten } = await this.fh.writev(pending);
      this.written += bytesWritten;
      let skip = bytesWritten;
      const rest: Uint8Array[] = [];
      for (const p of pending) {
        if (skip >= p.byteLength) skip -= p.byteLength;
        else {
          rest.push(skip > 0 ? p.subarray(skip) : p);
          skip = 0;
        }
      }
      pending = rest;
    }
    if (this.written - this.synced >= SYNC_EVERY) {
      await this.fh.datasync();
      this.synced = this.written;
    }
  }
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

export interface SnapshotterOptions {
  readonly cipher?: RecordCipher;
  readonly logger?: Logger;
}

export class Snapshotter {
  private readonly cipher: RecordCipher;
  /** Verified received files waiting for installReceived, by snapshot file name. */
  private readonly received = new Map<string, string>();
  private recvSeq = 0;
  private readonly log: Logger;

  constructor(
    readonly dir: string,
    opts: SnapshotterOptions = {},
  ) {
    this.cipher = opts.cipher ?? identityCipher;
    this.log = opts.logger ?? silentLogger();
  }

  /**
   * Writes a snapshot from chunks, pulled one at a time, atomically and durably (tmp, fsync,
   * rename, fsync dir), yielding to the event loop at every write. I/O errors are fatal
   * (StorageFatalError); errors thrown by the chunk source propagate after the tmp file is removed.
   */
  async saveChunks(meta: SnapshotMetadata, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    const name = snapshotFileName(meta.term, meta.index);
    await this.writeFile(join(this.dir, `${name}.tmp`), meta, chunks, this.cipher);
    try {
      await rename(join(this.dir, `${name}.tmp`), join(this.dir, name));
      await fsyncDir(this.dir);
    } catch (err) {
      throw new StorageFatalError(join(this.dir, name), 'snapshot rename', { cause: err });
    }
  }

  /** Writes a snapshot file at `path` (tmp, fsync) with its chunks sealed by `cipher`. */
  private async writeFile(
    path: string,
    meta: SnapshotMetadata,
    chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    cipher: RecordCipher,
  ): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'w', 0o600);
    } catch (err) {
      throw new StorageFatalError(path, 'snapshot create', { cause: err });
    }
    let sourceError: Error | undefined;
    try {
      const w = new FileWriter(fh);
      await w.write(headerBytes(meta));
      try {
        for await (const c of chunks) {
          if (c.byteLength === 0) continue;
          const sealed = cipher.seal(c);
          await w.write(u32(sealed.byteLength));
          await w.write(sealed);
        }
      } catch (err) {
        sourceError = err instanceof Error ? err : new Error(String(err));
        throw sourceError;
      }
      await w.write(u32(0));
      await w.write(u32(w.crc), false);
      await w.flush();
      await fh.sync();
      await fh.close();
    } catch (err) {
      await fh.close().catch(ignoreErrno('EBADF'));
      await unlink(path).catch(ignoreErrno('ENOENT'));
      if (sourceError !== undefined) throw sourceError;
      throw new StorageFatalError(path, 'snapshot write', { cause: err });
    }
  }

  /** Writes a whole-buffer snapshot (split into chunks). */
  save(s: Snapshot): Promise<void> {
    return this.saveChunks(s.metadata, split(s.data));
  }

  /**
   * The data chunks of the stored snapshot (term, index), as written; the CRC is checked at the
   * end (SnapshotCorruptError), so a consumer must treat what it built as void if that throws.
   */
  readChunks(term: number, index: number): AsyncGenerator<Uint8Array> {
    const name = snapshotFileName(term, index);
    return this.readChunksOf(join(this.dir, name), name, this.cipher);
  }

  private async *readChunksOf(path: string, name: string, cipher: RecordCipher): AsyncGenerator<Uint8Array> {
    const fh = await open(path, 'r');
    try {
      const r = new FileReader(fh, name);
      await this.readHeader(r, name);
      for (;;) {
        const len = (await r.take(4)).readUInt32LE(0);
        if (len === 0) break;
        const sealed = await r.take(len);
        let plain: Uint8Array;
        try {
          plain = cipher.open(sealed);
        } catch (err) {
          throw new SnapshotCorruptError(name, `chunk does not open: ${(err as Error).message}`);
        }
        yield plain;
      }
      const want = r.crc;
      const got = (await r.take(4, false)).readUInt32LE(0);
      if (got !== want) throw new SnapshotCorruptError(name, 'checksum mismatch');
      if (!(await r.atEnd())) throw new SnapshotCorruptError(name, 'trailing bytes');
    } finally {
      await fh.close();
    }
  }

  /** Reads the whole data into one buffer (tests and small state machines only). */
  async readData(term: number, index: number): Promise<Buffer> {
    const parts: Uint8Array[] = [];
    for await (const c of this.readChunks(term, index)) parts.push(c);
    return Buffer.concat(parts);
  }

  private async readHeader(r: FileReader, name: string): Promise<SnapshotMetadata> {
    const fixed = await r.take(24);
    if (fixed.readUInt32LE(0) !== MAGIC) throw new SnapshotCorruptError(name, 'bad magic');
    const version = fixed.readUInt16LE(4);
    if (version !== VERSION) throw new SnapshotCorruptError(name, `unsupported version ${version}`);
    const hr = new BinaryReader(fixed, `snapshot ${name}`, 8);
    const term = hr.u64();
    const index = hr.u64();
    const confLen = (await r.take(4)).readUInt32LE(0);
    if (confLen > 1 << 24) throw new SnapshotCorruptError(name, `conf state of ${confLen} bytes`);
    const cr = new BinaryReader(await r.take(confLen), `snapshot ${name} conf state`);
    let conf: SnapshotMetadata['confState'];
    try {
      conf = readConfState(cr);
      cr.done();
    } catch (err) {
      throw new SnapshotCorruptError(name, `bad conf state: ${(err as Error).message}`);
    }
    if (term <= 0 && index <= 0) throw new SnapshotCorruptError(name, 'empty snapshot metadata');
    return { term, index, confState: conf };
  }

  /** Streams the whole file once, checking its CRC; returns its metadata. */
  async verify(term: number, index: number): Promise<SnapshotMetadata> {
    const name = snapshotFileName(term, index);
    const fh = await open(join(this.dir, name), 'r');
    try {
      return await this.verifyOpen(fh, name);
    } finally {
      await fh.close();
    }
  }

  private async verifyOpen(fh: FileHandle, name: string): Promise<SnapshotMetadata> {
    const r = new FileReader(fh, name);
    const meta = await this.readHeader(r, name);
    for (;;) {
      const len = (await r.take(4)).readUInt32LE(0);
      if (len === 0) break;
      await r.take(len);
    }
    const want = r.crc;
    if ((await r.take(4, false)).readUInt32LE(0) !== want) throw new SnapshotCorruptError(name, 'checksum mismatch');
    if (!(await r.atEnd())) throw new SnapshotCorruptError(name, 'trailing bytes');
    return meta;
  }

  /**
   * The stored snapshot (term, index) in its transfer form, in blocks, to send to a peer: the
   * same file format with every chunk in plaintext (each node seals its files with its own key;
   * the connection between managers is what protects the bytes in flight). Without encryption at
   * rest this is the file as stored.
   */
  async *readFile(term: number, index: number, blockSize = 1024 * 1024): AsyncGenerator<Uint8Array> {
    if (this.cipher === identityCipher) {
      yield* this.rawBlocks(join(this.dir, snapshotFileName(term, index)), blockSize);
      return;
    }
    const meta = await this.readMeta(term, index);
    let crc = 0;
    const counted = (b: Uint8Array): Uint8Array => {
      crc = crc32(b, crc);
      return b;
    };
    yield counted(headerBytes(meta));
    for await (const plain of this.readChunks(term, index)) {
      yield counted(u32(plain.byteLength));
      yield counted(plain);
    }
    yield counted(u32(0));
    yield u32(crc);
  }

  private async *rawBlocks(path: string, blockSize: number): AsyncGenerator<Uint8Array> {
    const fh = await open(path, 'r');
    try {
      for (;;) {
        const buf = Buffer.allocUnsafe(blockSize);
        const { bytesRead } = await fh.read(buf, 0, blockSize, null);
        if (bytesRead === 0) return;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  /** Starts receiving the raw file of snapshot (term, index) from a peer. */
  receive(term: number, index: number): SnapshotReceiver {
    const name = snapshotFileName(term, index);
    const path = join(this.dir, `${name}.${++this.recvSeq}.recv`);
    const opened = open(path, 'w', 0o600);
    let closed = false;
    let unsynced = 0;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await (await opened).close();
    };
    return {
      write: async (block) => {
        const fh = await opened;
        for (let done = 0; done < block.byteLength;) {
          done += (await fh.write(block, done, block.byteLength - done)).bytesWritten;
        }
        unsynced += block.byteLength;
        if (unsynced >= SYNC_EVERY) {
          await fh.datasync();
          unsynced = 0;
        }
      },
      finish: async () => {
        const fh = await opened;
        await fh.sync();
        await close();
        const v = await open(path, 'r');
        try {
          const meta = await this.verifyOpen(v, `${name}.recv`);
          if (meta.term !== term || meta.index !== index) {
            throw new SnapshotCorruptError(`${name}.recv`, 'contents do not match the announced snapshot');
          }
        } finally {
          await v.close();
        }
        let installable = path;
        if (this.cipher !== identityCipher) {
          // Re-seal the plaintext transfer form with this node's key.
          installable = `${path}.sealed.recv`;
          const meta = await this.readMetaOf(path, `${name}.recv`);
          await this.writeFile(installable, meta, this.readChunksOf(path, `${name}.recv`, identityCipher), this.cipher);
          await unlink(path).catch(ignoreErrno('ENOENT'));
        }
        const older = this.received.get(name);
        if (older !== undefined && older !== installable) await unlink(older).catch(ignoreErrno('ENOENT'));
        this.received.set(name, installable);
      },
      abort: async () => {
        await close().catch(ignoreErrno('EBADF'));
        await unlink(path).catch(ignoreErrno('ENOENT'));
      },
    };
  }

  /** True if a verified received file for (term, index) waits to be installed. */
  async installReceived(term: number, index: number): Promise<boolean> {
    const name = snapshotFileName(term, index);
    const path = this.received.get(name);
    if (path === undefined) return false;
    this.received.delete(name);
    try {
      await rename(path, join(this.dir, name));
    } catch (err) {
      throw new StorageFatalError(join(this.dir, name), 'snapshot install', { cause: err });
    }
    await fsyncDir(this.dir);
    return true;
  }

  /** Removes leftovers of interrupted writes and receives (call at open only). */
  cleanTemp(): void {
    let removed = false;
    for (const name of readdirSync(this.dir)) {
      if (name.endsWith('.snap.tmp') || name.endsWith('.recv')) {
        unlinkSync(join(this.dir, name));
        removed = true;
      }
    }
    if (removed) fsyncDirSync(this.dir);
  }

  /** Snapshot file names, newest (highest index, then term) first. */
  list(): { name: string; term: number; index: number }[] {
    const out: { name: string; term: number; index: number }[] = [];
    for (const name of readdirSync(this.dir)) {
      const m = SNAP_RE.exec(name);
      if (m) out.push({ name, term: parseInt(m[1]!, 16), index: parseInt(m[2]!, 16) });
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /** Reads only the header of a stored snapshot (no CRC check: `readChunks` checks it at the end). */
  async readMeta(term: number, index: number): Promise<SnapshotMetadata> {
    const name = snapshotFileName(term, index);
    return this.readMetaOf(join(this.dir, name), name);
  }

  private async readMetaOf(path: string, name: string): Promise<SnapshotMetadata> {
    const fh = await open(path, 'r');
    try {
      return await this.readHeader(new FileReader(fh, name), name);
    } finally {
      await fh.close();
    }
  }

  /** Renames a snapshot that failed verification to `<name>.broken`, so that the next boot skips it. */
  async markBroken(term: number, index: number, reason: string): Promise<void> {
    const name = snapshotFileName(term, index);
    const path = join(this.dir, name);
    this.log.error({ file: name, err: reason }, 'broken snapshot renamed; the next start falls back to an older one');
    await rename(path, `${path}.broken`).catch(ignoreErrno('ENOENT'));
    await fsyncDir(this.dir);
  }

  /**
   * The metadata of the newest snapshot that verifies (streamed, never loaded whole) and that
   * `accept(term, index)` allows (e.g. has a WAL marker), or undefined. Files failing
   * verification are renamed `<name>.broken`. With `verify: false` only the header is checked
   * (one pass over the data less at boot); the CRC is then checked by `readChunks`.
   */
  async loadNewestMeta(
    accept: (term: number, index: number) => boolean = () => true,
    opts: { verify?: boolean } = {},
  ): Promise<SnapshotMetadata | undefined> {
    for (const f of this.list()) {
      if (!accept(f.term, f.index)) continue;
      const path = join(this.dir, f.name);
      try {
        const meta = opts.verify === false ? await this.readMeta(f.term, f.index) : await this.verify(f.term, f.index);
        if (meta.term !== f.term || meta.index !== f.index) {
          throw new SnapshotCorruptError(f.name, 'contents do not match the file name');
        }
        return meta;
      } catch (err) {
        if (!(err instanceof SnapshotCorruptError)) throw err;
        this.log.error({ file: f.name, err: err.message }, 'broken snapshot renamed; falling back to an older one');
        await rename(path, `${path}.broken`);
        await fsyncDir(this.dir);
      }
    }
    return undefined;
  }

  /** As loadNewestMeta, with the data read into one buffer (tests and small state machines). */
  async loadNewest(accept?: (term: number, index: number) => boolean): Promise<Snapshot | undefined> {
    const meta = await this.loadNewestMeta(accept);
    if (meta === undefined) return undefined;
    return { metadata: meta, data: await this.readData(meta.term, meta.index) };
  }

  /** Deletes all but the newest `keep` snapshot files (asynchronously: big files take a while to free). */
  async purge(keep: number): Promise<void> {
    const files = this.list();
    let removed = false;
    for (const f of files.slice(keep)) {
      await unlink(join(this.dir, f.name)).catch(ignoreErrno('ENOENT'));
      removed = true;
    }
    if (removed) await fsyncDir(this.dir);
  }
}
