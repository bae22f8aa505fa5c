import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CertRenewer, isRenewalDue, renewalDelay, renewalTime, type Validity } from './renewal.js';
import { FakeClock } from './test-util.js';
import { silentLogger } from '@shoal/common';

const DAY = 86400_000;
const T0 = Date.UTC(2026, 0, 1);
const cert = (from: number, days: number): Validity => ({
  notBefore: new Date(from),
  notAfter: new Date(from + days * DAY),
});

test('renewal point is between 50% and 80% of the validity, uniformly from the random draw', () => {
  const v = cert(T0, 90);
  assert.equal(
    renewalTime(v, () => 0),
    T0 + 45 * DAY,
  );
  assert.equal(
    renewalTime(v, () => 1),
    T0 + 72 * DAY,
  );
  assert.equal(
    renewalTime(v, () => 0.5),
    T0 + 58.5 * DAY,
  );
  for (let i = 0; i < 200; i++) {
    const t = renewalTime(v);
    assert.ok(t >= T0 + 45 * DAY && t <= T0 + 72 * DAY);
  }
  assert.equal(
    renewalDelay(v, T0 + 10 * DAY, () => 0),
    35 * DAY,
  );
  assert.equal(
    renewalDelay(v, T0 + 80 * DAY, () => 0.3),
    0,
    'past the point: renew at once',
  );
  assert.equal(renewalDelay(v, T0 + 100 * DAY), 0, 'expired: renew at once');
  assert.equal(isRenewalDue(v, T0 + 44 * DAY), false);
  assert.equal(isRenewalDue(v, T0 + 45 * DAY), true);
});

test('renewer: renews at the scheduled point, then for each new certificate; failures retry with backoff', async () => {
  const clock = new FakeClock(T0);
  let fail = 0;
  const attempts: number[] = [];
  const renewer = new CertRenewer({
    current: cert(T0, 90),
    clock,
    random: () => 0,
    logger: silentLogger(),
    backoff: { initialMs: 1000, maxMs: 8000, random: () => 1 },
    renew: () => {
      attempts.push(clock.now());
      if (fail > 0) {
        fail--;
        return Promise.reject(new Error('manager unreachable'));
      }
      return Promise.resolve(cert(clock.now(), 90));
    },
  });
  renewer.start();
  assert.equal(renewer.nextAttemptAt, T0 + 45 * DAY);
  // Node timers hold at most 2^31-1 ms (a longer one fires at once): the wait is made in steps
  assert.deepEqual(clock.pending(), [T0 + 2 ** 31 - 1]);
  clock.advance(45 * DAY - 1);
  assert.equal(attempts.length, 0, 'nothing before the renewal point');
  fail = 3;
  clock.advance(1);
  await new Promise((r) => setImmediate(r));
  assert.equal(renewer.failures, 1);
  const t1 = T0 + 45 * DAY;
  assert.deepEqual(clock.pending(), [t1 + 1000]);
  clock.advance(1000);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(clock.pending(), [t1 + 1000 + 2000], 'backoff doubles');
  clock.advance(2000);
  await new Promise((r) => setImmediate(r));
  clock.advance(4000);
  await new Promise((r) => setImmediate(r));
  assert.equal(renewer.renewals, 1);
  assert.equal(renewer.failures, 0);
  const t2 = t1 + 7000;
  assert.deepEqual(attempts, [t1, t1 + 1000, t1 + 3000, t2]);
  assert.equal(renewer.nextAttemptAt, t2 + 45 * DAY, 'next renewal from the new certificate');

  await renewer.renewNow();
  assert.equal(renewer.renewals, 2, 'renewNow (promote/demote) renews at once');
  assert.equal(renewer.nextAttemptAt, t2 + 45 * DAY);
  assert.equal(clock.pending().length, 1);
  renewer.stop();
  assert.deepEqual(clock.pending(), []);
});

test('renewer: an already expired certificate is renewed at once', async () => {
  const clock = new FakeClock(T0 + 200 * DAY);
  let calls = 0;
  const renewer = new CertRenewer({
    current: cert(T0, 90),
    clock,
    logger: silentLogger(),
    renew: () => {
      calls++;
      return Promise.resolve(cert(clock.now(), 90));
    },
  });
  renewer.start();
  clock.advance(0);
  await new Promise((r) => setImmediate(r));
  assert.equal(calls, 1);
  renewer.stop();
});
