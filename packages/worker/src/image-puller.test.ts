/**
 * ImagePuller alone, on a stand-in engine that counts registry pulls: one pull for a burst of
 * tasks, reuse within the freshness window only, digest references the node has are not pulled,
 * failures are shared by the waiters of that pull but not remembered, and one waiter giving up
 * does not stop the pull for the others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@shoal/common';
import { ImageNotFoundError, type Engine } from '@shoal/engine';
import { ImagePuller } from './image-puller.js';

const TAG = '198.18.0.1:5000/shoal-test/busybox:1';
const PINNED = `198.18.0.1:5000/shoal-test/busybox@sha256:${'a'.repeat(64)}`;

interface Stand {
  engine: Engine;
  pulls: string[];
  local: Set<string>;
  /** Makes the next pulls wait until `release()`; `fail` makes them reject. */
  hold(fail?: Error): { release(): void };
}

function standIn(): Stand {
  const pulls: string[] = [];
  const local = new Set<string>();
  let gate: Promise<void> | undefined;
  let failure: Error | undefined;
  const images = {
    resolve: (ref: string) =>
      local.has(ref) ? Promise.resolve({ id: 'x' }) : Promise.reject(new ImageNotFoundError(ref)),
  };
  const service = {
    root: '/nonexistent',
    async pull(ref: string) {
      pulls.push(ref);
      await gate;
      if (failure) throw failure;
      local.add(ref);
      return { id: 'x' };
    },
  };
  const engine = { images: () => images, localImages: () => service } as unknown as Engine;
  return {
    engine,
    pulls,
    local,
    hold(fail?: Error) {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      failure = fail;
      return { release };
    },
  };
}

const never = new AbortController().signal;

test('image puller: a burst of tasks of one image makes one registry pull', async () => {
  const s = standIn();
  const puller = new ImagePuller({ engine: s.engine, logger: silentLogger() });
  const h = s.hold();
  const all = Array.from({ length: 10 }, () => puller.pull(TAG, '', never));
  await new Promise((resolve) => setImmediate(resolve));
  h.release();
  await Promise.all(all);
  assert.deepEqual(s.pulls, [TAG]);
  // another image is another pull
  await puller.pull(`${TAG}-other`, '', never);
  assert.deepEqual(s.pulls, [TAG, `${TAG}-other`]);
});

test('image puller: a pull is reused only within its freshness window and while the image is here', async () => {
  const s = standIn();
  let now = 1_000_000;
  const puller = new ImagePuller({ engine: s.engine, logger: silentLogger(), freshMs: 10_000, now: () => now });
  await puller.pull(TAG, '', never);
  now += 9_000;
  await puller.pull(TAG, '', never);
  assert.equal(s.pulls.length, 1);
  now += 2_000; // 11 s after the pull: the tag may have moved
  await puller.pull(TAG, '', never);
  assert.equal(s.pulls.length, 2);
  s.local.delete(TAG); // removed from the node meanwhile
  await puller.pull(TAG, '', never);
  assert.equal(s.pulls.length, 3);
});

test('image puller: a digest reference the node has is not pulled; one it lacks is', async () => {
  const s = standIn();
  const puller = new ImagePuller({ engine: s.engine, logger: silentLogger() });
  await puller.pull(PINNED, '', never);
  assert.deepEqual(s.pulls, [PINNED]);
  const fresh = new ImagePuller({ engine: s.engine, logger: silentLogger(), freshMs: 0 });
  await fresh.pull(PINNED, '', never);
  assert.equal(s.pulls.length, 1);
});

test('image puller: a failed pull fails its waiters, is not remembered, and a waiter that gives up stops only itself', async () => {
  const s = standIn();
  const puller = new ImagePuller({ engine: s.engine, logger: silentLogger() });
  const h = s.hold(new Error('manifest unknown'));
  const a = puller.pull(TAG, '', never);
  const b = puller.pull(TAG, '', never);
  h.release();
  await assert.rejects(a, /manifest unknown/);
  await assert.rejects(b, /manifest unknown/);
  assert.equal(s.pulls.length, 1);

  const h2 = s.hold();
  const ac = new AbortController();
  const quitting = puller.pull(TAG, '', ac.signal);
  const staying = puller.pull(TAG, '', never);
  ac.abort(new Error('task removed'));
  await assert.rejects(quitting, /task removed/);
  h2.release();
  await staying;
  assert.equal(s.pulls.length, 2);
  assert.ok(s.local.has(TAG));
});
