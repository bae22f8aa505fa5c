// ShoalErrors cross a real grpc-js server and client on 127.0.0.1 with kind, code, message and
// retryability intact, for unary, server-streaming and client-streaming calls.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, credentials, status } from '@grpc/grpc-js';
import { ERROR_KINDS, ShoalError, type ErrorKind } from '@shoal/common';
import { clientStream, clientStreamHandler, serverStream, serverStreamHandler, unary, unaryHandler } from './calls.js';
import { RemoteError, STATUS_OF_KIND, fromServiceError, kindOfStatus, statusOfKind } from './errors.js';
import { DispatcherClient, DispatcherService, type SessionMessage } from './gen/shoal/dispatcher.js';
import { HealthClient, HealthService } from './gen/shoal/health.js';
import { RaftClient, RaftService, type RaftMessageRequest } from './gen/shoal/raft.js';

/** The error each test call asks the server to throw, by a name in the request. */
function errorFor(name: string): Error {
  if (name === 'plain') return new Error('plain failure in handler');
  const kind = name as ErrorKind;
  return new ShoalError(`TEST_${kind.toUpperCase().replace(/-/g, '_')}`, `the ${kind} failure, with details`, {
    kind,
    retryable: kind === 'unavailable' || kind === 'failed-precondition',
  });
}

let server: Server;
let addr: string;
let streamEndedResolve!: (n: number) => void;
const streamEnded = {
  promise: new Promise<number>((r) => (streamEndedResolve = r)),
  resolve: (n: number) => streamEndedResolve(n),
};

before(async () => {
  server = new Server();
  server.addService(HealthService, {
    check: unaryHandler(async (req: { Service?: string }) => {
      await Promise.resolve();
      if (req.Service === 'ok') return { Status: 'serving' };
      throw errorFor(req.Service ?? '');
    }),
  });
  server.addService(DispatcherService, {
    session: serverStreamHandler(async (req: { SessionID?: string }, call, signal) => {
      call.write({ SessionID: 'first' } satisfies SessionMessage);
      if (req.SessionID === 'forever') {
        // a long-lived stream: write until the client goes away
        let n = 0;
        while (!signal.aborted) {
          call.write({ SessionID: `m${++n}` } satisfies SessionMessage);
          await new Promise((r) => setImmediate(r));
        }
        streamEnded.resolve(n);
        return;
      }
      await Promise.resolve();
      if (req.SessionID === 'ok') return;
      throw errorFor(req.SessionID ?? '');
    }),
  });
  server.addService(RaftService, {
    streamRaftMessage: clientStreamHandler(async (call) => {
      let n = 0;
      for await (const msg of call as AsyncIterable<RaftMessageRequest>) {
        n++;
        const text = Buffer.from(msg.Message ?? new Uint8Array()).toString();
        if (text !== 'ok') throw errorFor(text);
      }
      return n === 0 ? {} : {};
    }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  addr = `127.0.0.1:${port}`;
});

after(() => {
  server.forceShutdown();
});

test('the table maps every kind to a distinct status, and back', () => {
  const codes = ERROR_KINDS.map(statusOfKind);
  assert.equal(new Set(codes).size, ERROR_KINDS.length);
  for (const kind of ERROR_KINDS) assert.equal(kindOfStatus(statusOfKind(kind)), kind);
  assert.equal(STATUS_OF_KIND['not-found'], status.NOT_FOUND);
  assert.equal(STATUS_OF_KIND['failed-precondition'], status.FAILED_PRECONDITION);
  assert.equal(kindOfStatus(status.DEADLINE_EXCEEDED), 'unavailable');
  assert.equal(kindOfStatus(status.UNAUTHENTICATED), 'permission-denied');
});

test('unary: every kind arrives with its code, message and retryability', async () => {
  const client = new HealthClient(addr, credentials.createInsecure());
  try {
    assert.deepEqual(await unary(client.check.bind(client), { Service: 'ok' }), { Status: 'serving' });
    for (const kind of ERROR_KINDS) {
      const want = errorFor(kind) as ShoalError;
      await assert.rejects(unary(client.check.bind(client), { Service: kind }), (err: unknown) => {
        assert.ok(err instanceof RemoteError, `${kind}: got ${String(err)}`);
        assert.equal(err.kind, kind);
        assert.equal(err.code, want.code);
        assert.equal(err.message, want.message);
        assert.equal(err.retryable, want.retryable || kind === 'unavailable');
        assert.equal(err.grpcCode, statusOfKind(kind));
        return true;
      });
    }
  } finally {
    client.close();
  }
});

test('unary: an error that is not a ShoalError is internal, message kept', async () => {
  const client = new HealthClient(addr, credentials.createInsecure());
  try {
    await assert.rejects(unary(client.check.bind(client), { Service: 'plain' }), (err: unknown) => {
      assert.ok(err instanceof RemoteError);
      assert.equal(err.kind, 'internal');
      assert.equal(err.code, 'INTERNAL');
      assert.equal(err.message, 'plain failure in handler');
      return true;
    });
  } finally {
    client.close();
  }
});

test('server stream: messages, then the error with its kind and code', async () => {
  const client = new DispatcherClient(addr, credentials.createInsecure());
  try {
    const got: string[] = [];
    for await (const m of serverStream(client.session.bind(client), { SessionID: 'ok' })) got.push(m.SessionID ?? '');
    assert.deepEqual(got, ['first']);
    for (const kind of ['not-found', 'permission-denied', 'unavailable'] as const) {
      const seen: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const m of serverStream(client.session.bind(client), { SessionID: kind }))
            seen.push(m.SessionID ?? '');
        })(),
        (err: unknown) => {
          assert.ok(err instanceof ShoalError);
          assert.equal(err.kind, kind);
          assert.equal(err.code, (errorFor(kind) as ShoalError).code);
          assert.equal(err.message, `the ${kind} failure, with details`);
          return true;
        },
      );
      assert.deepEqual(seen, ['first']);
    }
  } finally {
    client.close();
  }
});

test('server stream: a client that stops reading cancels the handler through its signal', async () => {
  const client = new DispatcherClient(addr, credentials.createInsecure());
  try {
    const got: string[] = [];
    for await (const m of serverStream(client.session.bind(client), { SessionID: 'forever' })) {
      got.push(m.SessionID ?? '');
      if (got.length === 3) break;
    }
    assert.deepEqual(got, ['first', 'm1', 'm2']);
    assert.ok((await streamEnded.promise) >= 2, 'the handler saw the cancel and returned');
  } finally {
    client.close();
  }
});

test('client stream: the response, or the handler error', async () => {
  const client = new RaftClient(addr, credentials.createInsecure());
  try {
    const okCall = clientStream(client.streamRaftMessage.bind(client));
    okCall.stream.write({ Message: Buffer.from('ok') });
    okCall.stream.write({ Message: Buffer.from('ok') });
    okCall.stream.end();
    assert.deepEqual(await okCall.response, {});
    const bad = clientStream(client.streamRaftMessage.bind(client));
    bad.stream.write({ Message: Buffer.from('already-exists') });
    bad.stream.end();
    await assert.rejects(bad.response, (err: unknown) => {
      assert.ok(err instanceof ShoalError);
      assert.equal(err.kind, 'already-exists');
      assert.equal(err.code, 'TEST_ALREADY_EXISTS');
      return true;
    });
  } finally {
    client.close();
  }
});

test('a refused connection is unavailable and retryable; an aborted call is cancelled', async () => {
  const probe = new Server();
  const port = await new Promise<number>((resolve, reject) =>
    probe.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  probe.forceShutdown(); // nothing listens on `port` any more
  const dead = new HealthClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    await assert.rejects(unary(dead.check.bind(dead), { Service: 'ok' }), (err: unknown) => {
      assert.ok(err instanceof ShoalError);
      assert.equal(err.kind, 'unavailable');
      assert.equal(err.code, 'GRPC_UNAVAILABLE');
      assert.equal(err.retryable, true);
      return true;
    });
  } finally {
    dead.close();
  }
  const client = new HealthClient(addr, credentials.createInsecure());
  try {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(unary(client.check.bind(client), { Service: 'ok' }, { signal: ac.signal }), (err: unknown) => {
      assert.ok(err instanceof ShoalError);
      assert.equal(err.kind, 'cancelled');
      return true;
    });
  } finally {
    client.close();
  }
});

test('fromServiceError keeps a ShoalError and wraps anything else as internal', () => {
  const e = new ShoalError('X', 'y', { kind: 'not-found' });
  assert.equal(fromServiceError(e), e);
  const w = fromServiceError('boom');
  assert.equal(w.kind, 'internal');
  assert.equal(w.message, 'boom');
});
