/**
 * Snapshots and log compaction, off the ready loop. When the log applied since the last snapshot
 * reaches `snapshotEntries` entries or `snapshotBytes` bytes of entry data, `maybeCompact` freezes
 * the state machine at the applied index (StreamingStateMachine.beginSnapshot: O(1) for the KV)
 * and a background task writes its chunks to the store, yielding at every write: applies,
 * heartbeats and writes go on meanwhile. When the file is durable the loop calls `finish()`, which
 * records the snapshot in the in-memory log (the data stays in the file; the transport streams it
 * to followers), compacts the log keeping `keepEntries`, and releases old WAL segments and files.
 *
 * Restores (at boot and from a leader's snapshot) stream too: chunks go from the file into the
 * state machine. A store without snapshot files (tests, the simulator) keeps the whole-buffer
 * path, taken synchronously with the loop as before.
 */
import type { Logger } from '@shoal/common';
import type { ConfState, Snapshot, SnapshotMetadata } from '../core/types.js';
import type { MemoryStorage } from '../core/memory-storage.js';
import { EMPTY_BYTES } from '../core/util.js';
import { SnapshotOutOfDateError } from '../errors.js';
import type { LogStore } from './log-store.js';
import type { StateMachine } from './options.js';
import {
  isSnapshotFileStore,
  isStreamingStateMachine,
  type SnapshotFileStore,
  type SnapshotSource,
} from './snapshot-stream.js';

export interface CompactorDeps {
  readonly store: LogStore;
  readonly storage: MemoryStorage;
  readonly stateMachine: StateMachine;
  /** Applied entries between snapshots. */
  readonly snapshotEntries: number;
  /** Applied bytes of entry data between snapshots. */
  readonly snapshotBytes: number;
  /** Entries kept behind a snapshot... */
  readonly keepEntries: number;
  /** ... up to this many bytes of entry data. */
  readonly keepBytes: number;
  readonly logger: Logger;
  /** Wakes the ready loop (a background snapshot is ready to finish). */
  readonly wake: () => void;
  /** Stops the node (the background write failed). */
  readonly fail: (err: Error) => void;
}

/** The state machine's state as a pull-based chunk source, frozen now. */
function sourceOf(sm: StateMachine): SnapshotSource {
  if (isStreamingStateMachine(sm)) return sm.beginSnapshot();
  const data = sm.snapshot();
  return { chunks: () => [data], close: () => undefined };
}

/** The store's snapshot files, when it keeps snapshot data in files. */
export function snapshotFilesOf(store: LogStore): SnapshotFileStore | undefined {
  return isSnapshotFileStore(store) ? store : undefined;
}

/** Writes the state machine's current state as snapshot `meta` (bootstrap), file mode. */
export async function writeSnapshotNow(
  files: SnapshotFileStore,
  sm: StateMachine,
  meta: SnapshotMetadata,
): Promise<void> {
  const src = sourceOf(sm);
  try {
    await files.saveSnapshotChunks(meta, src.chunks());
  } finally {
    src.close();
  }
}

/** Restores the state machine from snapshot `s`: its data, or (empty data, file mode) its file, streamed. */
export async function restoreStateMachine(store: LogStore, sm: StateMachine, s: Snapshot): Promise<void> {
  const files = snapshotFilesOf(store);
  if (files === undefined || s.data.byteLength > 0) {
    sm.restore(s.data);
    return;
  }
  const chunks = files.readSnapshotChunks(s.metadata.term, s.metadata.index);
  if (isStreamingStateMachine(sm)) {
    await sm.restoreChunks(chunks);
    return;
  }
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  sm.restore(Buffer.concat(parts));
}

interface Pending {
  readonly meta: SnapshotMetadata;
  done: boolean;
}

export class Compactor {
  /** Index of the newest snapshot (taken here, installed, or booted from). */
  snapIndex: number;
  private bytesAtSnap = 0;
  private pending: Pending | undefined;
  private readonly files: SnapshotFileStore | undefined;

  constructor(
    private readonly d: CompactorDeps,
    snapIndex: number,
  ) {
    this.snapIndex = snapIndex;
    this.files = snapshotFilesOf(d.store);
  }

  /** A snapshot installed from the leader counts as the newest one. */
  installed(index: number, appliedBytes: number): void {
    this.snapIndex = index;
    this.bytesAtSnap = appliedBytes;
  }

  /** A background snapshot is durable: the loop should call finish(). */
  get readyToFinish(): boolean {
    return this.pending?.done === true;
  }

  /**
   * Takes a snapshot at `applied` when due (`appliedBytes`: entry bytes applied so far). File
   * mode: started here, written in the background. Otherwise taken and saved before returning.
   */
  async maybeCompact(applied: number, confState: ConfState, appliedBytes: number): Promise<void> {
    const d = this.d;
    if (this.pending !== undefined || applied <= this.snapIndex) return;
    if (applied - this.snapIndex < d.snapshotEntries && appliedBytes - this.bytesAtSnap < d.snapshotBytes) return;
    this.bytesAtSnap = appliedBytes;
    const files = this.files;
    if (files === undefined) {
      const snap = d.storage.createSnapshot(applied, confState, d.stateMachine.snapshot());
      await d.store.saveSnapshot(snap);
      this.snapIndex = applied;
      await this.release(applied);
      return;
    }
    const meta: SnapshotMetadata = { index: applied, term: d.storage.term(applied), confState };
    const src = sourceOf(d.stateMachine);
    const p: Pending = { meta, done: false };
    this.pending = p;
    this.snapIndex = applied;
    const t0 = Date.now();
    files.saveSnapshotChunks(meta, src.chunks()).then(
      () => {
        src.close();
        p.done = true;
        d.logger.info({ index: meta.index, ms: Date.now() - t0 }, 'snapshot written');
        d.wake();
      },
      (err: unknown) => {
        src.close();
        this.pending = undefined;
        d.fail(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  /**
   * Records the written snapshot in the in-memory log and compacts it; old WAL segments and
   * snapshot files are released in the background (deleting big files takes a while).
   */
  async finish(): Promise<void> {
    const p = this.pending;
    if (p === undefined || !p.done) return;
    this.pending = undefined;
    try {
      this.d.storage.createSnapshot(p.meta.index, p.meta.confState, EMPTY_BYTES);
    } catch (err) {
      // A newer snapshot from the leader was installed meanwhile: this one is obsolete.
      if (err instanceof SnapshotOutOfDateError) return;
      throw err;
    }
    this.release(p.meta.index).catch((err: unknown) =>
      this.d.fail(err instanceof Error ? err : new Error(String(err))),
    );
    return Promise.resolve();
  }

  private async release(index: number): Promise<void> {
    const d = this.d;
    let upTo = index - d.keepEntries;
    // Keep at most keepBytes of entry data: with large entries, a count alone keeps a lot of memory.
    const lo = Math.max(d.storage.firstIndex(), upTo + 1);
    if (lo <= index) {
      const tail = d.storage.entries(lo, index + 1, Number.MAX_SAFE_INTEGER);
      let bytes = 0;
      let k = tail.length;
      while (k > 0 && bytes + tail[k - 1]!.data.byteLength <= d.keepBytes) bytes += tail[--k]!.data.byteLength;
      if (k > 0) upTo = Math.max(upTo, tail[k - 1]!.index);
    }
    if (upTo > d.storage.firstIndex()) d.storage.compact(upTo);
    await d.store.releaseTo(Math.max(0, upTo));
    d.logger.debug({ index }, 'snapshot taken, log compacted');
  }
}
