/**
 * Streaming snapshots: a state machine that can freeze a view of itself at the applied index
 * (so that applies continue while the view is written out in chunks) and restore from a stream
 * of chunks. The driver uses this, when the state machine and the store both support it, instead
 * of `StateMachine.snapshot()` / `restore()`, which build and parse one whole-state buffer.
 */
import type { SnapshotMetadata } from '../core/types.js';

/** A frozen view of the state at the index it was taken, read out as chunks. */
export interface SnapshotSource {
  /**
   * The encoded state, chunk by chunk (each chunk a self-contained part that `restoreChunks`
   * accepts in the same order). Pulled lazily, so the consumer controls pacing and memory.
   */
  chunks(): Iterable<Uint8Array>;
  /** Ends the frozen view (after success or failure); the state machine folds what changed since. */
  close(): void;
}

export interface StreamingStateMachine {
  /**
   * Freezes the current state (O(1) or close to it). Applies keep going; the source still reads
   * the state as it was. At most one source is open at a time.
   */
  beginSnapshot(): SnapshotSource;
  /** Replaces the whole state from chunks produced by a SnapshotSource. */
  restoreChunks(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void>;
}

export function isStreamingStateMachine(sm: object): sm is StreamingStateMachine {
  const s = sm as Partial<StreamingStateMachine>;
  return typeof s.beginSnapshot === 'function' && typeof s.restoreChunks === 'function';
}

/** Receives the raw bytes of a snapshot file sent by a peer. */
export interface SnapshotReceiver {
  write(block: Uint8Array): Promise<void>;
  /** Verifies and fsyncs the file; it is then installed by `LogStore.saveSnapshot` (empty data). */
  finish(): Promise<void>;
  /** Drops the partial file. */
  abort(): Promise<void>;
}

/** Snapshot files as the transport sees them: sent and received as raw bytes, never whole. */
export interface SnapshotFiles {
  /** The raw bytes of the stored snapshot file (term, index), in blocks. */
  readFile(term: number, index: number): AsyncIterable<Uint8Array>;
  /** Starts receiving the raw file of snapshot (term, index). */
  receive(term: number, index: number): SnapshotReceiver;
}

/**
 * A LogStore that keeps snapshot data in files and streams it. Its `boot.snapshot.data` is empty:
 * the data is read with `readSnapshotChunks`. `saveSnapshot` of a snapshot with empty data
 * installs a file received through `SnapshotFiles.receive` if there is one.
 */
export interface SnapshotFileStore extends SnapshotFiles {
  /** Writes a snapshot from chunks pulled one at a time, then marks it in the log. */
  saveSnapshotChunks(
    metadata: SnapshotMetadata,
    chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  ): Promise<void>;
  /** The data chunks of a stored snapshot (throws SnapshotCorruptError at the end if it does not verify). */
  readSnapshotChunks(term: number, index: number): AsyncIterable<Uint8Array>;
}

export function isSnapshotFileStore(store: object): store is SnapshotFileStore {
  const s = store as Partial<SnapshotFileStore>;
  return typeof s.saveSnapshotChunks === 'function' && typeof s.readSnapshotChunks === 'function';
}
