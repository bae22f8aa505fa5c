// The role check on a real mutual-TLS grpc-js server on one port: the caller's role comes from
// its client certificate (here OU=swarm-manager / swarm-worker, made with openssl) once it is
// verified against the root CA; callers without one reach only anonymous RPCs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { Server, credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { ShoalError } from '@shoal/common';
import { authInterceptor } from './auth.js';
import { unary, unaryHandler } from './calls.js';
import { CAClient, CAService } from './gen/shoal/ca.js';
import { ControlClient, ControlService } from './gen/shoal/control.js';
import type { CallerRole } from './roles.js';
import { serverCredentialsWithOptionalClientCert, verifiedPeerCertificate } from './tls.js';

let dir: string;
let server: Server;
let addr: string;
let ca: Buffer;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A P-256 key and a certificate signed by the test CA. */
function issue(name: string, subject: string, ext: string): { key: Buffer; cert: Buffer } {
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  openssl('req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  );
  return { key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.crt`)) };
}

/** The role in a verified certificate's subject (OU), as the test CA writes it. */
function roleOf(cert: X509Certificate | undefined): CallerRole | undefined {
  const ou = /^OU=(.*)$/m.exec(cert?.subject ?? '')?.[1];
  return ou === 'swarm-manager' ? 'manager' : ou === 'swarm-worker' ? 'worker' : undefined;
}

let managerCreds: ChannelCredentials;
let workerCreds: ChannelCredentials;
let anonymousCreds: ChannelCredentials;
let selfSignedCreds: ChannelCredentials;
let workerCert: Buffer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-api-tls-'));
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  openssl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=shoal test root CA', '-days', '1', '-out', 'ca.crt');
  ca = readFileSync(join(dir, 'ca.crt'));
  const srv = issue(
    'server',
    '/CN=server/OU=swarm-manager',
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  const mgr = issue('manager', '/CN=node-m/OU=swarm-manager/O=cluster', 'extendedKeyUsage=clientAuth\n');
  const wrk = issue('worker', '/CN=node-w/OU=swarm-worker/O=cluster', 'extendedKeyUsage=clientAuth\n');
  workerCert = wrk.cert;
  // a certificate claiming the manager role, signed by itself rather than the cluster CA
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'rogue.key');
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    'rogue.key',
    '-subj',
    '/CN=rogue/OU=swarm-manager',
    '-days',
    '1',
    '-out',
    'rogue.crt',
  );
  selfSignedCreds = credentials.createSsl(
    ca,
    readFileSync(join(dir, 'rogue.key')),
    readFileSync(join(dir, 'rogue.crt')),
  );
  managerCreds = credentials.createSsl(ca, mgr.key, mgr.cert);
  workerCreds = credentials.createSsl(ca, wrk.key, wrk.cert);
  anonymousCreds = credentials.createSsl(ca);
  server = new Server({
    interceptors: [
      authInterceptor(({ peerCertificate }) =>
        roleOf(verifiedPeerCertificate(peerCertificate, [new X509Certificate(ca)])),
      ),
    ],
  });
  server.addService(ControlService, {
    getNode: unaryHandler(async (_req, call) => {
      await Promise.resolve();
      return { Node: { ID: call.getAuthContext().sslPeerCertificate?.subject?.CN } };
    }),
  });
  server.addService(CAService, {
    getRootCaCertificate: unaryHandler(async () => {
      await Promise.resolve();
      return { Certificate: ca };
    }),
  });
  const creds = serverCredentialsWithOptionalClientCert({ ca, cert: srv.cert, key: srv.key });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  addr = `127.0.0.1:${port}`;
});

after(() => {
  server?.forceShutdown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('mTLS: the manager certificate may call Control, the worker certificate may not', async () => {
  const mgr = new ControlClient(addr, managerCreds);
  const wrk = new ControlClient(addr, workerCreds);
  try {
    const res = await unary(mgr.getNode.bind(mgr), { NodeID: 'x' });
    assert.equal(res.Node?.ID, 'node-m', 'the handler sees the caller certificate');
    await assert.rejects(unary(wrk.getNode.bind(wrk), { NodeID: 'x' }), (err: unknown) => {
      assert.ok(err instanceof ShoalError);
      assert.equal(err.kind, 'permission-denied');
      assert.match(err.message, /not by a worker/);
      return true;
    });
  } finally {
    mgr.close();
    wrk.close();
  }
});

test('mTLS: a caller without a certificate reaches the CA but not Control', async () => {
  const caClient = new CAClient(addr, anonymousCreds);
  const control = new ControlClient(addr, anonymousCreds);
  try {
    const res = await unary(caClient.getRootCaCertificate.bind(caClient), {});
    assert.equal(Buffer.from(res.Certificate ?? new Uint8Array()).toString(), ca.toString());
    await assert.rejects(unary(control.getNode.bind(control), { NodeID: 'x' }), /without a certificate/);
  } finally {
    caClient.close();
    control.close();
  }
});

test('mTLS: a self-signed certificate claiming the manager role counts as no certificate', async () => {
  const control = new ControlClient(addr, selfSignedCreds);
  try {
    await assert.rejects(unary(control.getNode.bind(control), { NodeID: 'x' }), (err: unknown) => {
      assert.ok(err instanceof ShoalError);
      assert.equal(err.kind, 'permission-denied');
      assert.match(err.message, /without a certificate/);
      return true;
    });
  } finally {
    control.close();
  }
});

test('verifiedPeerCertificate refuses an expired certificate and one from another CA', () => {
  const root = new X509Certificate(ca);
  const peer = { raw: new X509Certificate(workerCert).raw } as unknown as PeerCertificate;
  assert.ok(verifiedPeerCertificate(peer, [root]), 'valid now');
  const later = new Date(Date.now() + 3 * 24 * 3600 * 1000);
  assert.equal(verifiedPeerCertificate(peer, [root], later), undefined, 'expired after its 1 day');
  const rogue = new X509Certificate(readFileSync(join(dir, 'rogue.crt')));
  assert.equal(verifiedPeerCertificate(peer, [rogue]), undefined, 'another CA');
  assert.equal(verifiedPeerCertificate(undefined, [root]), undefined);
});
