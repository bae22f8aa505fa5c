/**
 * What the store needs of a replicated log. RaftNode from @shoal/raft satisfies it; LocalLog
 * applies at once in this process (a single-manager store without Raft, for tools and for unit
 * tests of the modules built on the store).
 */
import type { AppliedEntry, StateMachine } from '@shoal/raft';

export interface ReplicatedLog {
  /** Resolves with the state machine's result for the entry once it is committed and applied. */
  propose<T = unknown>(data: Uint8Array, opts?: { signal?: AbortSignal }): Promise<T>;
  /** Resolves once this replica has applied everything committed before the call (ReadIndex). */
  readIndex(opts?: { signal?: AbortSignal }): Promise<void>;
  leaderInfo(): { readonly leader: string; readonly term: number; readonly isLeader: boolean };
}

export class LocalLog implements ReplicatedLog {
  private index = 0;

  constructor(private readonly sm: StateMachine) {}

  propose<T = unknown>(data: Uint8Array): Promise<T> {
    const entry: AppliedEntry = { index: ++this.index, term: 1, data };
    return Promise.resolve(this.sm.apply([entry])[0] as T);
  }

  readIndex(): Promise<void> {
    return Promise.resolve();
  }

  leaderInfo(): { leader: string; term: number; isLeader: boolean } {
    return { leader: 'local', term: 1, isLeader: true };
  }
}
