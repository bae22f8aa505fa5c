// The pure rules that turn NetworkState assignments into peers, DNS records, VIP rules and
// published ports (the controller applies them to the kernel; test/worker-network.test.ts
// checks that on real namespaces).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkState, Task } from '@shoal/api';
import {
  dnsRecords,
  hostPorts,
  ingressPorts,
  overlapsGateway,
  overlaySpec,
  remotePeers,
  servedThroughService,
  vipServices,
} from './network-views.js';

const network = {
  ID: 'n1',
  Spec: { Name: 'front' },
  DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4097' } },
  IPAMOptions: { Configs: [{ Subnet: '198.19.200.0/24', Gateway: '198.19.200.1' }] },
};

const state: NetworkState = {
  Network: network,
  Endpoints: [
    {
      ID: 'ta',
      NodeID: 'me',
      NodeAddr: '198.18.1.1',
      Address: '198.19.200.5/24',
      ServiceID: 's1',
      ServiceName: 'web',
      Slot: 1,
      Aliases: ['web-a'],
      Running: true,
    },
    {
      ID: 'tb',
      NodeID: 'other',
      NodeAddr: '198.18.1.2',
      Address: '198.19.200.6/24',
      ServiceID: 's1',
      ServiceName: 'web',
      Slot: 2,
      Aliases: ['web-b'],
      Running: true,
    },
    {
      ID: 'tc',
      NodeID: 'other',
      NodeAddr: '198.18.1.2',
      Address: '198.19.200.7/24',
      ServiceID: 's1',
      ServiceName: 'web',
      Slot: 3,
      Running: false,
    },
    {
      ID: 'td',
      NodeID: 'other',
      NodeAddr: '198.18.1.2',
      Address: '198.19.200.8/24',
      ServiceID: 's2',
      ServiceName: 'db',
      Slot: 1,
      Running: true,
    },
  ],
  Services: [
    {
      ServiceID: 's1',
      ServiceName: 'web',
      Mode: 'vip',
      VIP: '198.19.200.2/24',
      Aliases: ['www'],
      Ports: [
        { Protocol: 'tcp', TargetPort: 80, PublishedPort: 30080, PublishMode: 'ingress' },
        { Protocol: 'tcp', TargetPort: 81, PublishedPort: 8081, PublishMode: 'host' },
      ],
    },
    { ServiceID: 's2', ServiceName: 'db', Mode: 'dnsrr' },
  ],
};

test('overlay spec from the allocated network; an unallocated one is refused with its name', () => {
  assert.deepEqual(overlaySpec(network), { id: 'n1', vni: 4097, subnet: '198.19.200.0/24', gateway: '198.19.200.1' });
  assert.throws(() => overlaySpec({ ID: 'n2', Spec: { Name: 'raw' } }), /raw \(n2\) is not allocated/);
});

test('peers are the endpoints on other nodes, running or not', () => {
  assert.deepEqual(remotePeers(state, 'me'), [
    { vtep: '198.18.1.2', address: '198.19.200.6' },
    { vtep: '198.18.1.2', address: '198.19.200.7' },
    { vtep: '198.18.1.2', address: '198.19.200.8' },
  ]);
});

test('DNS: VIP for vip mode, tasks for dnsrr and tasks.NAME, aliases and task names; only running tasks', () => {
  const byName = new Map<string, string[]>();
  for (const r of dnsRecords(state)) byName.set(r.name, [...(byName.get(r.name) ?? []), r.address]);
  assert.deepEqual(byName.get('web'), ['198.19.200.2']);
  assert.deepEqual(byName.get('www'), ['198.19.200.2']);
  assert.deepEqual(byName.get('tasks.web'), ['198.19.200.5', '198.19.200.6']);
  assert.deepEqual(byName.get('tasks.www'), ['198.19.200.5', '198.19.200.6']);
  assert.deepEqual(byName.get('db'), ['198.19.200.8']);
  assert.deepEqual(byName.get('web-b'), ['198.19.200.6']);
  assert.deepEqual(byName.get('web.2.tb'), ['198.19.200.6']);
  assert.equal(byName.get('web.3.tc'), undefined, 'a task that does not run has no name');
});

test('VIPs: vip-mode services over their running tasks', () => {
  assert.deepEqual(vipServices(state), [{ vip: '198.19.200.2/24', backends: ['198.19.200.5', '198.19.200.6'] }]);
});

test('published ports: ingress mode to running tasks, host mode to the local task', () => {
  assert.deepEqual(ingressPorts(state), [
    { protocol: 'tcp', publishedPort: 30080, targetPort: 80, backends: ['198.19.200.5', '198.19.200.6'] },
  ]);
  assert.deepEqual(hostPorts(state.Services?.[0]?.Ports, '198.19.255.9/24'), [
    { protocol: 'tcp', publishedPort: 8081, targetPort: 81, backends: ['198.19.255.9'] },
  ]);
  assert.throws(
    () =>
      ingressPorts({
        ...state,
        Services: [{ ServiceID: 's1', Ports: [{ Protocol: 'sctp', PublishedPort: 1, TargetPort: 1 }] }],
      }),
    /only tcp and udp/,
  );
});

test('stopping: a task is still served through its service while the service is on one of its networks', () => {
  const other: NetworkState = { Network: { ...network, ID: 'n2' }, Endpoints: [], Services: [] };
  const states = new Map([
    ['n1', state],
    ['n2', other],
  ]);
  const task = (serviceId: string, nets: string[]): Task => ({
    ID: 'ta',
    ServiceID: serviceId,
    NetworksAttachments: nets.map((id) => ({ Network: { ID: id }, Addresses: ['198.19.200.5/24'] })),
  });
  assert.equal(servedThroughService(states, task('s1', ['n1'])), true, 'its VIP on n1: others may still send to it');
  assert.equal(servedThroughService(states, task('s2', ['n2', 'n1'])), true, 'dnsrr: its names on n1');
  assert.equal(servedThroughService(states, task('gone', ['n1', 'n2'])), false, 'a removed service is on none');
  assert.equal(servedThroughService(states, task('', ['n1'])), false, 'no service: no VIP and no service name');
  assert.equal(servedThroughService(states, task('gone', ['n3'])), true, 'a network whose state is unknown here');
});

test('an overlay subnet clashes with the gateway bridge subnet exactly when the ranges share an address', () => {
  assert.equal(overlapsGateway('198.19.255.0/24', '198.19.255.0/24'), true);
  assert.equal(overlapsGateway('198.19.254.0/23', '198.19.255.0/24'), true, 'the overlay holds the bridge');
  assert.equal(overlapsGateway('198.19.255.128/25', '198.19.255.0/24'), true, 'the bridge holds the overlay');
  assert.equal(overlapsGateway('198.19.128.0/24', '198.19.255.0/24'), false);
  assert.equal(overlapsGateway('198.19.191.0/24', '198.19.255.0/24'), false, 'the last /24 of the lab pool');
});
