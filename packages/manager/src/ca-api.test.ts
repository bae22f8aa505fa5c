/**
 * The CA service over a real store and a real root CA: joins with the tokens (role from the
 * token, ID from the CA, the Node object created), refusals that create nothing, renewals that
 * keep the ID and follow the role the cluster wants (promote/demote), and a node's latest
 * certificate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { hasCode } from '@shoal/common';
import type { StoredNode } from './context.js';
import { newCsr, rig } from './test-support.js';

function ouOf(pem: Uint8Array | undefined): string {
  assert.ok(pem !== undefined && pem.length > 0, 'a certificate');
  return /OU=([^\n]+)/.exec(new X509Certificate(Buffer.from(pem)).subject)?.[1] ?? '';
}

test('ca: a worker token joins a worker, a manager token a manager; the CA picks the node ID', async () => {
  const r = await rig();
  const w = await r.manager.ca.issueNodeCertificate(
    { CSR: await newCsr(), Token: r.tokens().worker, Availability: 'drain' },
    { addr: '198.18.0.3' },
  );
  assert.equal(w.NodeMembership, 'accepted');
  assert.match(w.NodeID ?? '', /^[0-9a-z]{25}$/);
  const node = r.store.get<StoredNode>('node', w.NodeID ?? '');
  assert.equal(node?.Spec?.Role, 'worker');
  assert.equal(node?.Spec?.Availability, 'drain');
  assert.equal(node?.Status?.State, 'unknown', 'unknown until its first heartbeat');
  const status = r.manager.ca.nodeCertificateStatus({ NodeID: w.NodeID ?? '' });
  assert.equal(status.Certificate?.State, 'issued');
  assert.equal(ouOf(status.Certificate?.Certificate), 'swarm-worker');
  assert.equal(
    Buffer.from(status.RootCABundle ?? new Uint8Array())
      .toString()
      .trim(),
    r.root.certPem.trim(),
  );

  const m = await r.manager.ca.issueNodeCertificate({ CSR: await newCsr(), Token: r.tokens().manager }, { addr: '' });
  assert.notEqual(m.NodeID, w.NodeID);
  assert.equal(r.store.get<StoredNode>('node', m.NodeID ?? '')?.Spec?.Role, 'manager');
  assert.equal(
    ouOf(r.manager.ca.nodeCertificateStatus({ NodeID: m.NodeID ?? '' }).Certificate?.Certificate),
    'swarm-manager',
  );
  assert.equal(
    Buffer.from(r.manager.ca.getRootCaCertificate().Certificate ?? new Uint8Array()).toString(),
    r.root.certPem,
  );
});

test('ca: wrong, rotated and malformed tokens are refused and create no node', async () => {
  const r = await rig();
  const before = r.store.list('node').length;
  const wrong = r.tokens().worker.replace(/-[0-9a-z]{25}$/, '-' + '0'.repeat(25));
  await assert.rejects(r.manager.ca.issueNodeCertificate({ CSR: await newCsr(), Token: wrong }, { addr: '' }), (e) =>
    hasCode(e, 'CA_JOIN_TOKEN_REFUSED'),
  );
  await assert.rejects(
    r.manager.ca.issueNodeCertificate({ CSR: await newCsr(), Token: 'SWMTKN-1-nope' }, { addr: '' }),
    (e) => hasCode(e, 'CA_INVALID_JOIN_TOKEN'),
  );
  const old = r.tokens().worker;
  const c = r.manager.control.getCluster({});
  await r.manager.control.updateCluster({
    ClusterVersion: c.Cluster?.Version,
    Spec: c.Cluster?.Spec,
    Rotation: { WorkerJoinToken: true },
  });
  assert.notEqual(r.tokens().worker, old);
  await assert.rejects(r.manager.ca.issueNodeCertificate({ CSR: await newCsr(), Token: old }, { addr: '' }), (e) =>
    hasCode(e, 'CA_JOIN_TOKEN_REFUSED'),
  );
  await assert.rejects(
    r.manager.ca.issueNodeCertificate({ CSR: Buffer.from('not a csr'), Token: r.tokens().worker }, { addr: '' }),
    (e) => hasCode(e, 'CA_INVALID_CSR'),
  );
  assert.equal(r.store.list('node').length, before, 'no node was created');
  // The new token works.
  await r.manager.ca.issueNodeCertificate({ CSR: await newCsr(), Token: r.tokens().worker }, { addr: '' });
  assert.equal(r.store.list('node').length, before + 1);
});

test('ca: a renewal keeps the node ID and takes the role from the store (promote reissues)', async () => {
  const r = await rig();
  const { NodeID: id = '' } = await r.manager.ca.issueNodeCertificate(
    { CSR: await newCsr(), Token: r.tokens().worker },
    { addr: '' },
  );
  // Without a token and without a certificate: refused.
  await assert.rejects(r.manager.ca.issueNodeCertificate({ CSR: await newCsr() }, { addr: '' }), (e) =>
    hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'),
  );
  const node = r.store.get<StoredNode>('node', id);
  await r.manager.control.updateNode({
    NodeID: id,
    NodeVersion: node?.Version,
    Spec: { ...node?.Spec, Role: 'manager' },
  });
  const renewed = await r.manager.ca.issueNodeCertificate(
    { CSR: await newCsr() },
    { nodeId: id, role: 'worker', addr: '' },
  );
  assert.equal(renewed.NodeID, id, 'same node ID');
  const cert = r.manager.ca.nodeCertificateStatus({ NodeID: id }).Certificate;
  assert.equal(cert?.Role, 'manager');
  assert.equal(ouOf(cert?.Certificate), 'swarm-manager', 'the reissued certificate carries the new role');
  assert.match(new X509Certificate(Buffer.from(cert?.Certificate ?? new Uint8Array())).subject, new RegExp(`CN=${id}`));

  // A removed node cannot renew.
  await assert.rejects(
    r.manager.ca.issueNodeCertificate({ CSR: await newCsr() }, { nodeId: 'gone', role: 'worker', addr: '' }),
    (e) => hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'),
  );
  assert.throws(
    () => r.manager.ca.nodeCertificateStatus({ NodeID: 'gone' }),
    (e) => hasCode(e, 'MANAGER_NODE_NOT_FOUND'),
  );
});

test('ca: the certificate expiry of the cluster applies to issued certificates', async () => {
  const r = await rig();
  const c = r.manager.control.getCluster({}).Cluster;
  await r.manager.control.updateCluster({
    ClusterVersion: c?.Version,
    Spec: { ...c?.Spec, CAConfig: { ...c?.Spec?.CAConfig, NodeCertExpiry: 2 * 3600 * 1e9 } },
  });
  const { NodeID: id = '' } = await r.manager.ca.issueNodeCertificate(
    { CSR: await newCsr(), Token: r.tokens().worker },
    { addr: '' },
  );
  const cert = new X509Certificate(
    Buffer.from(r.manager.ca.nodeCertificateStatus({ NodeID: id }).Certificate?.Certificate ?? new Uint8Array()),
  );
  const validMs = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
  // Backdated one hour for clock skew, plus the 2 hours asked.
  assert.ok(Math.abs(validMs - 3 * 3600_000) < 5_000, `validity ${validMs} ms`);
});
