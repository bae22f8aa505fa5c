import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { testEngine } from '../container/test-support.js';
import { parseLogLine, sinceKey } from './reader.js';

test('logs rotate by size; tail, since and follow read across files', { timeout: 60_000 }, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const { engine } = te;
  // ~ 3000 lines of ~60 bytes per record with a 16 KiB file and 3 files: older lines are dropped
  const id = await engine.run({
    image: 'busybox',
    cmd: ['sh', '-c', 'seq 1 3000; echo last >&2'],
    logMaxBytes: 16 * 1024,
    logMaxFiles: 3,
  });
  await engine.wait(id);
  const files = readdirSync(engine.store.dir(id))
    .filter((f) => f.startsWith('container.log'))
    .sort();
  assert.deepEqual(files, ['container.log', 'container.log.1', 'container.log.2']);
  const all: string[] = [];
  for await (const e of engine.logs(id)) all.push(e.line.toString());
  assert.equal(all.at(-1), 'last');
  assert.ok(all.length < 3000 && all.length > 500, `kept ${all.length}`);
  const nums = all.slice(0, -1).map(Number);
  assert.deepEqual(
    nums,
    nums.map((_, i) => (nums[0] ?? 0) + i),
    'contiguous, in order across files',
  );
  const tail: string[] = [];
  for await (const e of engine.logs(id, { tail: 3 })) tail.push(`${e.stream}:${e.line.toString()}`);
  assert.deepEqual(tail, ['stdout:2999', 'stdout:3000', 'stderr:last']);
  const none: string[] = [];
  for await (const e of engine.logs(id, { since: new Date(Date.now() + 60_000) })) none.push(e.line.toString());
  assert.deepEqual(none, []);
  await engine.remove(id);

  // follow: lines as they come, ends when the container exits
  const f = await engine.run({
    image: 'busybox',
    cmd: ['sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done; exit 2'],
  });
  const followed: string[] = [];
  for await (const e of engine.logs(f, { follow: true })) followed.push(e.line.toString());
  assert.deepEqual(followed, ['line1', 'line2', 'line3', 'line4', 'line5']);
  assert.equal((await engine.wait(f)).exitCode, 2);
  const mid: string[] = [];
  const entries = [];
  for await (const e of engine.logs(f)) entries.push(e);
  for await (const e of engine.logs(f, { since: entries[2]?.time })) mid.push(e.line.toString());
  assert.deepEqual(mid, ['line3', 'line4', 'line5']);
  await engine.remove(f);
});

test('log line parsing', () => {
  const e = parseLogLine(Buffer.from('2026-01-02T03:04:05.000000001Z stderr P a b c'));
  assert.deepEqual(e && { ...e, line: e.line.toString() }, {
    time: '2026-01-02T03:04:05.000000001Z',
    stream: 'stderr',
    partial: true,
    line: 'a b c',
  });
  assert.equal(parseLogLine(Buffer.from('garbage')), undefined);
  assert.equal(sinceKey(new Date('2026-01-02T03:04:05.123Z')), '2026-01-02T03:04:05.123000000Z');
  assert.equal(sinceKey(0), '1970-01-01T00:00:00.000000000Z');
});
