/**
 * The grpc-js services the daemon adds to its server, on a real server on loopback: nodes and
 * certificates cross the wire (bytes fields included), RPCs of later issues answer
 * failed-precondition with a stable code, and a session streams the node's state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { credentials, Server, ServerCredentials } from '@grpc/grpc-js';
import {
  CAClient,
  CAService,
  ControlClient,
  ControlService,
  DispatcherClient,
  DispatcherService,
  RaftMembershipService,
  serverStream,
  unary,
} from '@shoal/api';
import { hasCode } from '@shoal/common';
import type { CallerIdentity } from './identity.js';
import { Manager } from './manager.js';
import { newCsr, rig } from './test-support.js';

test('services: Control, CA and Dispatcher over grpc-js', async () => {
  const r = await rig();
  let who: CallerIdentity = { addr: '' };
  // The same manager state, with the caller's identity supplied by the test (no TLS here).
  const m = new Manager({
    nodeId: 'mgr1',
    store: r.store,
    raft: r.raft,
    rootCA: r.root,
    clock: r.clock,
    identify: (call) => ({ ...who, addr: call.getPeer() === '' ? '' : '127.0.0.1' }),
  });
  m.start();
  r.manager.stop();
  const s = m.services();
  const server = new Server();
  server.addService(ControlService, s.Control);
  server.addService(CAService, s.CA);
  server.addService(DispatcherService, s.Dispatcher);
  server.addService(RaftMembershipService, s.RaftMembership);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const addr = `127.0.0.1:${port}`;
  const control = new ControlClient(addr, credentials.createInsecure());
  const ca = new CAClient(addr, credentials.createInsecure());
  const dispatcher = new DispatcherClient(addr, credentials.createInsecure());
  const ac = new AbortController();
  try {
    const root = await unary(ca.getRootCaCertificate.bind(ca), {});
    assert.equal(Buffer.from(root.Certificate ?? new Uint8Array()).toString(), r.root.certPem);
    const joined = await unary(ca.issueNodeCertificate.bind(ca), { CSR: await newCsr(), Token: r.tokens().worker });
    const st = await unary(ca.nodeCertificateStatus.bind(ca), { NodeID: joined.NodeID ?? '' });
    const cert = new X509Certificate(Buffer.from(st.Certificate?.Certificate ?? new Uint8Array()));
    assert.match(cert.subject, /OU=swarm-worker/);

    const ls = await unary(control.listNodes.bind(control), { Filters: { Roles: ['worker'] } });
    assert.deepEqual(
      ls.Nodes?.map((n) => n.ID),
      [joined.NodeID],
    );
    const mgr = await unary(control.getNode.bind(control), { NodeID: 'mgr1' });
    assert.equal(mgr.Node?.ManagerStatus?.Leader, true);
    // Networks on the wire: created with the given subnet; an overlapping one is already-exists.
    const subnet = (s: string): { Name: string; IPAMOptions: { Configs: { Subnet: string }[] } } => ({
      Name: `net-${s.replace(/[./]/g, '-')}`,
      IPAMOptions: { Configs: [{ Subnet: s }] },
    });
    const made = await unary(control.createNetwork.bind(control), { Spec: subnet('198.19.150.0/24') });
    assert.equal(made.Network?.IPAMOptions?.Configs?.[0]?.Gateway, '198.19.150.1');
    const nets = await unary(control.listNetworks.bind(control), {});
    assert.deepEqual(
      nets.Networks?.map((n) => n.ID),
      [made.Network?.ID],
    );
    await assert.rejects(unary(control.createNetwork.bind(control), { Spec: subnet('198.19.150.128/25') }), (e) => {
      assert.ok(hasCode(e, 'NETWORK_SUBNET_OVERLAP'));
      assert.equal((e as { kind?: string }).kind, 'already-exists');
      return true;
    });
    // A service without an image is refused on the wire as invalid-argument, naming the field.
    await assert.rejects(unary(control.createService.bind(control), { Spec: { Name: 'web' } }), (e) => {
      assert.ok(hasCode(e, 'MANAGER_INVALID_REQUEST'));
      assert.equal((e as { kind?: string }).kind, 'invalid-argument');
      assert.match((e as Error).message, /Image/);
      return true;
    });
    // Secrets on the wire: data never comes back; rm while a service uses it is failed-precondition.
    const sec = await unary(control.createSecret.bind(control), { Spec: { Name: 'pw', Data: Buffer.from('hunter2') } });
    const got = await unary(control.getSecret.bind(control), { SecretID: 'pw' });
    assert.equal(got.Secret?.ID, sec.Secret?.ID);
    assert.equal(Buffer.from(got.Secret?.Spec?.Data ?? []).length, 0);
    const listed = await unary(control.listSecrets.bind(control), {});
    assert.equal(Buffer.from(listed.Secrets?.[0]?.Spec?.Data ?? []).length, 0);
    const svc = await unary(control.createService.bind(control), {
      Spec: { Name: 'db', TaskTemplate: { ContainerSpec: { Image: 'busybox:1', Secrets: [{ SecretName: 'pw' }] } } },
    });
    assert.equal(svc.Service?.Spec?.TaskTemplate?.ContainerSpec?.Secrets?.[0]?.SecretID, sec.Secret?.ID);
    await assert.rejects(unary(control.removeSecret.bind(control), { SecretID: 'pw' }), (e) => {
      assert.ok(hasCode(e, 'MANAGER_IN_USE'));
      assert.equal((e as { kind?: string }).kind, 'failed-precondition');
      assert.match((e as Error).message, /in use by the following service: db/);
      return true;
    });
    await unary(control.removeService.bind(control), { ServiceID: 'db' });
    await unary(control.removeSecret.bind(control), { SecretID: 'pw' });
    assert.deepEqual((await unary(control.listSecrets.bind(control), {})).Secrets, []);
    await assert.rejects(unary(control.getNode.bind(control), { NodeID: 'nope' }), (e) =>
      hasCode(e, 'MANAGER_NODE_NOT_FOUND'),
    );
    assert.deepEqual((await unary(control.listServices.bind(control), {})).Services, []);
    assert.deepEqual(
      (await unary(control.listTasks.bind(control), { Filters: { DesiredStates: ['running'] } })).Tasks,
      [],
    );

    // The worker opens its session: the first message carries its node, now ready.
    who = { nodeId: joined.NodeID ?? '', role: 'worker', addr: '' };
    const it = serverStream(
      dispatcher.session.bind(dispatcher),
      { Description: { Hostname: 'w1' } },
      { signal: ac.signal },
    );
    const first = await it.next();
    assert.equal(first.done, false);
    const msg = first.value;
    assert.ok(msg);
    assert.equal(msg.Node?.ID, joined.NodeID);
    assert.equal(msg.Node?.Status?.State, 'ready');
    assert.equal(msg.Node?.Description?.Hostname, 'w1');
    assert.equal(msg.HeartbeatPeriod, 5e9);
    const hb = await unary(dispatcher.heartbeat.bind(dispatcher), { SessionID: msg.SessionID ?? '' });
    assert.equal(hb.Period, 5e9);
    await it.return(undefined);
  } finally {
    ac.abort();
    m.stop();
    control.close();
    ca.close();
    dispatcher.close();
    server.forceShutdown();
  }
});
