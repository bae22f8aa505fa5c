/**
 * Real-process fault test: 3 KV processes on loopback, concurrent clients doing put/get/cas
 * while a random member is kill -9'd and restarted every few seconds. Asserts that no
 * acknowledged write is lost and that the recorded history is linearizable.
 * Duration: SHOAL_RAFT_FAULT_SECONDS (default 15).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { KvProcessCluster } from './process-cluster.js';
import { KvClient } from './client.js';
import { checkLinearizability, type KvOperation } from '../check/linearizability.js';
import { KvRequestError, KvTimeoutError } from '../errors.js';

/** A KV call failed in a way the test expects under faults (timeout, refusal): nothing else is ignored. */
function kvFailure(err: unknown): undefined {
  if (err instanceof KvTimeoutError || err instanceof KvRequestError) return undefined;
  throw err;
}

const SECONDS = Number(process.env['SHOAL_RAFT_FAULT_SECONDS'] ?? 15);

test(
  `kill -9 a random member every few seconds for ${SECONDS}s: no acked write lost, history linearizable`,
  { timeout: (SECONDS + 120) * 1000 },
  async (t) => {
    const cluster = new KvProcessCluster({ size: 3, segmentMiB: 4, snapshotEntries: 2000 });
    t.after(() => cluster.stop());
    await cluster.start();
    const deadline = performance.now() + SECONDS * 1000;
    const history: KvOperation[] = [];
    const acked = new Map<string, string>(); // unique keys written once, acknowledged
    const clients: KvClient[] = [];
    t.after(() => clients.forEach((c) => c.close()));
    const keys = ['r0', 'r1', 'r2', 'r3'];
    let kills = 0;
    let uniq = 0;

    const worker = async (w: number): Promise<void> => {
      const c = new KvClient({ endpoints: cluster.clientAddrs, timeoutMs: 8000 });
      clients.push(c);
      while (performance.now() < deadline) {
        const key = keys[Math.floor(Math.random() * keys.length)]!;
        const r = Math.random();
        const call = performance.now();
        if (w === 0) {
          // The sentinel writer: unique keys, each written once; every ack must survive.
          const k = `u${uniq++}`;
          const value = `w${w}-${k}`;
          try {
            await c.put(k, value);
            acked.set(k, value);
          } catch (err) {
            kvFailure(err); // outcome unknown: not counted
          }
          continue;
        }
        if (r < 0.4) {
          const value = `w${w}-${call.toFixed(3)}`;
          try {
            await c.put(key, value);
            history.push({ clientId: w, kind: 'put', key, value, output: {}, call, return: performance.now() });
          } catch (err) {
            kvFailure(err);
            history.push({ clientId: w, kind: 'put', key, value, call, return: Infinity });
          }
        } else if (r < 0.75) {
          try {
            const g = await c.get(key);
            const value = g.value === null ? null : Buffer.from(g.value).toString();
            history.push({ clientId: w, kind: 'get', key, output: { value }, call, return: performance.now() });
          } catch (err) {
            kvFailure(err); // an unanswered read constrains nothing
          }
        } else {
          const g = await c.get(key).catch(kvFailure);
          const expected = g === undefined || g.value === null ? null : Buffer.from(g.value).toString();
          const value = `c${w}-${call.toFixed(3)}`;
          const call2 = performance.now();
          try {
            const res = await c.cas(key, expected, value);
            history.push({
              clientId: w,
              kind: 'cas',
              key,
              expected,
              value,
              output: { ok: res.ok },
              call: call2,
              return: performance.now(),
            });
          } catch (err) {
            kvFailure(err);
            history.push({ clientId: w, kind: 'cas', key, expected, value, call: call2, return: Infinity });
          }
        }
      }
    };

    const nemesis = async (): Promise<void> => {
      while (performance.now() < deadline - 2000) {
        await sleep(1500 + Math.random() * 2000);
        const victim = Math.floor(Math.random() * 3);
        await cluster.kill(victim);
        kills++;
        await sleep(300 + Math.random() * 1200);
        await cluster.launch(victim);
      }
    };

    await Promise.all([nemesis(), ...Array.from({ length: 6 }, (_, w) => worker(w))]);
    for (let i = 0; i < 3; i++) if (!cluster.isRunning(i)) await cluster.launch(i);

    // After healing: final reads of every register key (part of the history) and every sentinel.
    const reader = new KvClient({ endpoints: cluster.clientAddrs, timeoutMs: 20000 });
    clients.push(reader);
    for (const key of keys) {
      const call = performance.now();
      const g = await reader.get(key);
      const value = g.value === null ? null : Buffer.from(g.value).toString();
      history.push({ clientId: 'final', kind: 'get', key, output: { value }, call, return: performance.now() });
    }
    let lost = 0;
    for (const [k, v] of acked) {
      const g = await reader.get(k);
      if (g.value === null || Buffer.from(g.value).toString() !== v) lost++;
    }
    t.diagnostic(`kills=${kills} acked sentinels=${acked.size} register ops=${history.length}`);
    assert.ok(kills >= Math.max(1, Math.floor(SECONDS / 8)), `members were killed (${kills})`);
    assert.ok(acked.size > 0 && history.length > 50, 'the clients made progress');
    assert.equal(lost, 0, `${lost} acknowledged writes lost`);
    const verdict = checkLinearizability(history);
    assert.equal(verdict.verdict, 'ok', verdict.verdict === 'violation' ? verdict.message : JSON.stringify(verdict));
  },
);
