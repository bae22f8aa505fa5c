import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidSpecError } from '../errors.js';
import {
  formatRestartPolicy,
  nextDelay,
  parseRestartPolicy,
  shouldRestart,
  validateRestartPolicy,
} from './restart-policy.js';

test('--restart is parsed with Docker rules', () => {
  assert.deepEqual(parseRestartPolicy('no'), { name: 'no' });
  assert.deepEqual(parseRestartPolicy('always'), { name: 'always' });
  assert.deepEqual(parseRestartPolicy('unless-stopped'), { name: 'unless-stopped' });
  assert.deepEqual(parseRestartPolicy('on-failure'), { name: 'on-failure' });
  assert.deepEqual(parseRestartPolicy('on-failure:5'), { name: 'on-failure', maximumRetryCount: 5 });
  const bad: [string, RegExp][] = [
    ['sometimes', /unknown policy "sometimes"/],
    ['always:2', /can only be used with 'on-failure'/],
    ['unless-stopped:1', /can only be used with 'on-failure'/],
    ['on-failure:-1', /cannot be negative/],
    ['on-failure:x', /must be an integer/],
    ['on-failure:1:2', /expected NAME\[:max-retries\]/],
    ['', /unknown policy ""/],
  ];
  for (const [v, re] of bad) {
    assert.throws(
      () => parseRestartPolicy(v),
      (e: unknown) => e instanceof InvalidSpecError && re.test(e.message),
      v,
    );
  }
  assert.throws(() => validateRestartPolicy({ name: 'always' }, true), /Conflicting options: --restart and --rm/);
  validateRestartPolicy({ name: 'no' }, true);
  assert.equal(formatRestartPolicy({ name: 'on-failure', maximumRetryCount: 3 }), 'on-failure:3');
  assert.equal(formatRestartPolicy(undefined), 'no');
});

test('the restart decision and the backoff follow Docker', () => {
  assert.equal(shouldRestart({ name: 'always' }, 0, true, 9), true);
  assert.equal(shouldRestart({ name: 'unless-stopped' }, 0, false, 0), true);
  assert.equal(shouldRestart({ name: 'unless-stopped' }, 1, true, 0), false);
  assert.equal(shouldRestart({ name: 'on-failure' }, 0, false, 0), false);
  assert.equal(shouldRestart({ name: 'on-failure' }, 1, false, 100), true);
  assert.equal(shouldRestart({ name: 'on-failure', maximumRetryCount: 2 }, 1, false, 1), true);
  assert.equal(shouldRestart({ name: 'on-failure', maximumRetryCount: 2 }, 1, false, 2), false);
  assert.equal(shouldRestart({ name: 'no' }, 1, false, 0), false);
  assert.equal(shouldRestart(undefined, 1, false, 0), false);
  // 100 ms, doubling, capped at one minute, reset after a 10 s run
  const delays: number[] = [];
  let d = 0;
  for (let i = 0; i < 12; i++) delays.push((d = nextDelay(d, 50)));
  assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 800]);
  assert.equal(delays.at(-1), 60_000);
  assert.equal(nextDelay(60_000, 10_000), 100);
});
