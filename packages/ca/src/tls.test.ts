/**
 * Real TLS sockets on 127.0.0.1 with real certificates: mutual TLS between nodes, refusal of
 * self-signed, foreign and expired client certificates, role checks, and the joiner's CA pinning
 * against a man in the middle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { errorMessage } from '@shoal/common';
import { CaError } from './errors.js';
import { newJoinTokens } from './join-token.js';
import { RootCA } from './root-ca.js';
import type { NodeRole } from './roles.js';
import {
  bootstrapClientTlsOptions,
  checkRootAgainstToken,
  clientTlsOptions,
  joinerClientTlsOptions,
  parseRoots,
  serverTlsOptions,
  type NodeTlsMaterial,
} from './tls.js';
import { issueNode, selfSignedNodeCert } from './test-util.js';
import { identifyTlsPeer } from './verify.js';

type Reply = { ok: true; nodeId: string; role: NodeRole } | { ok: false; code: string; kind: string; message: string };

/**
 * A cluster-port stand-in: a client without a certificate gets the root PEM (GetRootCACertificate),
 * a client with one gets its verified identity or the typed refusal, as a gRPC status would carry.
 */
async function startServer(
  t: { after: (fn: () => Promise<void>) => void },
  m: NodeTlsMaterial,
  opts: { strict?: boolean; roles?: NodeRole[]; rootToSend?: string } = {},
): Promise<{ port: number; accepted: () => number; errors: Error[] }> {
  let accepted = 0;
  const socketErrors: Error[] = [];
  const roots = parseRoots(m.rootPem);
  const server = tls.createServer(serverTlsOptions(m, { strict: opts.strict }), (socket) => {
    accepted++;
    // A client that refuses our certificate resets the connection: record it, the test asserts replies.
    socket.on('error', (err: Error) => socketErrors.push(err));
    const peer = socket.getPeerCertificate();
    if (!peer || Object.keys(peer).length === 0) {
      socket.end(opts.rootToSend ?? m.rootPem);
      return;
    }
    let reply: Reply;
    try {
      const id = identifyTlsPeer(socket, roots, { roles: opts.roles });
      reply = { ok: true, nodeId: id.nodeId, role: id.role };
    } catch (err) {
      assert.ok(err instanceof CaError, errorMessage(err));
      reply = { ok: false, code: err.code, kind: err.kind, message: err.message };
    }
    socket.end(JSON.stringify(reply));
  });
  // Handshakes the server refused (strict mode) or clients aborted: recorded for the assertions.
  server.on('tlsClientError', (err) => socketErrors.push(err));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
      }),
  );
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted, errors: socketErrors };
}

/** Connects, reads until the server ends; resolves with the text, rejects on a TLS error. */
function exchange(port: number, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = tls.connect({ ...options, host: '127.0.0.1', port });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', reject);
  });
}

async function cluster() {
  const root = await RootCA.create();
  const clusterId = 'c' + root.digest.slice(0, 24);
  const manager = await issueNode(root, 'manager', { clusterId });
  const material: NodeTlsMaterial = { certPem: manager.certPem, key: manager.key, rootPem: root.certPem };
  return { root, clusterId, manager, material };
}

test('mutual TLS: a node certificate of the cluster is accepted and identified', async (t) => {
  const c = await cluster();
  const srv = await startServer(t, c.material);
  const w = await issueNode(c.root, 'worker', { clusterId: c.clusterId });
  const reply = JSON.parse(
    await exchange(srv.port, clientTlsOptions({ certPem: w.certPem, key: w.key, rootPem: c.root.certPem })),
  ) as Reply;
  assert.deepEqual(reply, { ok: true, nodeId: w.nodeId, role: 'worker' });
});

test('self-signed, foreign-CA and expired client certificates are refused with permission-denied', async (t) => {
  const c = await cluster();
  const srv = await startServer(t, c.material);
  const client = (certPem: string, key: NodeTlsMaterial['key']) =>
    exchange(srv.port, clientTlsOptions({ certPem, key, rootPem: c.root.certPem })).then((s) => JSON.parse(s) as Reply);

  const ss = await selfSignedNodeCert(c.clusterId);
  const r1 = await client(ss.certPem, ss.key);
  assert.equal(r1.ok, false);
  if (!r1.ok) {
    assert.equal(r1.code, 'CA_UNTRUSTED_CERTIFICATE');
    assert.equal(r1.kind, 'permission-denied');
    assert.match(r1.message, /self-signed, not issued by the cluster root CA/);
  }

  const other = await RootCA.create();
  const f = await issueNode(other, 'manager', { clusterId: c.clusterId });
  const r2 = await client(f.certPem, f.key);
  assert.ok(!r2.ok && r2.code === 'CA_UNTRUSTED_CERTIFICATE' && /not issued by the cluster root CA/.test(r2.message));

  const expired = await issueNode(c.root, 'manager', {
    clusterId: c.clusterId,
    now: Date.now() - 3 * 3600_000,
    expiryMs: 3600_000,
  });
  const r3 = await client(expired.certPem, expired.key);
  assert.equal(r3.ok, false);
  if (!r3.ok) {
    assert.equal(r3.code, 'CA_CERTIFICATE_EXPIRED');
    assert.equal(r3.kind, 'permission-denied');
    assert.match(r3.message, /expired at /);
  }
});

test('a strict listener refuses self-signed and expired client certificates in the handshake', async (t) => {
  const c = await cluster();
  const srv = await startServer(t, c.material, { strict: true });
  const ss = await selfSignedNodeCert(c.clusterId);
  const expired = await issueNode(c.root, 'worker', { now: Date.now() - 3 * 3600_000, expiryMs: 3600_000 });
  for (const bad of [ss, expired]) {
    const outcome = await exchange(
      srv.port,
      clientTlsOptions({ certPem: bad.certPem, key: bad.key, rootPem: c.root.certPem }),
    ).then(
      (text) => ({ text }),
      (err: unknown) => ({ err: errorMessage(err) }),
    );
    assert.ok(!('text' in outcome) || outcome.text === '', `refused, got ${JSON.stringify(outcome)}`);
  }
  assert.equal(srv.accepted(), 0, 'the server never handed a refused connection to the application');
  const good = await issueNode(c.root, 'worker', { clusterId: c.clusterId });
  const reply = JSON.parse(
    await exchange(srv.port, clientTlsOptions({ certPem: good.certPem, key: good.key, rootPem: c.root.certPem })),
  ) as Reply;
  assert.equal(reply.ok, true);
});

test('a worker certificate calling a manager-only endpoint is refused', async (t) => {
  const c = await cluster();
  const srv = await startServer(t, c.material, { roles: ['manager'] });
  const w = await issueNode(c.root, 'worker', { clusterId: c.clusterId });
  const reply = JSON.parse(
    await exchange(srv.port, clientTlsOptions({ certPem: w.certPem, key: w.key, rootPem: c.root.certPem })),
  ) as Reply;
  assert.ok(!reply.ok);
  assert.equal(reply.code, 'CA_ROLE_NOT_ALLOWED');
  assert.equal(reply.kind, 'permission-denied');
  assert.match(reply.message, /role worker is not allowed here \(allowed: manager\)/);
});

test('a node refuses to talk to a server whose certificate is a worker one or of another CA', async (t) => {
  const c = await cluster();
  const w = await issueNode(c.root, 'worker', { clusterId: c.clusterId });
  const asWorker = await startServer(t, { certPem: w.certPem, key: w.key, rootPem: c.root.certPem });
  const me = await issueNode(c.root, 'worker', { clusterId: c.clusterId });
  const mine = { certPem: me.certPem, key: me.key, rootPem: c.root.certPem };
  await assert.rejects(exchange(asWorker.port, clientTlsOptions(mine)), /role worker is not allowed/);
  const other = await cluster();
  const foreign = await startServer(t, other.material);
  await assert.rejects(exchange(foreign.port, clientTlsOptions(mine)), (err: Error) => {
    assert.match(
      String((err as { code?: string }).code),
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/,
    );
    return true;
  });
});

test('joiner: pins the CA by the token digest, then trusts only that root', async (t) => {
  const c = await cluster();
  const tokens = newJoinTokens(c.root.digest);
  const srv = await startServer(t, c.material);
  const rootPem = await exchange(srv.port, bootstrapClientTlsOptions());
  const pinned = checkRootAgainstToken(rootPem, tokens.worker);
  assert.equal(pinned, c.root.certPem);
  // Second contact: verified TLS to a manager; the server sees no client certificate and answers again.
  assert.equal(await exchange(srv.port, joinerClientTlsOptions(pinned)), c.root.certPem);
});

test('joiner: a man in the middle presenting another CA is refused (digest mismatch)', async (t) => {
  const c = await cluster();
  const tokens = newJoinTokens(c.root.digest);
  const mitm = await cluster();
  const srv = await startServer(t, mitm.material);
  const rootPem = await exchange(srv.port, bootstrapClientTlsOptions());
  assert.throws(
    () => checkRootAgainstToken(rootPem, tokens.manager),
    (err: unknown) => {
      assert.ok(err instanceof CaError);
      assert.equal(err.code, 'CA_DIGEST_MISMATCH');
      assert.equal(err.kind, 'permission-denied');
      assert.match(err.message, /does not match the join token.*man in the middle/);
      return true;
    },
  );
});

test('joiner: a man in the middle relaying the real root but holding another CA certificate fails the pinned handshake', async (t) => {
  const c = await cluster();
  const tokens = newJoinTokens(c.root.digest);
  const mitm = await cluster();
  const srv = await startServer(t, mitm.material, { rootToSend: c.root.certPem });
  const pinned = checkRootAgainstToken(await exchange(srv.port, bootstrapClientTlsOptions()), tokens.worker);
  await assert.rejects(exchange(srv.port, joinerClientTlsOptions(pinned)), (err: Error) => {
    assert.match(
      String((err as { code?: string }).code),
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER|SELF_SIGNED_CERT_IN_CHAIN/,
    );
    return true;
  });
});
