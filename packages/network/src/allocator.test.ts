// The network allocator: subnets from the cluster pools, user subnets with overlap detection,
// VNIs, task addresses and VIPs, exhaustion, and restore from store objects (through the real
// protobuf encoding) without ever handing out an address twice. Pools are inside 198.19.0.0/16
// only (documentation/benchmark space), never the 10/8 default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Network as NetworkMsg,
  Service as ServiceMsg,
  Task as TaskMsg,
  type Network,
  type Service,
  type Task,
} from '@shoal/api';
import {
  AddressInUseError,
  AddressPool,
  AddressesExhaustedError,
  InvalidAddressError,
  NetworkAllocator,
  NetworkNotFoundError,
  PoolExhaustedError,
  RestoreConflictError,
  SubnetOverlapError,
  VXLAN_ID_OPTION,
  VniInUseError,
  DEFAULT_ADDR_POOL,
  DEFAULT_SUBNET_SIZE,
} from './index.js';

const POOL = ['198.19.128.0/17'];

function net(
  id: string,
  ipam?: { Subnet?: string; Gateway?: string; Range?: string },
  opts?: Record<string, string>,
): Network {
  return {
    ID: id,
    Spec: {
      Name: `n-${id}`,
      DriverConfiguration: { Name: 'overlay', ...(opts ? { Options: opts } : {}) },
      ...(ipam ? { IPAMOptions: { Configs: [ipam] } } : {}),
    },
  };
}

function task(id: string, ...networks: string[]): Task {
  return { ID: id, NetworksAttachments: networks.map((n) => ({ Network: { ID: n } })) };
}

function subnetOf(n: Network): string | undefined {
  return n.IPAMOptions?.Configs?.[0]?.Subnet;
}

test("Docker's defaults: 10.0.0.0/8 in /24s (the constant only; tests never allocate from it)", () => {
  assert.deepEqual(DEFAULT_ADDR_POOL, ['10.0.0.0/8']);
  assert.equal(DEFAULT_SUBNET_SIZE, 24);
});

test('networks get consecutive /24s of the pool, gateway .1 and VNIs from 4096', () => {
  const a = new NetworkAllocator({ defaultAddrPool: POOL, subnetSize: 24 });
  const n1 = a.allocateNetwork(net('n1'));
  const n2 = a.allocateNetwork(net('n2'));
  assert.deepEqual(n1.IPAMOptions, {
    Driver: { Name: 'default' },
    Configs: [{ Subnet: '198.19.128.0/24', Gateway: '198.19.128.1' }],
  });
  assert.equal(subnetOf(n2), '198.19.129.0/24');
  assert.equal(n1.DriverState?.Options?.[VXLAN_ID_OPTION], '4096');
  assert.equal(n2.DriverState?.Options?.[VXLAN_ID_OPTION], '4097');
  assert.equal(n1.DriverState?.Name, 'overlay');
  // idempotent: the same network again changes nothing
  assert.deepEqual(a.allocateNetwork(net('n1')), n1);
  // a user subnet in the middle of the pool is skipped by later pool allocations
  const u = a.allocateNetwork(
    net('u', { Subnet: '198.19.130.0/23', Gateway: '198.19.131.254', Range: '198.19.131.0/25' }),
  );
  assert.deepEqual(u.IPAMOptions?.Configs, [
    { Subnet: '198.19.130.0/23', Gateway: '198.19.131.254', Range: '198.19.131.0/25' },
  ]);
  assert.equal(subnetOf(a.allocateNetwork(net('n3'))), '198.19.132.0/24');
  // a released subnet and VNI are taken again first
  a.releaseNetwork('n2');
  const n4 = a.allocateNetwork(net('n4'));
  assert.equal(subnetOf(n4), '198.19.129.0/24');
  assert.equal(n4.DriverState?.Options?.[VXLAN_ID_OPTION], '4097');
});

test('the mask length sets the subnet size; bad pool options are refused with the flag named', () => {
  const a = new NetworkAllocator({ defaultAddrPool: ['198.19.200.0/22'], subnetSize: 26 });
  assert.equal(subnetOf(a.allocateNetwork(net('x'))), '198.19.200.0/26');
  assert.equal(subnetOf(a.allocateNetwork(net('y'))), '198.19.200.64/26');
  assert.throws(() => new AddressPool([], 24), /--default-addr-pool: the pool list is empty/);
  assert.throws(
    () => new AddressPool(['198.19.128.0/25'], 24),
    /--default-addr-pool 198\.19\.128\.0\/25: smaller than one \/24/,
  );
  assert.throws(() => new AddressPool(POOL, 31), /--default-addr-pool-mask-length 31/);
  assert.throws(
    () => new AddressPool(['198.19.128.5/17'], 24),
    /host bits are set \(did you mean 198\.19\.128\.0\/17\?\)/,
  );
  assert.throws(() => new AddressPool(['198.19.128.0/17', '198.19.192.0/18'], 24), SubnetOverlapError);
  assert.throws(() => new AddressPool(['198.19.300.0/24'], 24), /not an IPv4 address/);
});

test('an overlapping subnet is refused with both subnets named, and changes nothing', () => {
  const a = new NetworkAllocator({ defaultAddrPool: POOL });
  a.allocateNetwork(net('n1'));
  a.allocateNetwork(net('mine', { Subnet: '198.19.140.0/24' }));
  assert.throws(
    () => a.allocateNetwork(net('bad', { Subnet: '198.19.0.0/16' })),
    (err: unknown) =>
      err instanceof SubnetOverlapError &&
      err.code === 'NETWORK_SUBNET_OVERLAP' &&
      /subnet 198\.19\.0\.0\/16 overlaps 198\.19\.128\.0\/24 of network n-n1/.test(err.message),
  );
  assert.throws(
    () => a.allocateNetwork(net('bad2', { Subnet: '198.19.140.128/25' })),
    /overlaps 198\.19\.140\.0\/24 of network n-mine/,
  );
  assert.equal(a.isAllocated('bad'), false);
  assert.equal(a.isAllocated('bad2'), false);
  // nothing was taken by the failures: the next network gets the next /24 and VNI 4098
  const next = a.allocateNetwork(net('n2'));
  assert.equal(subnetOf(next), '198.19.129.0/24');
  assert.equal(next.DriverState?.Options?.[VXLAN_ID_OPTION], '4098');
});

test('bad subnet, gateway and ip-range are refused naming the value', () => {
  const a = new NetworkAllocator({ defaultAddrPool: POOL });
  assert.throws(() => a.allocateNetwork(net('a', { Subnet: '198.19.1.7/24' })), /host bits are set/);
  assert.throws(
    () => a.allocateNetwork(net('a', { Subnet: '198.19.1.0/24', Gateway: '198.19.2.1' })),
    /gateway 198\.19\.2\.1: not inside subnet/,
  );
  assert.throws(() => a.allocateNetwork(net('a', { Subnet: '198.19.1.0/24', Gateway: '198.19.1.255' })), /broadcast/);
  assert.throws(
    () => a.allocateNetwork(net('a', { Subnet: '198.19.1.0/24', Range: '198.19.2.0/25' })),
    /ip-range 198\.19\.2\.0\/25: not inside subnet/,
  );
  assert.throws(() => a.allocateNetwork(net('a', { Gateway: '198.19.1.1' })), /need a --subnet/);
  assert.throws(() => a.allocateNetwork(net('a', { Subnet: 'nope' })), InvalidAddressError);
  assert.throws(() => a.allocateNetwork(net('a', undefined, { [VXLAN_ID_OPTION]: '12' })), /between 4096 and 16777215/);
  assert.equal(a.isAllocated('a'), false);
  assert.equal(subnetOf(a.allocateNetwork(net('b'))), '198.19.128.0/24');
});

test('a requested VNI is honoured, and a taken one refused', () => {
  const a = new NetworkAllocator({ defaultAddrPool: POOL });
  assert.equal(
    a.allocateNetwork(net('a', undefined, { [VXLAN_ID_OPTION]: '5000' })).DriverState?.Options?.[VXLAN_ID_OPTION],
    '5000',
  );
  assert.throws(() => a.allocateNetwork(net('b', undefined, { [VXLAN_ID_OPTION]: '5000' })), VniInUseError);
  assert.equal(a.allocateNetwork(net('c')).DriverState?.Options?.[VXLAN_ID_OPTION], '4096');
});

test('the pool is exhausted after its last subnet, with a clear error; a release frees one again', () => {
  const a = new NetworkAllocator({ defaultAddrPool: ['198.19.200.0/22', '198.19.210.0/24'], subnetSize: 24 });
  const subnets = ['n0', 'n1', 'n2', 'n3', 'n4'].map((id) => subnetOf(a.allocateNetwork(net(id))));
  assert.deepEqual(subnets, [
    '198.19.200.0/24',
    '198.19.201.0/24',
    '198.19.202.0/24',
    '198.19.203.0/24',
    '198.19.210.0/24',
  ]);
  for (let i = 0; i < 3; i++)
    assert.throws(
      () => a.allocateNetwork(net(`more${i}`)),
      (err: unknown) =>
        err instanceof PoolExhaustedError &&
        err.kind === 'failed-precondition' &&
        err.message.includes('no free /24 subnet left in the address pool 198.19.200.0/22, 198.19.210.0/24'),
    );
  // a user subnet outside the pool still works
  assert.equal(subnetOf(a.allocateNetwork(net('outside', { Subnet: '198.19.220.0/24' }))), '198.19.220.0/24');
  a.releaseNetwork('n2');
  assert.equal(subnetOf(a.allocateNetwork(net('again'))), '198.19.202.0/24');
  assert.throws(() => a.allocateNetwork(net('more')), PoolExhaustedError);
});

test('addresses: every one of a /28 exactly once, then exhausted; never the network, gateway or broadcast', () => {
  const a = new NetworkAllocator({ defaultAddrPool: ['198.19.200.0/24'], subnetSize: 28 });
  a.allocateNetwork(net('n'));
  const got: string[] = [];
  for (let i = 0; i < 13; i++) got.push(a.allocateAddress('n', `task:${i}`));
  const expected = Array.from({ length: 13 }, (_, i) => `198.19.200.${i + 2}/28`);
  assert.deepEqual(got, expected);
  assert.deepEqual(a.usage('n'), { used: 13, free: 0 });
  for (let i = 0; i < 3; i++)
    assert.throws(
      () => a.allocateAddress('n', 'task:x'),
      (err: unknown) =>
        err instanceof AddressesExhaustedError &&
        /no free address left in 198\.19\.200\.0\/28 of network n-n/.test(err.message),
    );
  // releasing one makes exactly that one available, once
  assert.equal(a.releaseAddress('n', '198.19.200.9/28'), true);
  assert.equal(a.releaseAddress('n', '198.19.200.9/28'), false);
  assert.equal(a.allocateAddress('n', 'task:y'), '198.19.200.9/28');
  assert.throws(() => a.allocateAddress('n', 'task:z'), AddressesExhaustedError);
  // specific requests
  assert.throws(() => a.allocateAddress('n', 'task:z', '198.19.200.9'), AddressInUseError);
  assert.throws(() => a.allocateAddress('n', 'task:z', '198.19.200.1'), /gateway/);
  assert.throws(() => a.allocateAddress('n', 'task:z', '198.19.201.3'), /not inside subnet/);
  assert.throws(() => a.allocateAddress('missing', 'task:z'), NetworkNotFoundError);
});

test('addresses come from the ip-range only, and go round rather than reusing a released one at once', () => {
  const a = new NetworkAllocator({ defaultAddrPool: POOL });
  a.allocateNetwork(net('r', { Subnet: '198.19.200.0/24', Range: '198.19.200.64/30' }));
  const first = [a.allocateAddress('r', 'a'), a.allocateAddress('r', 'b')];
  assert.deepEqual(first, ['198.19.200.64/24', '198.19.200.65/24']);
  a.releaseAddress('r', first[0] ?? '');
  assert.equal(a.allocateAddress('r', 'c'), '198.19.200.66/24');
  assert.equal(a.allocateAddress('r', 'd'), '198.19.200.67/24');
  assert.equal(a.allocateAddress('r', 'e'), '198.19.200.64/24');
  assert.throws(() => a.allocateAddress('r', 'f'), AddressesExhaustedError);
});

test('task attachments and service VIPs are all-or-nothing', () => {
  const a = new NetworkAllocator({ defaultAddrPool: ['198.19.200.0/24'], subnetSize: 29 });
  a.allocateNetwork(net('big'));
  a.allocateNetwork(net('tiny', { Subnet: '198.19.201.0/30' })); // one usable address
  const t1 = a.allocateTaskAttachments(task('t1', 'big', 'tiny'));
  assert.deepEqual(
    t1.map((x) => x.Addresses),
    [['198.19.200.2/29'], ['198.19.201.2/30']],
  );
  assert.equal(t1[0]?.Network?.IPAMOptions?.Configs?.[0]?.Subnet, '198.19.200.0/29');
  assert.throws(() => a.allocateTaskAttachments(task('t2', 'big', 'tiny')), AddressesExhaustedError);
  assert.deepEqual(a.usage('big'), { used: 1, free: 4 }); // t2's address on big was given back
  assert.throws(() => a.allocateServiceVips('s1', ['big', 'tiny']), AddressesExhaustedError);
  assert.deepEqual(a.usage('big'), { used: 1, free: 4 });
  const vips = a.allocateServiceVips('s1', ['big']);
  // .3 and .4 were taken and given back by the failed calls: allocation goes round past them
  assert.deepEqual(vips, [{ NetworkID: 'big', Addr: '198.19.200.5/29' }]);
  a.releaseTaskAttachments({ ID: 't1', NetworksAttachments: t1 });
  a.releaseServiceVips(vips);
  assert.deepEqual(a.usage('big'), { used: 0, free: 5 });
  assert.deepEqual(a.usage('tiny'), { used: 0, free: 1 });
});

/** Store round trip: what a new leader reads back is the protobuf encoding of what was written. */
function viaStore<T>(fns: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T }, m: T): T {
  return fns.decode(fns.encode(m).finish());
}

test('restore from store objects, then allocate: never an address, subnet or VNI held already', () => {
  const before = new NetworkAllocator({ defaultAddrPool: ['198.19.200.0/22'], subnetSize: 26 });
  const networks = ['a', 'b', 'c'].map((id) => before.allocateNetwork(net(id)));
  networks.push(before.allocateNetwork(net('u', { Subnet: '198.19.210.0/27', Range: '198.19.210.16/28' })));
  const tasks: Task[] = [];
  const services: Service[] = [];
  for (let i = 0; i < 40; i++) {
    const t = task(`t${i}`, i % 2 ? 'a' : 'b', 'u');
    if (i < 14) tasks.push({ ...t, NetworksAttachments: before.allocateTaskAttachments(t) });
    else if (i < 20) {
      // allocated then released (a task that ended): its address is free
      before.releaseTaskAttachments({ ...t, NetworksAttachments: before.allocateTaskAttachments(t) });
    }
  }
  for (let s = 0; s < 5; s++)
    services.push({ ID: `s${s}`, Endpoint: { VirtualIPs: before.allocateServiceVips(`s${s}`, ['a', 'c']) } });
  networks.splice(2, 1); // network c was removed from the store: its VIPs are orphans
  const stored = {
    networks: networks.map((n) => viaStore(NetworkMsg, n)),
    services: services.map((s) => viaStore(ServiceMsg, s)),
    tasks: tasks.map((t) => viaStore(TaskMsg, t)),
  };
  const after = new NetworkAllocator({ defaultAddrPool: ['198.19.200.0/22'], subnetSize: 26 });
  const summary = after.restore(stored);
  assert.equal(summary.networks, 3);
  assert.equal(summary.addresses, 14 * 2 + 5);
  assert.equal(summary.orphans.length, 5);
  const held = new Set<string>();
  for (const t of stored.tasks)
    for (const att of t.NetworksAttachments ?? [])
      for (const x of att.Addresses ?? []) held.add(`${att.Network?.ID} ${x}`);
  for (const s of stored.services)
    for (const v of s.Endpoint?.VirtualIPs ?? []) if (v.NetworkID !== 'c') held.add(`${v.NetworkID} ${v.Addr}`);
  assert.equal(held.size, 33);
  // allocate every remaining address of a, b and u: none is held already, none twice
  for (const id of ['a', 'b', 'u']) {
    const free = after.usage(id).free;
    for (let i = 0; i < free; i++) {
      const addr = after.allocateAddress(id, `task:new${i}`);
      const key = `${id} ${addr}`;
      assert.ok(!held.has(key), `${key} handed out twice`);
      held.add(key);
    }
    assert.throws(() => after.allocateAddress(id, 'task:one-more'), AddressesExhaustedError);
  }
  // u's range is .16/28 of a /27: the gateway .1 is outside it, the broadcast .31 inside: 15 in all
  assert.equal([...held].filter((k) => k.startsWith('u ')).length, 15);
  // a new network never gets a held subnet or VNI: c's /26 and VNI 4098 are free again
  const d = after.allocateNetwork(net('d'));
  assert.equal(subnetOf(d), '198.19.200.128/26');
  assert.equal(d.DriverState?.Options?.[VXLAN_ID_OPTION], '4098');
  const e = after.allocateNetwork(net('e'));
  assert.equal(subnetOf(e), '198.19.200.192/26');
  assert.equal(e.DriverState?.Options?.[VXLAN_ID_OPTION], '4100'); // u holds 4099
  // restoring the same objects again (a re-elected leader) gives the same state
  after.restore(stored);
  assert.deepEqual(after.usage('a'), before.usage('a'));
});

test('restore refuses contradicting store objects and leaves the allocator empty', () => {
  const a = new NetworkAllocator({ defaultAddrPool: POOL });
  const n1 = a.allocateNetwork(net('n1'));
  const clash = { ...n1, ID: 'n2', DriverState: { Name: 'overlay', Options: { [VXLAN_ID_OPTION]: '4100' } } };
  const b = new NetworkAllocator({ defaultAddrPool: POOL });
  b.allocateNetwork(net('keep'));
  assert.throws(
    () => b.restore({ networks: [n1, clash] }),
    (err: unknown) => err instanceof RestoreConflictError && /overlaps/.test(err.message),
  );
  assert.equal(b.isAllocated('keep'), false);
  assert.equal(b.isAllocated('n1'), false);
  const twin = {
    ...net('n3'),
    IPAMOptions: { Configs: [{ Subnet: '198.19.150.0/24', Gateway: '198.19.150.1' }] },
    DriverState: n1.DriverState,
  };
  assert.throws(() => b.restore({ networks: [n1, twin] }), /VXLAN id 4096 is held twice/);
  const t = (id: string): Task => ({
    ID: id,
    NetworksAttachments: [{ Network: { ID: 'n1' }, Addresses: ['198.19.128.5/24'] }],
  });
  assert.throws(
    () => b.restore({ networks: [n1], tasks: [t('x'), t('y')] }),
    /198\.19\.128\.5 \(held by task:x, wanted by task:y\)/,
  );
  // the same owner twice (a duplicate read) is fine
  assert.equal(b.restore({ networks: [n1], tasks: [t('x'), t('x')] }).addresses, 2);
  assert.deepEqual(b.usage('n1'), { used: 1, free: 252 });
});
