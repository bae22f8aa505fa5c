/**
 * The simulator in CI: a few hundred seeds across 3- and 5-node clusters, plus named regression
 * seeds for every bug the simulator found. Bigger runs: `npm run test:raft-sim -- --seeds 20000`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { nodesForSeed, runSeeds, type Summary } from './cli.js';
import { runSeed, type SimResult } from './simulator.js';

const CI_SEEDS = Number(process.env['SHOAL_RAFT_SIM_SEEDS'] ?? 300);
const CI_FROM = Number(process.env['SHOAL_RAFT_SIM_FROM'] ?? 100_000);

function explain(r: Summary): string {
  return `seed ${r.seed} (${r.nodes} nodes): ${r.error}\n  re-run: npm run test:raft-sim -- --from ${r.seed} --seeds 1 --verbose\n  ${r.trace.slice(-25).join('\n  ')}`;
}

async function mustPass(seed: number, nodes?: 3 | 5): Promise<SimResult> {
  const r = await runSeed(seed, { nodes: nodesForSeed(seed, nodes) });
  assert.ok(r.ok, explain(r));
  return r;
}

test(`simulator: ${CI_SEEDS} seeds from ${CI_FROM} (odd: 3 nodes, even: 5 nodes) keep every invariant and recover`, async () => {
  const failed: string[] = [];
  let acked = 0;
  const seeds = Array.from({ length: CI_SEEDS }, (_, k) => CI_FROM + k);
  // One worker thread per core: the seeds are independent.
  await runSeeds(seeds, { nodes: undefined, windows: 3, verbose: false, workers: os.availableParallelism() }, (r) => {
    acked += r.acked;
    if (!r.ok) failed.push(explain(r));
  });
  assert.deepEqual(failed, []);
  assert.ok(acked > CI_SEEDS * 10, `the workload acknowledged only ${acked} writes`);
});

test('simulator: a seed replays exactly', async () => {
  const a = await runSeed(4242, { nodes: 5 });
  const b = await runSeed(4242, { nodes: 5 });
  assert.equal(a.stats, b.stats);
  assert.deepEqual(a.history, b.history);
});

test('simulator: the history checker catches a stale read', async () => {
  const r = await mustPass(7, 3);
  const { checkLinearizability } = await import('../check/linearizability.js');
  const put = r.history.find((h) => h.kind === 'put' && h.return !== Infinity);
  assert.ok(put !== undefined);
  // A read that completes after the put but sees the value before it must be rejected.
  const bad = [
    { clientId: 'x', kind: 'put' as const, key: 'zz', value: 'v1', output: { ok: true }, call: 0, return: 1 },
    { clientId: 'y', kind: 'put' as const, key: 'zz', value: 'v2', output: { ok: true }, call: 2, return: 3 },
    { clientId: 'z', kind: 'get' as const, key: 'zz', output: { value: 'v1' }, call: 4, return: 5 },
  ];
  assert.equal(checkLinearizability([...r.history, ...bad]).verdict, 'violation');
});

// Regression seeds: each found a bug (see docs/raft.md "Simulator" for the list).
test('regression seed 2 (5 nodes): a forwarded proposal reaching a node without leader is dropped, not thrown', async () => {
  await mustPass(2, 5);
});

test('regression seeds 3, 5, 9 (3 nodes): a new member accepts a snapshot taken before it was added', async () => {
  for (const s of [3, 5, 9]) await mustPass(s, 3);
});

test('regression seeds 1, 4, 7: pre-vote terms are not durable terms (checker)', async () => {
  await mustPass(1, 3);
  await mustPass(4, 5);
  await mustPass(7, 3);
});

test('regression seed 119 (3 nodes): writes pending at the end of a run are unknown, not absent (history)', async () => {
  await mustPass(119, 3);
});

test('regression seed 100133 (3 nodes): a proposal that round-trips to its origin is not treated as local', async () => {
  await mustPass(100133, 3);
});

test('regression seed 5509 (3 nodes): a learner whose snapshot ack and report were lost still catches up', async () => {
  await mustPass(5509, 3);
});

test('regression seed 4288 (5 nodes): a late leader of a lower term is legal (leader completeness by commit term)', async () => {
  await mustPass(4288, 5);
});

test('regression seed 990 (5 nodes): the log-matching check uses the previous term as the batch was cut', async () => {
  await mustPass(990, 5);
});
