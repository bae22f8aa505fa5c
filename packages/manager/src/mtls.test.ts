/**
 * The default caller identity on a real mutual-TLS grpc-js server (the daemon's one port): a
 * joiner without a certificate gets one from the CA, then its certificate identifies it in its
 * session and renewals; forwarding headers are believed from a manager certificate only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { credentials, Metadata, Server, type ChannelCredentials } from '@grpc/grpc-js';
import {
  CAClient,
  CAService,
  DispatcherClient,
  DispatcherService,
  serverCredentialsWithOptionalClientCert,
  serverStream,
  unary,
  type SessionMessage,
} from '@shoal/api';
import {
  createCsr,
  generateNodeKey,
  grpcClientCredentialsArgs,
  MANAGER_OU,
  nodeServerIdentityCheck,
  privateKeyToPem,
} from '@shoal/ca';
import { hasCode } from '@shoal/common';
import { FORWARDED_ADDR, FORWARDED_NODE_ID, FORWARDED_ROLE } from './identity.js';
import { rig } from './test-support.js';

const OPTS = { 'grpc.ssl_target_name_override': MANAGER_OU };

test('mtls: joiner gets a certificate anonymously; its certificate identifies it; forwarding only from managers', async () => {
  const r = await rig();
  const mgrKey = generateNodeKey();
  const mgr = await r.root.issue(await createCsr(mgrKey), { nodeId: 'mgr1', role: 'manager', clusterId: r.clusterId });
  const server = new Server();
  const s = r.manager.services();
  server.addService(CAService, s.CA);
  server.addService(DispatcherService, s.Dispatcher);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      serverCredentialsWithOptionalClientCert({
        ca: Buffer.from(r.root.certPem),
        cert: Buffer.from(mgr.certPem),
        key: Buffer.from(privateKeyToPem(mgrKey)),
      }),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  const addr = `127.0.0.1:${port}`;
  const withCert = (certPem: string, key: KeyObject): ChannelCredentials => {
    const a = grpcClientCredentialsArgs({ certPem, key, rootPem: r.root.certPem });
    return credentials.createSsl(a.rootCerts, a.privateKey, a.certChain, a.verifyOptions);
  };
  const anonymous = credentials.createSsl(Buffer.from(r.root.certPem), null, null, {
    checkServerIdentity: nodeServerIdentityCheck(r.root.certPem),
  });
  const clients: { close(): void }[] = [];
  const aborts: AbortController[] = [];
  try {
    // 1. Join without a certificate.
    const joiner = new CAClient(addr, anonymous, OPTS);
    clients.push(joiner);
    const wKey = generateNodeKey();
    const { NodeID: wid = '' } = await unary(joiner.issueNodeCertificate.bind(joiner), {
      CSR: Buffer.from(await createCsr(wKey)),
      Token: r.tokens().worker,
    });
    const st = await unary(joiner.nodeCertificateStatus.bind(joiner), { NodeID: wid });
    const wCert = Buffer.from(st.Certificate?.Certificate ?? new Uint8Array()).toString();
    // Without a certificate: no session, no renewal.
    const anonDispatcher = new DispatcherClient(addr, anonymous, OPTS);
    clients.push(anonDispatcher);
    await assert.rejects(serverStream(anonDispatcher.session.bind(anonDispatcher), {}).next(), (e) =>
      hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'),
    );
    await assert.rejects(
      unary(joiner.issueNodeCertificate.bind(joiner), { CSR: Buffer.from(await createCsr(wKey)) }),
      (e) => hasCode(e, 'MANAGER_CALLER_NOT_ALLOWED'),
    );

    // 2. With its certificate: the session is its own, from its address; a renewal keeps its ID.
    const wDispatcher = new DispatcherClient(addr, withCert(wCert, wKey), OPTS);
    const wCa = new CAClient(addr, withCert(wCert, wKey), OPTS);
    clients.push(wDispatcher, wCa);
    const first = async (client: DispatcherClient, md?: Metadata): Promise<SessionMessage | undefined> => {
      const ac = new AbortController();
      aborts.push(ac);
      const it = serverStream(client.session.bind(client), {}, { signal: ac.signal, ...(md ? { metadata: md } : {}) });
      return (await it.next()).value ?? undefined;
    };
    const own = await first(wDispatcher);
    assert.equal(own?.Node?.ID, wid);
    assert.equal(own?.Node?.Status?.Addr, '127.0.0.1');
    const renewed = await unary(wCa.issueNodeCertificate.bind(wCa), { CSR: Buffer.from(await createCsr(wKey)) });
    assert.equal(renewed.NodeID, wid);

    // 3. A worker cannot speak for another node through forwarding headers.
    const spoof = new Metadata();
    spoof.set(FORWARDED_NODE_ID, 'mgr1');
    spoof.set(FORWARDED_ROLE, 'manager');
    assert.equal((await first(wDispatcher, spoof))?.Node?.ID, wid, 'forwarding headers from a worker are ignored');

    // 4. A manager forwarding the worker's session names it.
    const mDispatcher = new DispatcherClient(addr, withCert(mgr.certPem, mgrKey), OPTS);
    clients.push(mDispatcher);
    const fwd = new Metadata();
    fwd.set(FORWARDED_NODE_ID, wid);
    fwd.set(FORWARDED_ROLE, 'worker');
    fwd.set(FORWARDED_ADDR, '198.18.0.7');
    const forwarded = await first(mDispatcher, fwd);
    assert.equal(forwarded?.Node?.ID, wid);
    assert.equal(forwarded?.Node?.Status?.Addr, '198.18.0.7');
  } finally {
    for (const a of aborts) a.abort();
    for (const c of clients) c.close();
    server.forceShutdown();
    r.manager.stop();
  }
});
