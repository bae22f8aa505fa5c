import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCsr } from './csr.js';
import { generateNodeKey, privateKeyToPem } from './keys.js';
import {
  RootCA,
  DEFAULT_NODE_CERT_EXPIRY_MS,
  MIN_NODE_CERT_EXPIRY_MS,
  NODE_CERT_BACKDATE_MS,
  ROOT_CA_VALIDITY_MS,
  newClusterId,
  newNodeId,
} from './root-ca.js';
import { verifyNodeCertificate } from './verify.js';
import { issueNode, selfSignedNodeCert } from './test-util.js';
import { CaError } from './errors.js';

function assertCode(code: string, kind?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CaError, `expected CaError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (kind) assert.equal(err.kind, kind);
    return true;
  };
}

test('a new root is a self-signed ECDSA P-256 CA valid for 20 years', async () => {
  const now = Date.now();
  const root = await RootCA.create({ now });
  const c = root.cert;
  assert.ok(c.ca);
  assert.ok(c.checkIssued(c) && c.verify(c.publicKey));
  assert.equal(c.publicKey.asymmetricKeyType, 'ec');
  assert.equal(c.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const life = new Date(c.validTo).getTime() - now;
  assert.ok(Math.abs(life - ROOT_CA_VALIDITY_MS) < 2000, `validity ${life}`);
  assert.match(root.digest, /^[0-9a-z]{50}$/);
});

test('issue + verify: subject, SANs, usages and default 90-day expiry', async () => {
  const root = await RootCA.create();
  const now = Date.now();
  const nodeId = newNodeId();
  const clusterId = newClusterId();
  const { certPem, identity } = await root.issue(await createCsr(generateNodeKey()), {
    nodeId,
    role: 'manager',
    clusterId,
    now,
  });
  const c = new X509Certificate(certPem);
  assert.equal(c.subject, `O=${clusterId}\nOU=swarm-manager\nCN=${nodeId}`);
  assert.equal(c.subjectAltName, `DNS:swarm-manager, DNS:${nodeId}, DNS:swarm-ca`);
  assert.deepEqual(c.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(c.ca, false);
  assert.equal(new Date(c.validTo).getTime() - Math.floor(now / 1000) * 1000, DEFAULT_NODE_CERT_EXPIRY_MS);
  assert.equal(new Date(c.validFrom).getTime(), Math.floor((now - NODE_CERT_BACKDATE_MS) / 1000) * 1000);
  const id = verifyNodeCertificate([c], root.trustedRoots(), { clusterId, roles: ['manager'] });
  assert.equal(id.nodeId, nodeId);
  assert.equal(id.role, 'manager');
  assert.equal(id.clusterId, clusterId);
  assert.deepEqual(identity, id);
  const worker = await issueNode(root, 'worker');
  assert.equal(new X509Certificate(worker.certPem).subjectAltName, `DNS:swarm-worker, DNS:${worker.nodeId}`);
});

test('the CA decides the identity: a CSR asking to be a manager of another node gets what the CA assigns', async () => {
  const root = await RootCA.create();
  const csr = await createCsr(generateNodeKey(), 'CN=root-node,OU=swarm-manager,O=othercluster');
  const nodeId = newNodeId();
  const clusterId = newClusterId();
  const { certPem } = await root.issue(csr, { nodeId, role: 'worker', clusterId });
  const id = verifyNodeCertificate([new X509Certificate(certPem)], root.trustedRoots());
  assert.deepEqual([id.nodeId, id.role, id.clusterId], [nodeId, 'worker', clusterId]);
  assert.doesNotMatch(certPem, /root-node/);
});

test('a CSR whose signature does not verify, or that is not a CSR, is refused', async () => {
  const root = await RootCA.create();
  const csr = await createCsr(generateNodeKey(), 'CN=x');
  const der = Buffer.from(csr.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64');
  der[der.length - 5]! ^= 0x01; // inside the signature value
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const opts = { nodeId: newNodeId(), role: 'worker' as const, clusterId: newClusterId() };
  await assert.rejects(root.issue(tampered, opts), (err: unknown) => {
    assertCode('CA_INVALID_CSR', 'invalid-argument')(err);
    assert.match((err as Error).message, /signature/);
    return true;
  });
  await assert.rejects(root.issue('hello', opts), assertCode('CA_INVALID_CSR', 'invalid-argument'));
});

test('expiry: configurable, at least 1 hour, clamped to the root', async () => {
  const root = await RootCA.create();
  const csr = await createCsr(generateNodeKey());
  const base = { nodeId: newNodeId(), role: 'worker' as const, clusterId: newClusterId() };
  await assert.rejects(
    root.issue(csr, { ...base, expiryMs: MIN_NODE_CERT_EXPIRY_MS - 1 }),
    assertCode('CA_INVALID_CERT_OPTIONS', 'invalid-argument'),
  );
  const now = Date.now();
  const { identity } = await root.issue(csr, { ...base, expiryMs: MIN_NODE_CERT_EXPIRY_MS, now });
  assert.equal(identity.notAfter.getTime(), Math.floor((now + MIN_NODE_CERT_EXPIRY_MS) / 1000) * 1000);
  const short = await RootCA.create({ validityMs: 2 * 3600_000 });
  const clamped = await short.issue(csr, { ...base, expiryMs: 10 * 3600_000 });
  assert.equal(clamped.identity.notAfter.getTime(), new Date(short.cert.validTo).getTime());
});

test('reissue on promote: same key, new certificate with the manager OU', async () => {
  const root = await RootCA.create();
  const w = await issueNode(root, 'worker');
  const { certPem } = await root.issue(await createCsr(w.key), {
    nodeId: w.nodeId,
    role: 'manager',
    clusterId: w.clusterId,
  });
  const before = verifyNodeCertificate([new X509Certificate(w.certPem)], root.trustedRoots());
  const after = verifyNodeCertificate([new X509Certificate(certPem)], root.trustedRoots(), { roles: ['manager'] });
  assert.equal(before.role, 'worker');
  assert.equal(after.role, 'manager');
  assert.equal(after.nodeId, w.nodeId);
  assert.notEqual(after.serial, before.serial);
});

test('external root: accepted with its key; a non-CA, a mismatched key, an expired CA are refused', async () => {
  const ext = await RootCA.create();
  const loaded = RootCA.fromPem(ext.certPem, ext.keyPem());
  assert.ok(loaded.canSign);
  assert.equal(loaded.digest, ext.digest);
  const n = await issueNode(loaded, 'worker');
  verifyNodeCertificate([new X509Certificate(n.certPem)], ext.trustedRoots());
  assert.equal(RootCA.fromPem(ext.certPem).canSign, false);

  assert.throws(
    () => RootCA.fromPem(n.certPem, privateKeyToPem(n.key)),
    assertCode('CA_INVALID_ROOT', 'invalid-argument'),
  );
  const other = await RootCA.create();
  assert.throws(() => RootCA.fromPem(ext.certPem, other.keyPem()), /does not match/);
  const ss = await selfSignedNodeCert('c');
  assert.throws(() => RootCA.fromPem(ss.certPem, privateKeyToPem(ss.key)), /not a CA/);
  assert.throws(
    () => RootCA.fromPem(ext.certPem, undefined, { now: Date.now() + ROOT_CA_VALIDITY_MS + 86400_000 }),
    /expired/,
  );
  assert.throws(() => RootCA.fromPem('junk'), assertCode('CA_INVALID_ROOT'));
});
