/**
 * The cluster-port TLS design through real @grpc/grpc-js on 127.0.0.1: certificate-less joiners
 * reach the CA call, node calls are checked per call, and refusals reach the caller as
 * PERMISSION_DENIED with the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '@shoal/common';
import { CaError } from './errors.js';
import { NodeCertificateProvider, identifyGrpcPeer } from './grpc-certs.js';
import { newJoinTokens } from './join-token.js';
import { RootCA } from './root-ca.js';
import { MANAGER_OU } from './roles.js';
import {
  bootstrapClientTlsOptions,
  checkRootAgainstToken,
  grpcClientCredentialsArgs,
  grpcServerCredentialsArgs,
  nodeServerIdentityCheck,
} from './tls.js';
import { issueNode, selfSignedNodeCert } from './test-util.js';

const id = (b: Buffer) => b;
const method = (name: string) => ({
  path: `/shoal.catest.Probe/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
});
const service = { GetRootCACertificate: method('GetRootCACertificate'), Whoami: method('Whoami') };
const ProbeClient = grpc.makeGenericClientConstructor(service, 'Probe');
type Probe = InstanceType<typeof ProbeClient> &
  Record<string, (req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void>;

async function startCluster(t: { after: (fn: () => Promise<void>) => void }) {
  const root = await RootCA.create();
  const clusterId = 'c' + root.digest.slice(0, 24);
  const mgr = await issueNode(root, 'manager', { clusterId });
  const provider = new NodeCertificateProvider({ certPem: mgr.certPem, key: mgr.key, rootPem: root.certPem });
  const server = new grpc.Server();
  server.addService(service, {
    GetRootCACertificate: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.from(root.certPem)),
    Whoami: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      try {
        const who = identifyGrpcPeer(call.getAuthContext(), root.certPem, { roles: ['manager'], clusterId });
        cb(null, Buffer.from(`${who.nodeId} ${who.role}`));
      } catch (err) {
        assert.ok(err instanceof CaError, errorMessage(err));
        cb({ code: grpc.status.PERMISSION_DENIED, details: `${err.code}: ${err.message}` });
      }
    },
  });
  const creds = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.after(() => new Promise<void>((r) => server.tryShutdown(() => r())));
  return { root, clusterId, mgr, port, provider };
}

function call(port: number, creds: grpc.ChannelCredentials, name: string): Promise<string> {
  // Nodes dial managers by address and name the role: the certificate carries it as a DNS name.
  const client = new ProbeClient(`127.0.0.1:${port}`, creds, {
    'grpc.ssl_target_name_override': MANAGER_OU,
  }) as Probe;
  return new Promise<string>((resolve, reject) => {
    client[name]!(Buffer.alloc(0), (err, res) => (err ? reject(err) : resolve(res!.toString())));
  }).finally(() => client.close());
}

function denied(re: RegExp) {
  return (err: unknown) => {
    const e = err as grpc.ServiceError;
    assert.equal(e.code, grpc.status.PERMISSION_DENIED, e.message);
    assert.match(e.details, re);
    return true;
  };
}

test('grpc-js: a manager certificate passes; worker, self-signed, expired and foreign ones get PERMISSION_DENIED', async (t) => {
  const c = await startCluster(t);
  const creds = (certPem: string, key: KeyObject) => {
    const a = grpcClientCredentialsArgs({ certPem, key, rootPem: c.root.certPem });
    return grpc.credentials.createSsl(a.rootCerts, a.privateKey, a.certChain, a.verifyOptions);
  };
  const m2 = await issueNode(c.root, 'manager', { clusterId: c.clusterId });
  assert.equal(await call(c.port, creds(m2.certPem, m2.key), 'Whoami'), `${m2.nodeId} manager`);

  const w = await issueNode(c.root, 'worker', { clusterId: c.clusterId });
  await assert.rejects(call(c.port, creds(w.certPem, w.key), 'Whoami'), denied(/CA_ROLE_NOT_ALLOWED: role worker/));

  const ss = await selfSignedNodeCert(c.clusterId);
  await assert.rejects(
    call(c.port, creds(ss.certPem, ss.key), 'Whoami'),
    denied(/CA_UNTRUSTED_CERTIFICATE: .*no verified client certificate.*self-signed, expired/),
  );

  const old = await issueNode(c.root, 'manager', {
    clusterId: c.clusterId,
    now: Date.now() - 3 * 3600_000,
    expiryMs: 3600_000,
  });
  await assert.rejects(
    call(c.port, creds(old.certPem, old.key), 'Whoami'),
    denied(/CA_UNTRUSTED_CERTIFICATE: .*no verified client certificate/),
  );

  const other = await RootCA.create();
  const f = await issueNode(other, 'manager', { clusterId: c.clusterId });
  await assert.rejects(
    call(c.port, creds(f.certPem, f.key), 'Whoami'),
    denied(/CA_UNTRUSTED_CERTIFICATE: .*not issued by the cluster root CA/),
  );
});

test('grpc-js: a joiner without a certificate fetches and pins the root, then calls with verified TLS', async (t) => {
  const c = await startCluster(t);
  const tokens = newJoinTokens(c.root.digest);
  const insecure = grpc.credentials.createSsl(null, null, null, {
    rejectUnauthorized: bootstrapClientTlsOptions().rejectUnauthorized,
  });
  const rootPem = await call(c.port, insecure, 'GetRootCACertificate');
  const pinned = checkRootAgainstToken(rootPem, tokens.worker);
  const verified = grpc.credentials.createSsl(Buffer.from(pinned), null, null, {
    checkServerIdentity: nodeServerIdentityCheck(pinned, { roles: ['manager'] }),
  });
  assert.equal(await call(c.port, verified, 'GetRootCACertificate'), c.root.certPem);
  await assert.rejects(
    call(c.port, verified, 'Whoami'),
    denied(/CA_UNTRUSTED_CERTIFICATE: .*no verified client certificate/),
  );

  const otherRoot = await RootCA.create();
  const wrongPin = grpc.credentials.createSsl(Buffer.from(otherRoot.certPem), null, null, {
    checkServerIdentity: nodeServerIdentityCheck(otherRoot.certPem, { roles: ['manager'] }),
  });
  await assert.rejects(call(c.port, wrongPin, 'GetRootCACertificate'), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    return true;
  });
});

test('grpc-js: NodeCertificateProvider.update swaps the server certificate for new connections (renewal, promote)', async (t) => {
  const c = await startCluster(t);
  const seen: string[] = [];
  const client = () =>
    grpc.credentials.createSsl(Buffer.from(c.root.certPem), null, null, {
      checkServerIdentity: (host, cert) => {
        seen.push(cert.subject.CN as string);
        return nodeServerIdentityCheck(c.root.certPem)(host, cert);
      },
    });
  await call(c.port, client(), 'GetRootCACertificate');
  assert.deepEqual(seen, [c.mgr.nodeId]);
  const renewed = await issueNode(c.root, 'manager', { clusterId: c.clusterId });
  c.provider.update({ certPem: renewed.certPem, key: renewed.key, rootPem: c.root.certPem });
  await call(c.port, client(), 'GetRootCACertificate');
  assert.deepEqual(seen, [c.mgr.nodeId, renewed.nodeId]);
});

test('grpc-js strict listener (createSsl with grpcServerCredentialsArgs): only certificates of the cluster get through', async (t) => {
  const root = await RootCA.create();
  const clusterId = 'c' + root.digest.slice(0, 24);
  const mgr = await issueNode(root, 'manager', { clusterId });
  const s = grpcServerCredentialsArgs({ certPem: mgr.certPem, key: mgr.key, rootPem: root.certPem });
  const server = new grpc.Server();
  server.addService(service, {
    GetRootCACertificate: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.from('x')),
    Whoami: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.from(identifyGrpcPeer(call.getAuthContext(), root.certPem).nodeId)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(s.rootCerts, s.keyCertPairs, s.checkClientCertificate),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  t.after(() => new Promise<void>((r) => server.tryShutdown(() => r())));
  const creds = (certPem: string, key: KeyObject) => {
    const a = grpcClientCredentialsArgs({ certPem, key, rootPem: root.certPem });
    return grpc.credentials.createSsl(a.rootCerts, a.privateKey, a.certChain, a.verifyOptions);
  };
  const w = await issueNode(root, 'worker', { clusterId });
  assert.equal(await call(port, creds(w.certPem, w.key), 'Whoami'), w.nodeId);
  const ss = await selfSignedNodeCert(clusterId);
  await assert.rejects(call(port, creds(ss.certPem, ss.key), 'Whoami'), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAVAILABLE, err.message);
    return true;
  });
  const none = grpc.credentials.createSsl(Buffer.from(root.certPem), null, null, {
    checkServerIdentity: nodeServerIdentityCheck(root.certPem),
  });
  await assert.rejects(
    call(port, none, 'GetRootCACertificate'),
    (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE,
  );
});
