/**
 * Persistence of a Ready: the snapshot, then entries and hard state as one durable batch, then
 * the same in the in-memory log view the core reads. A commit-only hard state needs no
 * durability (a lower commit is re-learned from the leader after a restart): it is not written
 * before apply but rides with the next batch.
 */
import type { HardState, Message, Ready } from '../core/types.js';
import type { MemoryStorage } from '../core/memory-storage.js';
import type { LogStore } from './log-store.js';

/** Messages a leader may send before its own write is durable (thesis §10.2.1). */
const EARLY_TYPES = new Set<Message['type']>(['app', 'heartbeat', 'snap']);

export class Persister {
  private persistedTerm: number;
  private persistedVote: string;
  /** Latest commit-only hard state, written with the next batch. */
  private deferredHs: HardState | undefined;

  constructor(
    private readonly store: LogStore,
    private readonly storage: MemoryStorage,
    booted: HardState,
  ) {
    this.persistedTerm = booted.term;
    this.persistedVote = booted.vote;
  }

  /**
   * Splits a Ready's messages into those a leader sends at once (appends, heartbeats, snapshots,
   * when the term and vote did not change) and those that wait for persistence.
   */
  splitEarly(rd: Ready, isLeader: boolean): { early: Message[]; later: readonly Message[] } {
    const hs = rd.hardState;
    const voteChange = hs !== undefined && (hs.term !== this.persistedTerm || hs.vote !== this.persistedVote);
    if (!isLeader || voteChange || rd.messages.length === 0) return { early: [], later: rd.messages };
    return {
      early: rd.messages.filter((m) => EARLY_TYPES.has(m.type)),
      later: rd.messages.filter((m) => !EARLY_TYPES.has(m.type)),
    };
  }

  /** Writes the Ready durably (one batch, synced when mustSync) and mirrors it in memory. */
  async persist(rd: Ready): Promise<void> {
    const hs = rd.hardState;
    const snap = rd.snapshot !== undefined && rd.snapshot.metadata.index > 0 ? rd.snapshot : undefined;
    if (snap !== undefined) await this.store.saveSnapshot(snap);
    if (rd.entries.length > 0 || rd.mustSync) {
      await this.store.save(hs ?? this.deferredHs, rd.entries, rd.mustSync);
      this.deferredHs = undefined;
    } else if (hs !== undefined) {
      this.deferredHs = hs;
    }
    if (snap !== undefined) this.storage.applySnapshot(snap);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (hs !== undefined) {
      this.storage.setHardState(hs);
      this.persistedTerm = hs.term;
      this.persistedVote = hs.vote;
    }
  }
}
