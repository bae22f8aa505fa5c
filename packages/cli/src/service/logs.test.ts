import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@shoal/common';
import { linePrefix, parseSince, parseTail } from './logs.js';

test('service logs --tail: all or a number of lines; anything else is refused', () => {
  assert.equal(parseTail('all'), -1);
  assert.equal(parseTail('0'), 0);
  assert.equal(parseTail('25'), 25);
  for (const bad of ['-1', 'ten', '1.5', ''])
    assert.throws(
      () => parseTail(bad),
      (e) => hasCode(e, 'INVALID_ARGUMENT') && /--tail/.test(String(e)),
    );
});

test('service logs --since: timestamps, unix seconds and durations before now', () => {
  const now = Date.parse('2026-11-29T04:00:00Z');
  assert.equal(parseSince('2026-11-29T03:10:00Z', now), '2026-11-29T03:10:00.000Z');
  assert.equal(parseSince('2026-11-29T05:10:00+02:00', now), '2026-11-29T03:10:00.000Z');
  assert.equal(parseSince('2026-11-28', now), '2026-11-28T00:00:00.000Z');
  assert.equal(parseSince('1795924800', now), '2026-11-29T04:00:00.000Z');
  assert.equal(parseSince('10m', now), '2026-11-29T03:50:00.000Z');
  assert.equal(parseSince('1h30m', now), '2026-11-29T02:30:00.000Z');
  assert.equal(parseSince('1.5s', now), '2026-11-29T03:59:58.500Z');
  for (const bad of ['yesterday', '10x', '', '2026-13-45'])
    assert.throws(
      () => parseSince(bad, now),
      (e) => hasCode(e, 'INVALID_ARGUMENT') && /--since/.test(String(e)),
    );
});

test("service logs: docker's line prefix", () => {
  const id = 'abcdefghijklmnopqrstuvwxy';
  const both = { taskIds: true, trunc: true };
  assert.equal(linePrefix(both, 'web', { ID: id, Slot: 2 }, id, 'h1'), 'web.2.abcdefghijkl@h1    | ');
  assert.equal(
    linePrefix({ taskIds: true, trunc: false }, 'web', { ID: id, Slot: 2 }, id, 'h1'),
    `web.2.${id}@h1    | `,
  );
  assert.equal(linePrefix({ taskIds: false, trunc: true }, 'web', { ID: id, Slot: 2 }, id, 'h1'), 'web.2@h1    | ');
  // Global tasks have no slot.
  assert.equal(linePrefix(both, 'agent', { ID: id, Slot: 0 }, id, 'h3'), 'agent.abcdefghijkl@h3    | ');
});
