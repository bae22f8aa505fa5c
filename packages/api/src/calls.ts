import type {
  CallOptions,
  ClientReadableStream,
  ClientUnaryCall,
  ClientWritableStream,
  Metadata,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceError,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
} from '@grpc/grpc-js';
import { Metadata as GrpcMetadata } from '@grpc/grpc-js';
import { fromServiceError, toErrorStatus } from './errors.js';

// Glue between grpc-js callbacks and async code, with every error crossing through the one
// table in errors.ts (ShoalError on both sides).

/** An AbortSignal that fires when the client cancels the call (or its deadline passes). */
function cancelSignal(call: { cancelled: boolean; once(event: 'cancelled', fn: () => void): unknown }): AbortSignal {
  const ac = new AbortController();
  if (call.cancelled) ac.abort();
  else call.once('cancelled', () => ac.abort());
  return ac.signal;
}

/**
 * A grpc-js unary handler from an async function; what it throws becomes the call's status.
 * `signal` aborts when the client cancels.
 */
export function unaryHandler<Req, Res>(
  fn: (request: Req, call: ServerUnaryCall<Req, Res>, signal: AbortSignal) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request, call, cancelSignal(call)).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toErrorStatus(err)),
    );
  };
}

/**
 * A grpc-js server-streaming handler from an async function that writes with `call.write` and
 * returns when the stream is complete; what it throws ends the stream with that status.
 * `signal` aborts when the client cancels or goes away: long-lived streams (sessions,
 * assignments) end on it.
 */
export function serverStreamHandler<Req, Res>(
  fn: (request: Req, call: ServerWritableStream<Req, Res>, signal: AbortSignal) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const signal = cancelSignal(call);
    fn(call.request, call, signal).then(
      () => {
        if (!signal.aborted) call.end();
      },
      (err: unknown) => {
        if (!signal.aborted) call.emit('error', toErrorStatus(err));
      },
    );
  };
}

/** A grpc-js client-streaming handler from an async function reading `call` (async iterable). */
export function clientStreamHandler<Req, Res>(
  fn: (call: ServerReadableStream<Req, Res>) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    fn(call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toErrorStatus(err)),
    );
  };
}

/** Per-call options for the client helpers. */
export interface CallSettings {
  metadata?: Metadata;
  /** Absolute deadline (ms since epoch or Date). */
  deadline?: Date | number;
  /** Cancels the call (it then fails with kind `cancelled`). */
  signal?: AbortSignal;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/**
 * Calls a unary method of a generated client and returns its response; a failure rejects with
 * the server's ShoalError (see fromServiceError). `unary(client.getNode.bind(client), req)`.
 */
export function unary<Req, Res>(
  method: UnaryMethod<Req, Res>,
  request: Req,
  settings: CallSettings = {},
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const options: Partial<CallOptions> = settings.deadline === undefined ? {} : { deadline: settings.deadline };
    const call = method(request, settings.metadata ?? new GrpcMetadata(), options, (err, res) => {
      settings.signal?.removeEventListener('abort', onAbort);
      if (err) reject(fromServiceError(err));
      else resolve(res);
    });
    function onAbort(): void {
      call.cancel();
    }
    if (settings.signal?.aborted) call.cancel();
    else settings.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

type ServerStreamMethod<Req, Res> = (
  request: Req,
  metadata?: Metadata,
  options?: Partial<CallOptions>,
) => ClientReadableStream<Res>;

/**
 * Calls a server-streaming method and yields its messages; the stream's failure is thrown as
 * a ShoalError. Breaking out of the loop (or aborting `signal`) cancels the call.
 */
export async function* serverStream<Req, Res>(
  method: ServerStreamMethod<Req, Res>,
  request: Req,
  settings: CallSettings = {},
): AsyncGenerator<Res, void, undefined> {
  const options: Partial<CallOptions> = settings.deadline === undefined ? {} : { deadline: settings.deadline };
  const call = method(request, settings.metadata ?? new GrpcMetadata(), options);
  const onAbort = (): void => call.cancel();
  if (settings.signal?.aborted) call.cancel();
  else settings.signal?.addEventListener('abort', onAbort, { once: true });
  let done = false;
  try {
    for await (const msg of call as AsyncIterable<Res>) yield msg;
    done = true;
  } catch (err) {
    done = true;
    throw fromServiceError(err);
  } finally {
    settings.signal?.removeEventListener('abort', onAbort);
    if (!done) call.cancel();
  }
}

type ClientStreamMethod<Req, Res> = (
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientWritableStream<Req>;

/** A client stream being written, with the promise of the server's one response. */
export interface ClientStream<Req, Res> {
  stream: ClientWritableStream<Req>;
  response: Promise<Res>;
}

/** Opens a client-streaming call: write to `stream`, `end()` it, await `response`. */
export function clientStream<Req, Res>(
  method: ClientStreamMethod<Req, Res>,
  settings: CallSettings = {},
): ClientStream<Req, Res> {
  let stream!: ClientWritableStream<Req>;
  const options: Partial<CallOptions> = settings.deadline === undefined ? {} : { deadline: settings.deadline };
  const response = new Promise<Res>((resolve, reject) => {
    stream = method(settings.metadata ?? new GrpcMetadata(), options, (err, res) => {
      settings.signal?.removeEventListener('abort', onAbort);
      if (err) reject(fromServiceError(err));
      else resolve(res);
    });
  });
  function onAbort(): void {
    stream.cancel();
  }
  if (settings.signal?.aborted) stream.cancel();
  else settings.signal?.addEventListener('abort', onAbort, { once: true });
  return { stream, response };
}
