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

  constructor(code: string, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/** Thrown when input given by a user (flag, file, spec) is invalid. */
export class InvalidArgumentError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** Thrown when an operation was cancelled through its AbortSignal. */
export class AbortedError extends ShoalError {
  constructor(message = 'operation aborted', options?: { cause?: unknown }) {
    super('ABORTED', message, options);
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
