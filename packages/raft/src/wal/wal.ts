/**
 * Segmented write-ahead log of framed, chain-checksummed records (see record.ts).
 *
 * Layout: `<dir>/<seq 16-hex>-<firstIndex 16-hex>.wal`, each segment preallocated (zero-filled
 * `.tmp`, fsync, rename, fsync dir) and starting with a header record, the current hard state and
 * the last snapshot marker, so that older segments can be purged freely. One save() is one write
 * plus one fdatasync (none when `sync` is false). Recovery truncates a torn tail of the last
 * segment and refuses to start (WalCorruptError naming file and offset) on any other damage.
 */
import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { constants } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { type Logger, silentLogger, fsyncDir, fsyncDirSync, ignoreErrno } from '@shoal/common';
import type { Entry, HardState } from '../core/types.js';
import { EMPTY_HARD_STATE } from '../core/util.js';
import { BinaryReader, BinaryWriter } from '../codec/binary.js';
import { decodeEntry, decodeHardState, encodeEntry, encodeHardState } from '../codec/message-codec.js';
import { RaftDecodeError, StorageFatalError, WalCorruptError } from '../errors.js';
import { DirLock } from './lock.js';
import {
  identityCipher,
  parseRecord,
  RecordType,
  recordSize,
  validRecordFollows,
  writeRecord,
  type RecordCipher,
  type RecordTypeCode,
} from './record.js';

const SEGMENT_MAGIC = 0x4c574853; // "SHWL"
const SEGMENT_VERSION = 1;
export const DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024;
const DSYNC_FLAGS = constants.O_RDWR | constants.O_DSYNC;

export interface WalOptions {
  /** Preallocated segment size in bytes (default 64 MiB). */
  readonly segmentSize?: number;
  readonly cipher?: RecordCipher;
  readonly logger?: Logger;
  /** Written into segment headers for forensics. */
  readonly nodeId?: string;
}

/** A snapshot marker: a snapshot at (term, index) was durably written before this point. */
export interface SnapshotRef {
  readonly term: number;
  readonly index: number;
}

/** What a WAL holds after recovery. */
export interface WalState {
  readonly hardState: HardState;
  /** Entries in log order after applying "an entry at i voids earlier records at >= i". */
  readonly entries: Entry[];
  /** Every snapshot marker found (the last one is the newest). */
  readonly markers: SnapshotRef[];
  /** Set when a torn tail was cut off: the file and offset where the log now ends. */
  readonly truncatedAt?: { file: string; offset: number };
}

interface SegmentInfo {
  readonly seq: number;
  readonly firstIndex: number;
  readonly name: string;
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

function segmentName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

const SEGMENT_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

/** Appends `e` with the rule "an entry at index i voids entries at >= i"; a gap restarts the list. */
function pushEntry(list: Entry[], e: Entry): void {
  const first = list[0]?.index ?? 0;
  const last = list.length === 0 ? 0 : list[list.length - 1]!.index;
  if (list.length === 0 || e.index === last + 1) list.push(e);
  else if (e.index > last + 1 || e.index < first) {
    list.length = 0;
    list.push(e);
  } else {
    list.length = e.index - first;
    list.push(e);
  }
}

export class Wal {
  private segments: SegmentInfo[];
  private fh: FileHandle | undefined;
  /** The same segment opened O_DSYNC: a synced batch is one write (one thread-pool trip, no separate fdatasync). */
  private dsync: FileHandle | undefined;
  private offset: number;
  private crc: number;
  private lastIndex: number;
  private hardState: HardState;
  private lastMarker: SnapshotRef | undefined;
  /** The next segment being preallocated; never rejects (a failure is reported at the next cut). */
  private nextTmp: Promise<{ path: string } | { error: unknown }> | undefined;
  private queue: Promise<void> = Promise.resolve();
  private failed: Error | undefined;
  private closed = false;
  private readonly segmentSize: number;
  private readonly cipher: RecordCipher;
  private readonly log: Logger;

  private constructor(
    readonly dir: string,
    private readonly lock: DirLock,
    opts: WalOptions,
    init: {
      segments: SegmentInfo[];
      offset: number;
      crc: number;
      lastIndex: number;
      hardState: HardState;
      lastMarker: SnapshotRef | undefined;
    },
  ) {
    this.segmentSize = opts.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.cipher = opts.cipher ?? identityCipher;
    this.log = opts.logger ?? silentLogger();
    this.nodeId = opts.nodeId ?? '';
    this.segments = init.segments;
    this.offset = init.offset;
    this.crc = init.crc;
    this.lastIndex = init.lastIndex;
    this.hardState = init.hardState;
    this.lastMarker = init.lastMarker;
  }
  private readonly nodeId: string;

  /**
   * Opens (creating if empty) the WAL in `dir`, which must exist. Takes the directory lock,
   * recovers the contents, truncates a torn tail, and returns the WAL ready for appends.
   * Throws WalCorruptError, StorageLockedError.
   */
  static async open(dir: string, opts: WalOptions = {}): Promise<{ wal: Wal; state: WalState }> {
    const lock = DirLock.acquire(dir);
    try {
      const segments = Wal.listSegments(dir);
      const { wal, state } =
        segments.length === 0 ? Wal.create(dir, lock, opts) : Wal.replay(dir, lock, segments, opts);
      const last = wal.segments[wal.segments.length - 1]!;
      wal.fh = await open(join(dir, last.name), 'r+');
      wal.dsync = await open(join(dir, last.name), DSYNC_FLAGS);
      wal.prepareNext();
      return { wal, state };
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  /** The segment files of `dir`, oldest first; leftover preallocated `.tmp` files are removed. */
  private static listSegments(dir: string): SegmentInfo[] {
    const segments: SegmentInfo[] = [];
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.tmp')) {
        unlinkSync(join(dir, name));
        continue;
      }
      const m = SEGMENT_RE.exec(name);
      if (m) segments.push({ seq: parseInt(m[1]!, 16), firstIndex: parseInt(m[2]!, 16), name });
    }
    return segments.sort((a, b) => a.seq - b.seq);
  }

  /** A fresh WAL: the first segment, written and installed synchronously. */
  private static create(dir: string, lock: DirLock, opts: WalOptions): { wal: Wal; state: WalState } {
    const cipher = opts.cipher ?? identityCipher;
    const segmentSize = opts.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    const seg = { seq: 1, firstIndex: 1, name: segmentName(1, 1) };
    const tmp = join(dir, `${hex16(1)}.tmp`);
    // Built once: a cipher with random nonces seals differently each time, and the chain must
    // continue from the CRC of the bytes actually written.
    const hdr = Wal.headerBlock(seg.seq, seg.firstIndex, 0, opts.nodeId ?? '', EMPTY_HARD_STATE, undefined, cipher);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      const zero = Buffer.alloc(Math.min(segmentSize, 1024 * 1024));
      for (let done = 0; done < segmentSize; done += zero.length) {
        writeSync(fd, zero, 0, Math.min(zero.length, segmentSize - done), done);
      }
      writeSync(fd, hdr.buf, 0, hdr.buf.length, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(dir, seg.name));
    fsyncDirSync(dir);
    const wal = new Wal(dir, lock, opts, {
      segments: [seg],
      offset: hdr.buf.length,
      crc: hdr.crc,
      lastIndex: 0,
      hardState: EMPTY_HARD_STATE,
      lastMarker: undefined,
    });
    return { wal, state: { hardState: EMPTY_HARD_STATE, entries: [], markers: [] } };
  }

  /**
   * Replays existing segments: checks the chain, decodes every record, zeroes a torn tail of the
   * last segment, and refuses (WalCorruptError) any other damage.
   */
  private static replay(
    dir: string,
    lock: DirLock,
    segments: SegmentInfo[],
    opts: WalOptions,
  ): { wal: Wal; state: WalState } {
    const cipher = opts.cipher ?? identityCipher;
    let hardState = EMPTY_HARD_STATE;
    const entries: Entry[] = [];
    const markers: SnapshotRef[] = [];
    let crc = 0;
    let offset = 0;
    let truncatedAt: { file: string; offset: number } | undefined;
    for (let k = 0; k < segments.length; k++) {
      const seg = segments[k]!;
      const isLast = k === segments.length - 1;
      if (k > 0 && seg.seq !== segments[k - 1]!.seq + 1) {
        throw new WalCorruptError(seg.name, 0, `segment ${segments[k - 1]!.seq + 1} is missing`);
      }
      const path = join(dir, seg.name);
      const buf = readFileSync(path);
      const h = parseRecord(buf, 0, 0);
      if (h.kind !== 'ok' || h.type !== RecordType.segmentHeader) {
        throw new WalCorruptError(seg.name, 0, `bad segment header (${h.kind === 'bad' ? h.reason : 'missing'})`);
      }
      const hr = new BinaryReader(h.body, 'WAL segment header');
      try {
        const magic = hr.u32();
        const version = hr.u16();
        const seq = hr.u64();
        const first = hr.u64();
        const prev = hr.u32();
        if (magic !== SEGMENT_MAGIC || version !== SEGMENT_VERSION) throw new Error('bad magic or version');
        if (seq !== seg.seq || first !== seg.firstIndex) throw new Error('header does not match the file name');
        if (k > 0 && prev !== crc) throw new Error('checksum chain broken between segments');
      } catch (err) {
        throw new WalCorruptError(seg.name, 0, (err as Error).message);
      }
      crc = h.crc;
      let at = h.next;
      for (;;) {
        const r = parseRecord(buf, at, crc);
        if (r.kind === 'end') break;
        if (r.kind === 'bad') {
          if (!isLast) throw new WalCorruptError(seg.name, at, `${r.reason} in an older segment`);
          const follower = validRecordFollows(buf, at, crc);
          if (follower !== undefined) {
            throw new WalCorruptError(seg.name, at, `${r.reason}, followed by a valid record at byte ${follower}`);
          }
          Wal.zeroTail(path, buf, at);
          truncatedAt = { file: seg.name, offset: at };
          (opts.logger ?? silentLogger()).warn(
            { file: seg.name, offset: at, reason: r.reason },
            'WAL torn tail truncated',
          );
          break;
        }
        try {
          Wal.applyRecord(r.type, r.body, cipher, entries, markers, (hs) => (hardState = hs));
        } catch (err) {
          throw new WalCorruptError(seg.name, at, `undecodable record: ${(err as Error).message}`);
        }
        crc = r.crc;
        at = r.next;
      }
      offset = at;
    }
    const lastIndex = entries.length === 0 ? 0 : entries[entries.length - 1]!.index;
    const wal = new Wal(dir, lock, opts, {
      segments,
      offset,
      crc,
      lastIndex,
      hardState,
      lastMarker: markers[markers.length - 1],
    });
    return {
      wal,
      state: { hardState, entries, markers, ...(truncatedAt !== undefined ? { truncatedAt } : {}) },
    };
  }

  private static applyRecord(
    type: RecordTypeCode,
    sealed: Buffer,
    cipher: RecordCipher,
    entries: Entry[],
    markers: SnapshotRef[],
    setHs: (hs: HardState) => void,
  ): void {
    const body = cipher.open(sealed);
    switch (type) {
      case RecordType.entry:
        pushEntry(entries, decodeEntry(body));
        return;
      case RecordType.hardState:
        setHs(decodeHardState(body));
        return;
      case RecordType.snapshotMarker: {
        const r = new BinaryReader(body, 'snapshot marker');
        const ref = { term: r.u64(), index: r.u64() };
        r.done();
        markers.push(ref);
        return;
      }
      case RecordType.segmentHeader:
        throw new RaftDecodeError('WAL record', 'segment header in the middle of a segment');
    }
  }

  /** Zeroes a torn tail from `at` to the last non-zero byte and fsyncs. */
  private static zeroTail(path: string, buf: Buffer, at: number): void {
    let end = buf.length;
    while (end > at && buf[end - 1] === 0) end--;
    if (end <= at) return;
    const fd = openSync(path, 'r+');
    try {
      const zero = Buffer.alloc(Math.min(end - at, 1024 * 1024));
      for (let p = at; p < end; p += zero.length) writeSync(fd, zero, 0, Math.min(zero.length, end - p), p);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private static headerBlock(
    seq: number,
    firstIndex: number,
    prevCrc: number,
    nodeId: string,
    hs: HardState,
    marker: SnapshotRef | undefined,
    cipher: RecordCipher,
  ): { buf: Buffer; crc: number } {
    const body = new BinaryWriter(64)
      .u32(SEGMENT_MAGIC)
      .u16(SEGMENT_VERSION)
      .u64(seq)
      .u64(firstIndex)
      .u32(prevCrc)
      .str(nodeId)
      .finish();
    const recs: [RecordTypeCode, Uint8Array][] = [[RecordType.segmentHeader, body]];
    recs.push([RecordType.hardState, cipher.seal(encodeHardState(hs))]);
    if (marker !== undefined) {
      recs.push([
        RecordType.snapshotMarker,
        cipher.seal(new BinaryWriter(16).u64(marker.term).u64(marker.index).finish()),
      ]);
    }
    let size = 0;
    for (const [, b] of recs) size += recordSize(b.byteLength);
    const buf = Buffer.alloc(size);
    let crc = 0;
    let at = 0;
    for (const [t, b] of recs) {
      crc = writeRecord(buf, at, t, b, crc);
      at += recordSize(b.byteLength);
    }
    return { buf, crc };
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.failed) throw this.failed;
      if (this.closed) throw new StorageFatalError(this.dir, 'write after close');
      return fn();
    };
    const p = this.queue.then(run, run);
    this.queue = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  private fatal(op: string, err: unknown): never {
    const e = err instanceof StorageFatalError ? err : new StorageFatalError(this.dir, op, { cause: err });
    this.failed ??= e;
    throw e;
  }

  /**
   * Appends `entries` then `hardState` (if given) as one write, then one fdatasync when `sync`.
   * Resolves once durable. Any I/O error is fatal (StorageFatalError) and poisons the WAL.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[], sync: boolean): Promise<void> {
    return this.enqueue(async () => {
      const bodies: [RecordTypeCode, Uint8Array][] = [];
      for (const e of entries) bodies.push([RecordType.entry, this.cipher.seal(encodeEntry(e))]);
      if (hardState !== undefined) bodies.push([RecordType.hardState, this.cipher.seal(encodeHardState(hardState))]);
      if (bodies.length === 0) return;
      await this.writeRecords(bodies, sync);
      if (entries.length > 0) this.lastIndex = entries[entries.length - 1]!.index;
      if (hardState !== undefined) this.hardState = hardState;
    });
  }

  /** Appends a snapshot marker (the snapshot file must already be durable) and fsyncs. */
  saveSnapshotMarker(ref: SnapshotRef): Promise<void> {
    return this.enqueue(async () => {
      const body = this.cipher.seal(new BinaryWriter(16).u64(ref.term).u64(ref.index).finish());
      await this.writeRecords([[RecordType.snapshotMarker, body]], true);
      this.lastMarker = ref;
    });
  }

  private async writeRecords(bodies: [RecordTypeCode, Uint8Array][], sync: boolean): Promise<void> {
    let size = 0;
    for (const [, b] of bodies) size += recordSize(b.byteLength);
    if (this.offset + size > this.segmentSize) await this.cut();
    const buf = Buffer.allocUnsafe(size);
    let at = 0;
    let crc = this.crc;
    for (const [t, b] of bodies) {
      crc = writeRecord(buf, at, t, b, crc);
      at += recordSize(b.byteLength);
    }
    // A synced batch goes through the O_DSYNC handle: durable (data and the size metadata needed
    // to read it back) when the write returns, i.e. write + fdatasync in one call.
    const fh = sync ? this.dsync! : this.fh!;
    try {
      let done = 0;
      while (done < size) {
        const { bytesWritten } = await fh.write(buf, done, size - done, this.offset + done);
        done += bytesWritten;
      }
    } catch (err) {
      this.fatal(sync ? 'synchronous write (O_DSYNC)' : 'write', err);
    }
    this.offset += size;
    this.crc = crc;
  }

  /** Starts zero-filling the next segment in the background. */
  private prepareNext(): void {
    if (this.nextTmp !== undefined) return;
    const seq = this.segments[this.segments.length - 1]!.seq + 1;
    const path = join(this.dir, `${hex16(seq)}.tmp`);
    const size = this.segmentSize;
    const p = (async () => {
      const fh = await open(path, 'w', 0o600);
      try {
        const zero = Buffer.alloc(Math.min(size, 1024 * 1024));
        for (let done = 0; done < size; done += zero.length) {
          await fh.write(zero, 0, Math.min(zero.length, size - done), done);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      return path;
    })();
    this.nextTmp = p.then(
      (done) => ({ path: done }),
      (error: unknown) => ({ error }),
    );
  }

  /** Closes the current segment and installs the prepared next one. */
  private async cut(): Promise<void> {
    try {
      await this.fh!.datasync();
      await this.fh!.close();
      await this.dsync!.close();
      const next = await this.nextTmp;
      this.nextTmp = undefined;
      if (next === undefined) throw new Error('no prepared segment');
      if ('error' in next) throw next.error;
      const tmp = next.path;
      const seq = this.segments[this.segments.length - 1]!.seq + 1;
      const seg = { seq, firstIndex: this.lastIndex + 1, name: segmentName(seq, this.lastIndex + 1) };
      const hdr = Wal.headerBlock(
        seq,
        seg.firstIndex,
        this.crc,
        this.nodeId,
        this.hardState,
        this.lastMarker,
        this.cipher,
      );
      const fh = await open(tmp, 'r+');
      await fh.write(hdr.buf, 0, hdr.buf.length, 0);
      await fh.datasync();
      await rename(tmp, join(this.dir, seg.name));
      await fsyncDir(this.dir);
      this.fh = fh;
      this.dsync = await open(join(this.dir, seg.name), DSYNC_FLAGS);
      this.segments.push(seg);
      this.offset = hdr.buf.length;
      this.crc = hdr.crc;
      this.log.debug({ segment: seg.name }, 'WAL segment cut');
    } catch (err) {
      this.fatal('segment cut', err);
    }
    this.prepareNext();
  }

  /**
   * Deletes segments whose entries are all at or below `index` (a snapshot covers them). The last
   * segment is always kept.
   */
  releaseTo(index: number): Promise<void> {
    return this.enqueue(async () => {
      let removed = 0;
      while (this.segments.length > 1 && this.segments[1]!.firstIndex <= index + 1) {
        const seg = this.segments.shift()!;
        try {
          await unlink(join(this.dir, seg.name));
        } catch (err) {
          this.fatal('unlink', err);
        }
        removed++;
      }
      if (removed > 0) await fsyncDir(this.dir);
    });
  }

  /** Resolves once the next segment is preallocated (so that zero-filling does not compete with the first writes). */
  async whenPrepared(): Promise<void> {
    await this.nextTmp;
  }

  /** Names of the segment files, oldest first (for tests and diagnostics). */
  segmentFiles(): string[] {
    return this.segments.map((s) => s.name);
  }

  /** Waits for pending writes, closes the files and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    try {
      await this.fh?.close();
      await this.dsync?.close();
      const next = await this.nextTmp;
      if (next !== undefined && 'path' in next) await unlink(next.path).catch(ignoreErrno('ENOENT'));
    } finally {
      this.lock.release();
    }
  }
}
