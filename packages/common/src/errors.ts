/**
 * What kind of failure an error is, in the sense of containerd's errdefs and gRPC status
 * codes: boundaries (gRPC status, CLI exit codes, HTTP) translate the kind, never the text.
 */
export type ErrorKind =
  | 'not-found'
  | 'already-exists'
  | 'failed-precondition'
  | 'unavailable'
  | 'invalid-argument'
  | 'permission-denied'
  | 'cancelled'
  | 'internal';

/** Every ErrorKind, for exhaustive tables at boundaries. */
export const ERROR_KINDS: readonly ErrorKind[] = [
  'not-found',
  'already-exists',
  'failed-precondition',
  'unavailable',
  'invalid-argument',
  'permission-denied',
  'cancelled',
  'internal',
];

/** Options every ShoalError takes. */
export interface ShoalErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  /** Defaults to `unavailable` when retryable, else `internal`. */
  kind?: ErrorKind;
}

/**
 * Base class of every error Shoal throws on purpose. Each package derives its own base
 * (`RaftError`, `EngineError`, ...) and one small class per failure. `code` is stable and
 * documented: callers and boundaries (gRPC status, CLI exit codes) switch on it, never on text.
 */
export class ShoalError extends Error {
  /** Stable machine-readable code, e.g. `ENGINE_IMAGE_NOT_FOUND`. */
  readonly code: string;
  /** True when retrying the same operation later may succeed. */
  readonly retryable: boolean;
  /** The failure's kind, mapped to a gRPC status or exit code at boundaries. */
  readonly kind: ErrorKind;

  constructor(code: string, message: string, options?: ShoalErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
    this.kind = options?.kind ?? (this.retryable ? 'unavailable' : 'internal');
  }
}

/** Thrown when input given by a user (flag, file, spec) is invalid. */
export class InvalidArgumentError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, { ...options, kind: 'invalid-argument' });
  }
}

/** Thrown when an operation was cancelled through its AbortSignal. */
export class AbortedError extends ShoalError {
  constructor(message = 'operation aborted', options?: { cause?: unknown }) {
    super('ABORTED', message, { ...options, kind: 'cancelled' });
  }
}

/** True if `err` is a ShoalError carrying `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof ShoalError && err.code === code;
}

/** A readable message for anything thrown. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The errno-style code of a Node system error (`ENOENT`, ...), if any. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** The kind of anything thrown: a ShoalError's own, else `internal`. */
export function errorKind(err: unknown): ErrorKind {
  return err instanceof ShoalError ? err.kind : 'internal';
}

/**
 * A catch handler that swallows only Node system errors with one of `codes` (e.g. `ENOENT`,
 * `ESRCH`) and rethrows anything else: `await rm(path).catch(ignoreErrno('ENOENT'))`.
 */
export function ignoreErrno(...codes: string[]): (err: unknown) => undefined {
  return (err: unknown) => {
    const code = errnoCode(err);
    if (code !== undefined && codes.includes(code)) return undefined;
    throw err;
  };
}
