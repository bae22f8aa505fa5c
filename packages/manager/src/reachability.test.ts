/**
 * Raft clears a follower's recentActive at every check-quorum round until its next response:
 * a manager seen active within the window stays reachable across that gap; one silent for
 * longer becomes unreachable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProgressStatus } from '@shoal/raft';
import { ReachabilityTracker } from './context.js';

const pr = (recentActive: boolean): ProgressStatus => ({
  match: 1,
  next: 2,
  state: 'replicate',
  isLearner: false,
  recentActive,
});

test('reachability: a check-quorum reset does not make a healthy manager unreachable', () => {
  const t = new ReachabilityTracker(2000);
  t.observe(new Map([['m2', pr(true)]]), 10_000);
  assert.equal(t.reachable('m2', pr(true), 10_000), true);
  assert.equal(t.reachable('m2', pr(false), 10_500), true, 'just after the reset: still reachable');
  assert.equal(t.reachable('m2', pr(false), 12_001), false, 'silent past the window: unreachable');
  assert.equal(t.reachable('m3', pr(false), 10_000), false, 'never seen');
  assert.equal(t.reachable('m2', undefined, 10_000), false, 'not in the leader progress');
  t.reset();
  assert.equal(t.reachable('m2', pr(false), 10_500), false, 'a new leadership starts from Raft');
});
