/**
 * The store's errors. Each has a stable code (documented in docs/store.md) and a kind that the
 * control API maps to a gRPC status.
 */
import { ShoalError, type ShoalErrorOptions } from '@shoal/common';
import type { ObjectKind } from './kinds.js';

/** Base of every error the store throws on purpose. */
export class StoreError extends ShoalError {}

/** An object that a read or a transaction names does not exist. */
export class ObjectNotFoundError extends StoreError {
  constructor(
    readonly objectKind: ObjectKind,
    readonly ref: string,
  ) {
    super('STORE_NOT_FOUND', `${objectKind} ${ref} not found`, { kind: 'not-found' });
  }
}

/** A create names an ID or a name that another object of the kind already has. */
export class ObjectExistsError extends StoreError {
  constructor(
    readonly objectKind: ObjectKind,
    readonly field: 'ID' | 'name',
    readonly value: string,
  ) {
    super('STORE_EXISTS', `${objectKind} with ${field} '${value}' already exists`, { kind: 'already-exists' });
  }
}

/**
 * An update or remove carried a version that is not the object's current one: somebody else
 * changed it since it was read (optimistic concurrency). Read again and retry.
 */
export class VersionConflictError extends StoreError {
  constructor(
    readonly objectKind: ObjectKind,
    readonly id: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(
      'STORE_VERSION_CONFLICT',
      `update out of sequence: ${objectKind} ${id} is at version ${actual}, the update was based on version ${expected}`,
      { kind: 'failed-precondition' },
    );
  }
}

/** A transaction is malformed (unknown kind, no ID, an object without Spec.Name where needed). */
export class InvalidTransactionError extends StoreError {
  constructor(message: string) {
    super('STORE_INVALID_TRANSACTION', message, { kind: 'invalid-argument' });
  }
}

/** A watch asked for changes older than the history this manager keeps: list again. */
export class WatchCompactedError extends StoreError {
  constructor(
    readonly fromRevision: number,
    readonly oldest: number,
  ) {
    super(
      'STORE_WATCH_COMPACTED',
      `changes after revision ${fromRevision} are no longer kept (oldest kept: ${oldest}); list again and watch from the list's revision`,
      { kind: 'failed-precondition' },
    );
  }
}

/** The store cannot serve the call now (no leader, not the leader, closed); retry elsewhere or later. */
export class StoreUnavailableError extends StoreError {
  constructor(message: string, options?: ShoalErrorOptions) {
    super('STORE_UNAVAILABLE', message, { ...options, kind: 'unavailable', retryable: true });
  }
}

/** A replicated command could not be decoded: a bug or a version skew between managers. */
export class StoreDecodeError extends StoreError {
  constructor(message: string, options?: ShoalErrorOptions) {
    super('STORE_DECODE', message, { ...options, kind: 'internal' });
  }
}
