import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatConnectedNetworks, parseConnectedNetworks, withConnectedNetwork } from './connected-networks.js';

test('connected networks: kept in order, one entry per network, an empty list removes the label', () => {
  let l = parseConnectedNetworks(undefined);
  assert.deepEqual(l, []);
  l = withConnectedNetwork(l, { network: 'netb', aliases: ['c1', 'cb'] });
  l = withConnectedNetwork(l, { network: 'netc', aliases: ['c1'] });
  // connected again (after a disconnect it was dropped; or the same entry written at start)
  l = withConnectedNetwork(l, { network: 'netb', aliases: ['c1'] });
  const label = formatConnectedNetworks(l);
  assert.deepEqual(parseConnectedNetworks(label), [
    { network: 'netb', aliases: ['c1'] },
    { network: 'netc', aliases: ['c1'] },
  ]);
  assert.equal(formatConnectedNetworks(l.filter((e) => e.network !== 'netb' && e.network !== 'netc')), undefined);
});

test('connected networks: an unreadable label is no network', () => {
  assert.deepEqual(parseConnectedNetworks('{'), []);
  assert.deepEqual(parseConnectedNetworks('{"network":"x"}'), []);
  assert.deepEqual(parseConnectedNetworks('[{"network":""},{"aliases":[]},{"network":"n","aliases":[1,"a"]}]'), [
    { network: 'n', aliases: ['a'] },
  ]);
});
