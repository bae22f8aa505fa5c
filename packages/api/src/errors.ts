import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { ShoalError, errorMessage, type ErrorKind } from '@shoal/common';

/**
 * The one table between ShoalError kinds and gRPC status codes. Both directions use it; the
 * reverse also maps the gRPC codes no kind produces (see KIND_OF_OTHER_STATUS).
 */
export const STATUS_OF_KIND: Readonly<Record<ErrorKind, status>> = {
  'not-found': status.NOT_FOUND,
  'already-exists': status.ALREADY_EXISTS,
  'failed-precondition': status.FAILED_PRECONDITION,
  unavailable: status.UNAVAILABLE,
  'invalid-argument': status.INVALID_ARGUMENT,
  'permission-denied': status.PERMISSION_DENIED,
  cancelled: status.CANCELLED,
  internal: status.INTERNAL,
};

/** The kinds of gRPC codes that no ShoalError kind maps to (sent by grpc-js itself or others). */
export const KIND_OF_OTHER_STATUS: Readonly<Partial<Record<status, ErrorKind>>> = {
  [status.OK]: 'internal',
  [status.UNKNOWN]: 'internal',
  [status.DEADLINE_EXCEEDED]: 'unavailable',
  [status.RESOURCE_EXHAUSTED]: 'unavailable',
  [status.ABORTED]: 'failed-precondition',
  [status.OUT_OF_RANGE]: 'invalid-argument',
  [status.UNIMPLEMENTED]: 'internal',
  [status.DATA_LOSS]: 'internal',
  [status.UNAUTHENTICATED]: 'permission-denied',
};

const KIND_OF_STATUS = new Map<status, ErrorKind>(
  (Object.entries(STATUS_OF_KIND) as [ErrorKind, status][]).map(([kind, code]) => [code, kind]),
);

/** Metadata keys carrying a ShoalError's stable code and retryability across the wire. */
export const ERROR_CODE_METADATA = 'shoal-error-code';
export const ERROR_RETRYABLE_METADATA = 'shoal-error-retryable';

/** The gRPC status code of an error kind. */
export function statusOfKind(kind: ErrorKind): status {
  return STATUS_OF_KIND[kind];
}

/** The error kind of a gRPC status code. */
export function kindOfStatus(code: status): ErrorKind {
  return KIND_OF_STATUS.get(code) ?? KIND_OF_OTHER_STATUS[code] ?? 'internal';
}

/** A server-side status for anything thrown: what grpc-js handlers pass to callbacks. */
export interface ErrorStatus extends Error {
  code: status;
  details: string;
  metadata: Metadata;
}

/**
 * Turns anything a handler threw into a gRPC status: a ShoalError keeps its kind (as the status
 * code), its stable code and retryability (as metadata) and its message (as details); anything
 * else is internal. A RemoteError received from another node (a forwarded call) passes through
 * unchanged.
 */
export function toErrorStatus(err: unknown): ErrorStatus {
  const metadata = new Metadata();
  let code: status;
  let details: string;
  if (err instanceof ShoalError) {
    code = statusOfKind(err.kind);
    details = err.message;
    metadata.set(ERROR_CODE_METADATA, err.code);
    if (err.retryable) metadata.set(ERROR_RETRYABLE_METADATA, '1');
  } else {
    code = status.INTERNAL;
    details = errorMessage(err);
    metadata.set(ERROR_CODE_METADATA, 'INTERNAL');
  }
  return Object.assign(new Error(details), { code, details, metadata });
}

/** The error a client sees for a failed call: the server's ShoalError, rebuilt. */
export class RemoteError extends ShoalError {
  /** The gRPC status code of the failed call. */
  readonly grpcCode: status;

  constructor(code: string, message: string, options: { kind: ErrorKind; retryable: boolean; grpcCode: status }) {
    super(code, message, { kind: options.kind, retryable: options.retryable });
    this.grpcCode = options.grpcCode;
  }
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number';
}

function firstString(md: Metadata | undefined, key: string): string | undefined {
  const v = md?.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Turns a failed call's error into a ShoalError: the server's code, kind, message and
 * retryability when it was a ShoalError, else `GRPC_<STATUS>` with the kind of the status
 * (a refused connection is `GRPC_UNAVAILABLE`, unavailable and retryable). Anything that is
 * not a gRPC error is returned as is when it is a ShoalError, else wrapped as internal.
 */
export function fromServiceError(err: unknown): ShoalError {
  if (err instanceof ShoalError) return err;
  if (!isServiceError(err)) return new ShoalError('INTERNAL', errorMessage(err), { kind: 'internal', cause: err });
  const kind = kindOfStatus(err.code);
  const code = firstString(err.metadata, ERROR_CODE_METADATA) ?? `GRPC_${status[err.code] ?? err.code}`;
  const retryable = firstString(err.metadata, ERROR_RETRYABLE_METADATA) === '1' || kind === 'unavailable';
  const message = err.details || errorMessage(err);
  return new RemoteError(code, message, { kind, retryable, grpcCode: err.code });
}

/** A status object (for interceptors and `call.emit('error', ...)`). */
export function toStatusObject(err: unknown): StatusObject {
  const s = toErrorStatus(err);
  return { code: s.code, details: s.details, metadata: s.metadata };
}
