/**
 * The leader's view of one follower: match/next indexes and the replication state machine
 * (Probe: one MsgApp at a time until the follower's position is known; Replicate: pipelined
 * MsgApps within the inflight window; Snapshot: waiting for a snapshot to be installed).
 */
import { Inflights } from './inflights.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be persisted on the follower. */
  match: number;
  /** Next index to send. Invariant: match < next. */
  next: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot being sent (Snapshot state). */
  pendingSnapshot = 0;
  /** Heard from in the current election timeout (check-quorum). */
  recentActive: boolean;
  /** Probe: a MsgApp is outstanding; Replicate: the window is full. */
  msgAppFlowPaused = false;
  inflights: Inflights;
  isLearner: boolean;
  /** Snapshot state: set at one election-timeout boundary, and the snapshot is abandoned at the next. */
  snapshotStale = false;

  constructor(next: number, maxInflight: number, isLearner: boolean, maxInflightBytes = 0) {
    this.match = 0;
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
    this.isLearner = isLearner;
    this.recentActive = true;
  }

  clone(): Progress {
    const p = new Progress(this.next, 1, this.isLearner);
    p.match = this.match;
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.recentActive = this.recentActive;
    p.msgAppFlowPaused = this.msgAppFlowPaused;
    p.inflights = this.inflights.clone();
    return p;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // The snapshot may have been installed: probe right after it, but never below match + 1.
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.snapshotStale = false;
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /** Bookkeeping after sending a MsgApp with `n` entries ending at next-1+n, of `bytes` bytes. */
  sentEntries(n: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (n > 0) {
        this.next += n;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === 'probe') {
      this.msgAppFlowPaused = true;
    }
  }

  /** An acknowledgement up to `n`: returns true if match moved. Keeps next > match. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    if (this.next < n + 1) this.next = n + 1;
    return updated;
  }

  /**
   * A rejection of the MsgApp whose previous index was `rejected`, with the follower's hint.
   * Returns false when the rejection is stale (out of order or already superseded).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
      case 'replicate':
        return this.msgAppFlowPaused;
      case 'snapshot':
        return true;
    }
  }
}
