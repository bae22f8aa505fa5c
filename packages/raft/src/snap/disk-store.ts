/**
 * DiskLogStore: the WAL (`<dir>/wal`) plus snapshot files (`<dir>/snap`) behind the LogStore
 * interface. Boot takes the newest valid snapshot that has a WAL marker and the WAL entries after
 * it; snapshots are written file-first, then marked in the WAL, and only then is anything purged.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, silentLogger } from '@shoal/common';
import type { Entry, HardState, Snapshot, SnapshotMetadata } from '../core/types.js';
import { EMPTY_BYTES } from '../core/util.js';
import { SnapshotCorruptError, WalCorruptError } from '../errors.js';
import type { BootState, LogStore } from '../driver/log-store.js';
import type { SnapshotFileStore, SnapshotReceiver } from '../driver/snapshot-stream.js';
import { Wal } from '../wal/wal.js';
import type { RecordCipher } from '../wal/record.js';
import { Snapshotter } from './snapshotter.js';

export interface DiskLogStoreOptions {
  readonly segmentSize?: number;
  readonly cipher?: RecordCipher;
  readonly logger?: Logger;
  readonly nodeId?: string;
  /** Snapshot files kept (default 2, so a broken newest one can fall back). */
  readonly keepSnapshots?: number;
}

export class DiskLogStore implements LogStore, SnapshotFileStore {
  private snapIndexes: number[] = [];

  private constructor(
    private readonly wal: Wal,
    private readonly snapshotter: Snapshotter,
    readonly boot: BootState,
    private readonly keepSnapshots: number,
  ) {}

  /** Opens (creating) the store in `dir`. Throws WalCorruptError, StorageLockedError. */
  static async open(dir: string, opts: DiskLogStoreOptions = {}): Promise<DiskLogStore> {
    const log = opts.logger ?? silentLogger();
    mkdirSync(join(dir, 'wal'), { recursive: true });
    mkdirSync(join(dir, 'snap'), { recursive: true });
    const { wal, state } = await Wal.open(join(dir, 'wal'), {
      ...(opts.segmentSize !== undefined ? { segmentSize: opts.segmentSize } : {}),
      ...(opts.cipher !== undefined ? { cipher: opts.cipher } : {}),
      ...(opts.nodeId !== undefined ? { nodeId: opts.nodeId } : {}),
      logger: log,
    });
    try {
      const snapshotter = new Snapshotter(join(dir, 'snap'), {
        ...(opts.cipher !== undefined ? { cipher: opts.cipher } : {}),
        logger: log,
      });
      snapshotter.cleanTemp();
      const marked = new Set(state.markers.map((m) => `${m.term}/${m.index}`));
      // Only the header is checked here: the CRC is checked as the driver streams the data in
      // (one pass over a large snapshot instead of two). A snapshot found broken then is renamed
      // `.broken` and the start fails; the next start falls back to the older one.
      const meta = await snapshotter.loadNewestMeta((term, index) => marked.has(`${term}/${index}`), {
        verify: false,
      });
      // The data stays in the file: readSnapshotChunks streams it.
      const snapshot: Snapshot | undefined = meta === undefined ? undefined : { metadata: meta, data: EMPTY_BYTES };
      const snapIndex = snapshot?.metadata.index ?? 0;
      // Copies: recovered entries are views into whole segment buffers (64 MiB each), which
      // would otherwise stay in memory as long as any entry of theirs does.
      const entries: Entry[] = state.entries
        .filter((e) => e.index > snapIndex)
        .map((e) => ({ ...e, data: Uint8Array.prototype.slice.call(e.data) }));
      if (entries.length > 0 && entries[0]!.index !== snapIndex + 1) {
        throw new WalCorruptError(
          wal.segmentFiles()[0] ?? 'wal',
          0,
          `entries resume at ${entries[0]!.index} but the usable snapshot ends at ${snapIndex}`,
        );
      }
      let hardState: HardState = state.hardState;
      if (hardState.commit < snapIndex) hardState = { ...hardState, commit: snapIndex };
      const store = new DiskLogStore(wal, snapshotter, { hardState, snapshot, entries }, opts.keepSnapshots ?? 2);
      store.snapIndexes = snapshotter
        .list()
        .map((f) => f.index)
        .sort((a, b) => a - b);
      return store;
    } catch (err) {
      await wal.close();
      throw err;
    }
  }

  save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void> {
    return this.wal.save(hardState, entries, mustSync);
  }

  /**
   * Stores a whole-buffer snapshot. With empty data, a verified file received from a peer for the
   * same (term, index) is installed instead, if there is one.
   */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    const { term, index } = snapshot.metadata;
    const received = snapshot.data.byteLength === 0 && (await this.snapshotter.installReceived(term, index));
    if (!received) await this.snapshotter.save(snapshot);
    await this.mark(snapshot.metadata);
  }

  async saveSnapshotChunks(
    metadata: SnapshotMetadata,
    chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  ): Promise<void> {
    await this.snapshotter.saveChunks(metadata, chunks);
    await this.mark(metadata);
  }

  private async mark(m: SnapshotMetadata): Promise<void> {
    await this.wal.saveSnapshotMarker({ term: m.term, index: m.index });
    this.snapIndexes.push(m.index);
  }

  async *readSnapshotChunks(term: number, index: number): AsyncGenerator<Uint8Array> {
    try {
      yield* this.snapshotter.readChunks(term, index);
    } catch (err) {
      if (err instanceof SnapshotCorruptError) await this.snapshotter.markBroken(term, index, err.message);
      throw err;
    }
  }

  /** The whole data of a stored snapshot in one buffer (tests). */
  readSnapshotData(term: number, index: number): Promise<Buffer> {
    return this.snapshotter.readData(term, index);
  }

  readFile(term: number, index: number): AsyncIterable<Uint8Array> {
    return this.snapshotter.readFile(term, index);
  }

  receive(term: number, index: number): SnapshotReceiver {
    return this.snapshotter.receive(term, index);
  }

  /**
   * Purges old snapshot files (keeping `keepSnapshots`) and the WAL segments that the oldest kept
   * snapshot covers, up to `index`.
   */
  async releaseTo(index: number): Promise<void> {
    await this.snapshotter.purge(this.keepSnapshots);
    this.snapIndexes = this.snapIndexes.slice(-this.keepSnapshots);
    const oldestKept = this.snapIndexes[0] ?? 0;
    await this.wal.releaseTo(Math.min(index, oldestKept));
  }

  /** Resolves once the WAL's next segment is preallocated. */
  whenPrepared(): Promise<void> {
    return this.wal.whenPrepared();
  }

  /** For tests and diagnostics. */
  files(): { wal: string[]; snap: string[] } {
    return { wal: this.wal.segmentFiles(), snap: this.snapshotter.list().map((f) => f.name) };
  }

  close(): Promise<void> {
    return this.wal.close();
  }
}
