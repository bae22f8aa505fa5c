/**
 * Boot: rebuilds the in-memory log view from what the LogStore recovered and restores the state
 * machine from the snapshot; a brand-new cluster first writes the founding snapshot (index 1,
 * term 1, the founding voters), identical on every founding member.
 */
import type { ConfState, HardState } from '../core/types.js';
import { MemoryStorage } from '../core/memory-storage.js';
import { bootstrapSnapshot } from '../core/raw-node.js';
import { EMPTY_BYTES } from '../core/util.js';
import { InvalidRaftConfigError } from '../errors.js';
import type { DriverSettings } from './options.js';
import { restoreStateMachine, snapshotFilesOf, writeSnapshotNow } from './compaction.js';

export interface BootResult {
  readonly storage: MemoryStorage;
  readonly hardState: HardState;
  readonly confState: ConfState;
  /** Index of the snapshot the state machine was restored from (0 if none): the applied index. */
  readonly snapshotIndex: number;
}

export async function bootNode(s: DriverSettings): Promise<BootResult> {
  const boot = s.store.boot;
  let snapshot = boot.snapshot;
  let hardState = boot.hardState;
  const fresh = snapshot === undefined && boot.entries.length === 0 && hardState.term === 0;
  // A store keeping snapshots in files streams them to peers through the transport.
  const files = snapshotFilesOf(s.store);
  if (files !== undefined) {
    if (s.transport.useSnapshotFiles === undefined) {
      throw new InvalidRaftConfigError('the store keeps snapshots in files: the transport must stream them');
    }
    s.transport.useSnapshotFiles(files);
  }
  if (fresh && s.bootstrapVoters.length > 0) {
    hardState = { term: 1, vote: '', commit: 1 };
    if (files !== undefined) {
      snapshot = bootstrapSnapshot(s.bootstrapVoters, EMPTY_BYTES);
      await writeSnapshotNow(files, s.stateMachine, snapshot.metadata);
    } else {
      snapshot = bootstrapSnapshot(s.bootstrapVoters, s.stateMachine.snapshot());
      await s.store.saveSnapshot(snapshot);
    }
    await s.store.save(hardState, [], true);
  }
  const storage = new MemoryStorage();
  let snapshotIndex = 0;
  if (snapshot !== undefined) {
    storage.applySnapshot(snapshot);
    await restoreStateMachine(s.store, s.stateMachine, snapshot);
    snapshotIndex = snapshot.metadata.index;
  }
  storage.setHardState(hardState);
  storage.append(boot.entries);
  return { storage, hardState, confState: storage.initialState().confState, snapshotIndex };
}
