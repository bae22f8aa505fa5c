/**
 * `network inspect`'s `Containers` (view.ts networkContainers) as Docker's: the local node's
 * endpoints on the network, keyed by container ID, with the plain containers (attachment tasks),
 * the containers of service tasks and, on the ingress network, the node's load-balancer endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Network, Node, Task } from '@shoal/api';
import { networkContainers, networkResource } from './view.js';

const NET: Network = { ID: 'net1', Spec: { Name: 'appnet', Attachable: true } };
const OTHER: Network = { ID: 'net2', Spec: { Name: 'other' } };
const hex = (c: string): string => c.repeat(64);

function attachment(container: string, node: string, addr: string, state = 'running'): Task {
  return {
    ID: `t-${container}`,
    NodeID: node,
    ServiceID: '',
    Spec: { Runtime: 'attachment', NetworkAttachmentSpec: { ContainerID: container } },
    Status: { State: state },
    NetworksAttachments: [{ Network: { ID: NET.ID }, Addresses: [addr] }],
  };
}

function serviceTask(id: string, node: string, slot: number, addr: string, container: string, state = 'running'): Task {
  return {
    ID: id,
    NodeID: node,
    ServiceID: 'svc-id',
    ServiceName: 'web',
    Slot: slot,
    Spec: {},
    Status: { State: state, ...(container ? { ContainerStatus: { ContainerID: container } } : {}) },
    NetworksAttachments: [
      { Network: { ID: OTHER.ID }, Addresses: ['198.19.9.9/24'] },
      { Network: { ID: NET.ID }, Addresses: [addr] },
    ],
  };
}

test('Containers: plain and service-task containers of the local node, keyed by container ID', () => {
  const tasks: Task[] = [
    attachment('c1', 'h1', '198.19.128.4/24'),
    attachment('c2', 'h2', '198.19.128.5/24'), // another node's
    attachment('c3', 'h1', '198.19.128.6/24', 'complete'), // given back
    serviceTask('task1', 'h1', 1, '198.19.128.7/24', hex('b')),
    serviceTask('task2', 'h1', 0, '198.19.128.8/24', hex('a')), // a global service's task
    serviceTask('task3', 'h1', 2, '198.19.128.9/24', ''), // no container yet
    serviceTask('task4', 'h2', 3, '198.19.128.10/24', hex('c')), // another node's
    serviceTask('task5', 'h1', 4, '198.19.128.11/24', hex('d'), 'shutdown'),
  ];
  const ids = new Map([
    ['c1', hex('e')],
    ['c2', hex('f')],
  ]);
  const got = networkContainers(NET, tasks, 'h1', ids);
  assert.deepEqual(got, {
    [hex('a')]: {
      Name: 'web.h1.task2',
      EndpointID: 'task2',
      MacAddress: '02:42:c6:13:80:08',
      IPv4Address: '198.19.128.8/24',
      IPv6Address: '',
    },
    [hex('b')]: {
      Name: 'web.1.task1',
      EndpointID: 'task1',
      MacAddress: '02:42:c6:13:80:07',
      IPv4Address: '198.19.128.7/24',
      IPv6Address: '',
    },
    [hex('e')]: {
      Name: 'c1',
      EndpointID: 't-c1',
      MacAddress: '02:42:c6:13:80:04',
      IPv4Address: '198.19.128.4/24',
      IPv6Address: '',
    },
  });
  assert.deepEqual(Object.keys(got), [hex('a'), hex('b'), hex('e')], 'in key order, as Go prints a map');
  assert.deepEqual(Object.keys(networkContainers(OTHER, tasks, 'h1', ids)), [hex('a'), hex('b')]);
  assert.deepEqual(networkContainers(NET, tasks, '', ids), {}, 'no node known: no entries');
  assert.equal(networkResource(NET, [], networkContainers(NET, tasks, 'h3', ids))['Containers'], null);
});

test('Containers of the ingress network: the local node load-balancer endpoint as ingress-sbox', () => {
  const ingress: Network = { ID: 'ing', Spec: { Name: 'ingress', Ingress: true } };
  const nodes: Node[] = [
    { ID: 'h1', Attachments: [{ Network: { ID: 'ing' }, Addresses: ['198.19.0.2/24'] }] },
    { ID: 'h2', Attachments: [{ Network: { ID: 'ing' }, Addresses: ['198.19.0.3/24'] }] },
  ];
  const task: Task = {
    ...serviceTask('task1', 'h1', 1, '198.19.0.5/24', hex('b')),
    NetworksAttachments: [{ Network: { ID: 'ing' }, Addresses: ['198.19.0.5/24'] }],
  };
  assert.deepEqual(networkContainers(ingress, [task], 'h1', new Map(), nodes), {
    [hex('b')]: {
      Name: 'web.1.task1',
      EndpointID: 'task1',
      MacAddress: '02:42:c6:13:00:05',
      IPv4Address: '198.19.0.5/24',
      IPv6Address: '',
    },
    'ingress-sbox': {
      Name: 'ingress-endpoint',
      EndpointID: 'lb-h1',
      MacAddress: '02:42:c6:13:00:02',
      IPv4Address: '198.19.0.2/24',
      IPv6Address: '',
    },
  });
  // not the ingress network: no load-balancer entry (Shoal has none per node there)
  assert.deepEqual(networkContainers({ ...ingress, Spec: { Name: 'x' } }, [], 'h1', new Map(), nodes), {});
});
