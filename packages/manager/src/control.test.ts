/**
 * The Control service for nodes and the cluster over a real store: lookups and Docker's
 * filters, availability and labels with optimistic concurrency, promote/demote rules, node rm
 * rules, the cluster spec, token and unlock-key rotation, and redaction of secrets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterSpec } from '@shoal/api';
import { hasCode } from '@shoal/common';
import { fromStored, type StoredCluster, type StoredNode } from './context.js';
import { newCsr, rig, type Rig } from './test-support.js';

async function join(r: Rig, role: 'worker' | 'manager', hostname: string): Promise<string> {
  const { NodeID: id = '' } = await r.manager.ca.issueNodeCertificate(
    { CSR: await newCsr(), Token: role === 'worker' ? r.tokens().worker : r.tokens().manager },
    { addr: '' },
  );
  const n = r.store.get<StoredNode>('node', id);
  assert.ok(n);
  await r.store.update((tx) => tx.update('node', { ...n, Description: { Hostname: hostname } } as StoredNode));
  return id;
}

test('control: bootstrap writes the cluster and the first manager; secrets are never returned', async () => {
  const r = await rig({ autolock: true });
  const c = r.manager.control.getCluster({}).Cluster;
  assert.equal(c?.ID, r.clusterId);
  assert.equal(c?.Spec?.Name, 'default');
  assert.equal(c?.Spec?.Dispatcher?.HeartbeatPeriod, 5e9);
  assert.equal(c?.Spec?.EncryptionConfig?.AutoLockManagers, true);
  assert.match(c?.JoinTokens?.Worker ?? '', /^SWMTKN-1-/);
  assert.equal(c?.RootCA, undefined, 'no CA key');
  assert.equal(c?.UnlockKey, undefined, 'no unlock key');
  assert.equal(c?.TLSInfo?.TrustRoot, r.root.certPem);
  assert.equal(r.manager.control.listClusters().Clusters?.length, 1);
  assert.equal(r.manager.control.getCluster({ ClusterID: 'default' }).Cluster?.ID, r.clusterId);
  assert.throws(
    () => r.manager.control.getCluster({ ClusterID: 'other' }),
    (e) => hasCode(e, 'MANAGER_CLUSTER_NOT_FOUND'),
  );
  assert.match(r.manager.control.getUnlockKey().UnlockKey ?? '', /^SWMKEY-1-/);
  const self = r.manager.control.getNode({ NodeID: 'mgr1' }).Node;
  assert.equal(self?.Spec?.Role, 'manager');
  assert.equal(self?.Status?.State, 'ready');
  assert.deepEqual(
    { ...self?.ManagerStatus },
    { Leader: true, Reachability: 'reachable', Addr: '198.18.0.2:2377', RaftID: 0 },
  );
  await assert.rejects(r.manager.bootstrapCluster({ clusterId: 'x', advertiseAddr: '198.18.0.2:2377' }), (e) =>
    hasCode(e, 'MANAGER_CLUSTER_EXISTS'),
  );
});

test('control: get by ID, prefix or hostname; ls filters as docker node ls', async () => {
  const r = await rig();
  const w1 = await join(r, 'worker', 'h2');
  const w2 = await join(r, 'worker', 'h3');
  assert.equal(r.manager.control.getNode({ NodeID: w1 }).Node?.ID, w1);
  assert.equal(r.manager.control.getNode({ NodeID: 'h3' }).Node?.ID, w2);
  assert.equal(r.manager.control.getNode({ NodeID: w2.slice(0, 12) }).Node?.ID, w2);
  assert.throws(
    () => r.manager.control.getNode({ NodeID: 'nope' }),
    (e) => hasCode(e, 'MANAGER_NODE_NOT_FOUND'),
  );
  assert.equal(r.manager.control.getNode({ NodeID: w1 }).Node?.ManagerStatus, undefined, 'workers have none');

  const n1 = r.store.get<StoredNode>('node', w1);
  await r.manager.control.updateNode({
    NodeID: w1,
    NodeVersion: n1?.Version,
    Spec: { ...n1?.Spec, Labels: { zone: 'a' } },
  });
  const ids = (f: object): string[] => (r.manager.control.listNodes({ Filters: f }).Nodes ?? []).map((n) => n.ID ?? '');
  assert.deepEqual(ids({}), ['mgr1', w1, w2], 'sorted by hostname');
  assert.deepEqual(ids({ Roles: ['worker'] }), [w1, w2]);
  assert.deepEqual(ids({ Roles: ['manager'] }), ['mgr1']);
  assert.deepEqual(ids({ NodeLabels: { zone: 'a' } }), [w1]);
  assert.deepEqual(ids({ NodeLabels: { zone: '' } }), [w1]);
  assert.deepEqual(ids({ NodeLabels: { zone: 'b' } }), []);
  assert.deepEqual(ids({ Names: ['h3'] }), [w2]);
  assert.deepEqual(ids({ NamePrefixes: ['h'] }), ['mgr1', w1, w2]);
  assert.deepEqual(ids({ IDPrefixes: [w2.slice(0, 5)] }), [w2]);
  assert.deepEqual(ids({ Memberships: ['accepted'], Roles: ['worker'] }), [w1, w2]);
  assert.deepEqual(ids({ Memberships: ['pending'] }), []);
});

test('control: availability and labels; stale versions and bad values are refused', async () => {
  const r = await rig();
  const w = await join(r, 'worker', 'h2');
  const n = r.store.get<StoredNode>('node', w);
  const res = await r.manager.control.updateNode({
    NodeID: w,
    NodeVersion: n?.Version,
    Spec: { ...n?.Spec, Availability: 'drain', Labels: { a: '1' } },
  });
  assert.equal(res.Node?.Spec?.Availability, 'drain');
  assert.deepEqual({ ...res.Node?.Spec?.Labels }, { a: '1' });
  // Unset strings arrive as '' over gRPC: they keep the current role and availability.
  const kept = await r.manager.control.updateNode({
    NodeID: w,
    NodeVersion: res.Node?.Version,
    Spec: { Name: '', Labels: { a: '1' }, Role: '', Availability: '' },
  });
  assert.equal(kept.Node?.Spec?.Role, 'worker');
  assert.equal(kept.Node?.Spec?.Availability, 'drain');
  await assert.rejects(
    r.manager.control.updateNode({
      NodeID: w,
      NodeVersion: res.Node?.Version,
      Spec: { ...n?.Spec, Availability: 'pause' },
    }),
    (e) => hasCode(e, 'STORE_VERSION_CONFLICT'),
  );
  const cur = r.store.get<StoredNode>('node', w);
  await assert.rejects(
    r.manager.control.updateNode({
      NodeID: w,
      NodeVersion: cur?.Version,
      Spec: { ...cur?.Spec, Availability: 'sleep' },
    }),
    (e) => hasCode(e, 'MANAGER_INVALID_REQUEST'),
  );
  await assert.rejects(
    r.manager.control.updateNode({ NodeID: w, NodeVersion: cur?.Version, Spec: { ...cur?.Spec, Role: 'boss' } }),
    (e) => hasCode(e, 'MANAGER_INVALID_REQUEST'),
  );
  await assert.rejects(r.manager.control.updateNode({ NodeID: w, Spec: { ...cur?.Spec } }), (e) =>
    hasCode(e, 'MANAGER_INVALID_REQUEST'),
  );
  await assert.rejects(
    r.manager.control.updateNode({ NodeID: 'unknown-node', NodeVersion: cur?.Version, Spec: { Role: 'manager' } }),
    (e) => hasCode(e, 'MANAGER_NODE_NOT_FOUND'),
  );
  assert.equal(r.store.get<StoredNode>('node', w)?.Spec?.Availability, 'drain', 'unchanged by the refusals');
});

test('control: the last manager cannot be demoted; a demote that breaks quorum is refused', async () => {
  const r = await rig();
  const self = r.store.get<StoredNode>('node', 'mgr1');
  await assert.rejects(
    r.manager.control.updateNode({
      NodeID: 'mgr1',
      NodeVersion: self?.Version,
      Spec: { ...self?.Spec, Role: 'worker' },
    }),
    (e) => hasCode(e, 'MANAGER_LAST_MANAGER'),
  );
  // Three managers, one unreachable: demoting a reachable one would leave 1 of 2 reachable.
  const m2 = await join(r, 'manager', 'h2');
  const m3 = await join(r, 'manager', 'h3');
  r.raft.voters = ['mgr1', m2, m3];
  r.raft.unreachable.add(m3);
  const n2 = r.store.get<StoredNode>('node', m2);
  await assert.rejects(
    r.manager.control.updateNode({ NodeID: m2, NodeVersion: n2?.Version, Spec: { ...n2?.Spec, Role: 'worker' } }),
    (e) => hasCode(e, 'MANAGER_QUORUM_RISK'),
  );
  assert.equal(r.store.get<StoredNode>('node', m2)?.Spec?.Role, 'manager');
  const view = r.manager.control.getNode({ NodeID: m3 }).Node?.ManagerStatus;
  assert.equal(view?.Reachability, 'unreachable');
  assert.equal(view?.Leader, false);
});

test('control: node rm refuses a live node without --force and a manager; removes a down one', async () => {
  const r = await rig();
  const w = await join(r, 'worker', 'h2');
  await assert.rejects(r.manager.control.removeNode({ NodeID: w }), (e) => hasCode(e, 'MANAGER_NODE_NOT_DOWN'));
  await assert.rejects(r.manager.control.removeNode({ NodeID: 'mgr1', Force: true }), (e) =>
    hasCode(e, 'MANAGER_NODE_IS_MANAGER'),
  );
  const n = r.store.get<StoredNode>('node', w);
  await r.store.update((tx) => tx.update('node', { ...n, Status: { State: 'down' } } as StoredNode));
  await r.manager.control.removeNode({ NodeID: w });
  assert.equal(r.store.get('node', w), undefined);
  const w2 = await join(r, 'worker', 'h3');
  await r.manager.control.removeNode({ NodeID: w2, Force: true });
  assert.equal(r.store.get('node', w2), undefined);
  await assert.rejects(r.manager.control.removeNode({ NodeID: w2 }), (e) => hasCode(e, 'MANAGER_NODE_NOT_FOUND'));
});

test('control: cluster update checks the version, rotates tokens and the unlock key, bounds the expiry', async () => {
  const r = await rig();
  const c0 = r.manager.control.getCluster({}).Cluster;
  const t0 = r.tokens();
  const res = await r.manager.control.updateCluster({
    ClusterVersion: c0?.Version,
    Spec: { ...c0?.Spec, Labels: { env: 'lab' } },
    Rotation: { ManagerJoinToken: true },
  });
  assert.deepEqual({ ...res.Cluster?.Spec?.Labels }, { env: 'lab' });
  assert.equal(r.tokens().worker, t0.worker, 'the worker token is kept');
  assert.notEqual(r.tokens().manager, t0.manager, 'the manager token is new');
  await assert.rejects(r.manager.control.updateCluster({ ClusterVersion: c0?.Version, Spec: c0?.Spec }), (e) =>
    hasCode(e, 'STORE_VERSION_CONFLICT'),
  );
  const c1 = r.manager.control.getCluster({}).Cluster;
  await assert.rejects(
    r.manager.control.updateCluster({
      ClusterVersion: c1?.Version,
      Spec: { ...c1?.Spec, CAConfig: { NodeCertExpiry: 60 * 1e9 } },
    }),
    (e) => hasCode(e, 'CA_INVALID_CERT_OPTIONS'),
  );
  await assert.rejects(
    r.manager.control.updateCluster({ ClusterVersion: c1?.Version, Spec: { ...c1?.Spec, Name: 'other' } }),
    (e) => hasCode(e, 'MANAGER_INVALID_REQUEST'),
  );
  assert.equal(r.manager.control.getUnlockKey().UnlockKey, '', 'autolock is off');
  await r.manager.control.updateCluster({
    ClusterVersion: c1?.Version,
    Spec: { ...c1?.Spec, EncryptionConfig: { AutoLockManagers: true } },
  });
  const k1 = r.manager.control.getUnlockKey().UnlockKey ?? '';
  assert.match(k1, /^SWMKEY-1-/);
  const c2 = r.manager.control.getCluster({}).Cluster;
  await r.manager.control.updateCluster({
    ClusterVersion: c2?.Version,
    Spec: c2?.Spec,
    Rotation: { ManagerUnlockKey: true },
  });
  const k2 = r.manager.control.getUnlockKey().UnlockKey ?? '';
  assert.match(k2, /^SWMKEY-1-/);
  assert.notEqual(k2, k1);
  const stored = fromStored(r.store.list<StoredCluster>('cluster')[0]);
  assert.ok((stored?.RootCA?.CAKey?.length ?? 0) > 0, 'the CA key stays in the store');
});

test('init with a spec decoded from the wire (unset fields empty) keeps Docker defaults, name "default"', async () => {
  // `shoal swarm init` sends a ClusterSpec; what it leaves unset arrives as '' or undefined.
  const spec = ClusterSpec.decode(ClusterSpec.encode(ClusterSpec.fromPartial({ Labels: { site: 'a' } })).finish());
  const r = await rig({ spec });
  const c = r.manager.control.getCluster({ ClusterID: 'default' }).Cluster;
  assert.equal(c?.Spec?.Name, 'default');
  assert.deepEqual(c?.Spec?.Labels, { site: 'a' });
  assert.ok(c?.Spec?.Raft !== undefined && c.Spec.Orchestration !== undefined, 'defaults kept for unset parts');
});
