import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Network, bytes } from './test-harness.js';

test('smoke: 3 nodes elect and replicate', () => {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  assert.equal(net.leader(), 'a');
  net.get('a').node.propose(bytes('x'));
  net.stabilize();
  for (const id of ['a', 'b', 'c']) assert.deepEqual(net.appliedData(id), ['x']);
});
