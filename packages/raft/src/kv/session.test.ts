/**
 * Session expiry end to end (3 KV processes): a client idle past the session TTL (measured on the
 * log's clock, advanced by another client's writes) gets its next write refused by the servers as
 * "session expired", starts a new session and the write then applies exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { KvProcessCluster } from './process-cluster.js';
import { KvClient } from './client.js';

test('an idle client whose session expired renews it and its write applies once', { timeout: 120000 }, async (t) => {
  const cluster = new KvProcessCluster({ size: 3, sessionTtlMs: 1500 });
  t.after(() => cluster.stop());
  await cluster.start();
  const idle = new KvClient({ endpoints: cluster.clientAddrs, timeoutMs: 30000 });
  const busy = new KvClient({ endpoints: cluster.clientAddrs, timeoutMs: 30000 });
  t.after(() => {
    idle.close();
    busy.close();
  });
  await idle.put('counter', '1');
  const firstId = idle.clientId;
  // Another client keeps writing for more than the TTL: the log's clock moves on.
  const until = Date.now() + 3000;
  for (let i = 0; Date.now() < until; i++) {
    await busy.put(`busy-${i % 10}`, String(i));
    await sleep(20);
  }
  const r = await idle.cas('counter', '1', '2');
  assert.equal(r.ok, true, 'the write applied under the new session');
  assert.notEqual(idle.clientId, firstId, 'the client started a new session');
  assert.equal(Buffer.from((await idle.get('counter')).value!).toString(), '2');
  // The new session works as before: a retried write is still deduplicated by (client, seq).
  await idle.put('after', 'x');
  assert.equal(Buffer.from((await busy.get('after')).value!).toString(), 'x');
});
