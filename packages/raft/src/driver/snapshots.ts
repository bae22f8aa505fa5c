/**
 * Snapshots taken off the ready loop. When the log since the last snapshot reaches
 * `snapshotEntries` entries or `snapshotBytes` bytes of entry data, `maybeStart` freezes the state
 * machine at the applied index (StreamingStateMachine.beginSnapshot, O(1) for the KV) and a
 * background task writes its chunks to the store, yielding at every write: applies, heartbeats
 * and writes go on meanwhile. When the file is durable the loop calls `finish()`, which records the
 * snapshot in the in-memory log (data stays in the file: the transport streams it to followers),
 * compacts the log keeping `keepEntries`, and releases old WAL segments and snapshot files.
 *
 * Restores (at boot and from a leader's snapshot) also stream: chunks go from the file into the
 * state machine. A store without snapshot files and a state machine without streaming keep the
 * whole-buffer path.
 */
import type { Logger } from '@shoal/common';
import type { ConfState, Snapshot, SnapshotMetadata } from '../core/types.js';
import type { MemoryStorage } from '../core/memory-storage.js';
import { EMPTY_BYTES } from '../core/util.js';
import { SnapshotOutOfDateError } from '../errors.js';
import type { LogStore } from './log-store.js';
import {
  isSnapshotFileStore,
  isStreamingStateMachine,
  type SnapshotFileStore,
  type SnapshotSource,
  type StreamingStateMachine,
} from './snapshot-stream.js';

/** The part of the driver's StateMachine this module uses. */
export interface SnapshottableStateMachine {
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface SnapshotPolicy {
  /** Snapshot after this many applied entries since the last one (default 10,000). */
  readonly snapshotEntries?: number;
  /** ... or this many bytes of applied entry data since the last one (default 64 MiB). */
  readonly snapshotBytes?: number;
  /** Entries kept behind a snapshot for slow followers (default 500). */
  readonly keepEntries?: number;
}

interface Pending {
  readonly meta: SnapshotMetadata;
  done: boolean;
}

export class Snapshots {
  readonly files: SnapshotFileStore | undefined;
  private readonly streaming: StreamingStateMachine | undefined;
  private entriesSince = 0;
  private bytesSince = 0;
  private pending: Pending | undefined;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly keep: number;

  constructor(
    private readonly store: LogStore,
    private readonly sm: SnapshottableStateMachine,
    private readonly storage: MemoryStorage,
    policy: SnapshotPolicy,
    private readonly hooks: { wake(): void; fail(err: Error): void; log: Logger },
  ) {
    this.files = isSnapshotFileStore(store) ? store : undefined;
    this.streaming = isStreamingStateMachine(sm) ? sm : undefined;
    this.maxEntries = policy.snapshotEntries ?? 10_000;
    this.maxBytes = policy.snapshotBytes ?? 64 * 1024 * 1024;
    this.keep = policy.keepEntries ?? 500;
  }

  /** True when snapshot data lives in the store's files (the in-memory snapshot has empty data). */
  get inFiles(): boolean {
    return this.files !== undefined;
  }

  /** A snapshot is being written. */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** The background write finished: the loop should call finish(). */
  get readyToFinish(): boolean {
    return this.pending?.done === true;
  }

  noteApplied(entries: number, bytes: number): void {
    this.entriesSince += entries;
    this.bytesSince += bytes;
  }

  /** Resets the counters (a snapshot was installed from the leader). */
  reset(): void {
    this.entriesSince = 0;
    this.bytesSince = 0;
  }

  private source(): SnapshotSource {
    if (this.streaming !== undefined) return this.streaming.beginSnapshot();
    const data = this.sm.snapshot();
    return { chunks: () => [data], close: () => undefined };
  }

  /** Writes a snapshot synchronously with the caller (bootstrap): file mode only. */
  async writeNow(meta: SnapshotMetadata): Promise<void> {
    const src = this.source();
    try {
      await this.files!.saveSnapshotChunks(meta, src.chunks());
    } finally {
      src.close();
    }
  }

  /**
   * Starts a snapshot at `applied` if a threshold is reached and none is running. File mode: in the
   * background. Otherwise: the whole-buffer path, awaited by the caller.
   */
  async maybeStart(applied: number, confState: ConfState): Promise<void> {
    if (this.pending !== undefined) return;
    if (this.entriesSince < this.maxEntries && this.bytesSince < this.maxBytes) return;
    if (applied <= this.storage.snapshot().metadata.index) return;
    this.reset();
    const meta: SnapshotMetadata = { index: applied, term: this.storage.term(applied), confState };
    if (this.files === undefined) {
      const snap = this.storage.createSnapshot(applied, confState, this.sm.snapshot());
      await this.store.saveSnapshot(snap);
      await this.release(applied);
      return;
    }
    const files = this.files;
    const src = this.source();
    const p: Pending = { meta, done: false };
    this.pending = p;
    const t0 = Date.now();
    files.saveSnapshotChunks(meta, src.chunks()).then(
      () => {
        src.close();
        p.done = true;
        this.hooks.log.info({ index: meta.index, ms: Date.now() - t0 }, 'snapshot written');
        this.hooks.wake();
      },
      (err: unknown) => {
        src.close();
        this.pending = undefined;
        this.hooks.fail(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  /** Records the written snapshot in the in-memory log, compacts and releases storage. */
  async finish(): Promise<void> {
    const p = this.pending;
    if (p === undefined || !p.done) return;
    this.pending = undefined;
    try {
      this.storage.createSnapshot(p.meta.index, p.meta.confState, EMPTY_BYTES);
    } catch (err) {
      // A newer snapshot from the leader was installed meanwhile: this one is obsolete.
      if (err instanceof SnapshotOutOfDateError) return;
      throw err;
    }
    await this.release(p.meta.index);
  }

  private async release(index: number): Promise<void> {
    const upTo = index - this.keep;
    if (upTo > this.storage.firstIndex()) this.storage.compact(upTo);
    await this.store.releaseTo(Math.max(0, upTo));
    this.hooks.log.debug({ index }, 'snapshot taken, log compacted');
  }

  /**
   * Durably stores a snapshot received from the leader (file mode: installs the received file)
   * and restores the state machine from it.
   */
  async install(s: Snapshot): Promise<void> {
    await this.store.saveSnapshot(s);
    this.reset();
  }

  /** Restores the state machine from snapshot `s` (its data, or its file in file mode). */
  async restore(s: Snapshot): Promise<void> {
    const { term, index } = s.metadata;
    if (this.files === undefined || s.data.byteLength > 0) {
      this.sm.restore(s.data);
      return;
    }
    const chunks = this.files.readSnapshotChunks(term, index);
    if (this.streaming !== undefined) {
      await this.streaming.restoreChunks(chunks);
      return;
    }
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    this.sm.restore(Buffer.concat(parts));
  }

  /** What the in-memory log keeps of a snapshot: file mode drops the data (it is in the file). */
  forStorage(s: Snapshot): Snapshot {
    return this.files === undefined ? s : { metadata: s.metadata, data: EMPTY_BYTES };
  }
}
