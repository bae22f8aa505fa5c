// The interface names of `network connect` legs (sandbox-legs.ts): the first free `ethN` after
// the sandbox's own overlays and its gateway leg, and a name freed by a disconnect is reused.
// The kernel side is checked end to end by test/attach-connect-lab.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VipBalancer } from '@shoal/network';
import { freeIfname, usedIfnames } from './sandbox-legs.js';
import type { TaskSandbox } from './task-sandbox.js';

function sandbox(first: number, legs: string[]): TaskSandbox {
  const overlays: TaskSandbox['overlays'] = [];
  for (let i = 0; i < first; i++)
    overlays.push({ networkId: `n${i}`, endpointId: `t.n${i}`, address: `198.18.${i}.2/24`, ingress: false });
  for (const [i, ifname] of legs.entries())
    overlays.push({
      networkId: `l${i}`,
      endpointId: `l.l${i}`,
      address: `198.19.${i}.2/24`,
      ingress: false,
      leg: `l${i}`,
      ifname,
    });
  return {
    taskId: 't',
    netns: 'shoal-t-x-t',
    path: '/run/netns/shoal-t-x-t',
    overlays,
    gateway: { ifname: `eth${first}`, address: '198.19.255.2/24', egress: true },
    vip: new VipBalancer('/run/netns/shoal-t-x-t'),
    vipKey: undefined,
  };
}

test('a leg takes the first free ethN: after the first networks and the gateway leg', () => {
  assert.deepEqual([...usedIfnames(sandbox(1, []))].sort(), ['eth0', 'eth1']);
  assert.equal(freeIfname(sandbox(1, [])), 'eth2', 'Docker numbers a connected network after the gateway leg');
  assert.equal(freeIfname(sandbox(2, [])), 'eth3');
  assert.equal(freeIfname(sandbox(1, ['eth2', 'eth3'])), 'eth4');
  assert.equal(freeIfname(sandbox(1, ['eth3'])), 'eth2', 'a name a disconnect freed is taken again');
});
