// The roles declared in proto/ are enforced by the interceptor on a real grpc-js server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { ShoalError } from '@shoal/common';
import { authInterceptor } from './auth.js';
import { unary, unaryHandler } from './calls.js';
import { CAClient, CAService } from './gen/shoal/ca.js';
import { ControlClient, ControlService } from './gen/shoal/control.js';
import type { CallerRole } from './roles.js';

// The test has no TLS: the caller's role comes from a header, where the daemon reads certificates.
let server: Server;
let addr: string;
let handled = 0;

before(async () => {
  server = new Server({
    interceptors: [
      authInterceptor(({ metadata }) => {
        const r = metadata.get('x-test-role')[0];
        if (r === 'explode') throw new ShoalError('TEST_RESOLVE', 'cannot tell who you are', { kind: 'internal' });
        return typeof r === 'string' && r !== '' ? (r as CallerRole) : undefined;
      }),
    ],
  });
  server.addService(ControlService, {
    getNode: unaryHandler(async () => {
      await Promise.resolve();
      handled++;
      return { Node: { ID: 'n1' } };
    }),
  });
  server.addService(CAService, {
    getRootCaCertificate: unaryHandler(async () => {
      await Promise.resolve();
      return { Certificate: Buffer.from('PEM') };
    }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  addr = `127.0.0.1:${port}`;
});

after(() => server.forceShutdown());

function as(role: string | undefined): Metadata {
  const md = new Metadata();
  if (role !== undefined) md.set('x-test-role', role);
  return md;
}

test('a worker calling a manager-only RPC is refused before the handler runs', async () => {
  const client = new ControlClient(addr, credentials.createInsecure());
  try {
    const before = handled;
    await assert.rejects(
      unary(client.getNode.bind(client), { NodeID: 'n1' }, { metadata: as('worker') }),
      (err: unknown) => {
        assert.ok(err instanceof ShoalError);
        assert.equal(err.kind, 'permission-denied');
        assert.equal(err.code, 'API_PERMISSION_DENIED');
        assert.match(err.message, /\/shoal.Control\/GetNode may be called by manager or local, not by a worker/);
        return true;
      },
    );
    await assert.rejects(
      unary(client.getNode.bind(client), { NodeID: 'n1' }, { metadata: as(undefined) }),
      /without a certificate/,
    );
    assert.equal(handled, before, 'the handler never ran');
    const res = await unary(client.getNode.bind(client), { NodeID: 'n1' }, { metadata: as('manager') });
    assert.equal(res.Node?.ID, 'n1');
    await unary(client.getNode.bind(client), { NodeID: 'n1' }, { metadata: as('local') });
    assert.equal(handled, before + 2);
  } finally {
    client.close();
  }
});

test('anonymous RPCs accept callers without a certificate; resolver errors end the call', async () => {
  const client = new CAClient(addr, credentials.createInsecure());
  try {
    const res = await unary(client.getRootCaCertificate.bind(client), {}, { metadata: as(undefined) });
    assert.equal(Buffer.from(res.Certificate ?? new Uint8Array()).toString(), 'PEM');
    await assert.rejects(
      unary(client.getRootCaCertificate.bind(client), {}, { metadata: as('explode') }),
      (err: unknown) => {
        assert.ok(err instanceof ShoalError);
        assert.equal(err.code, 'TEST_RESOLVE');
        assert.equal(err.kind, 'internal');
        return true;
      },
    );
  } finally {
    client.close();
  }
});
