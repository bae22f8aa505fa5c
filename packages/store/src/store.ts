/**
 * ClusterStore: the API the manager uses. Reads come from this manager's applied state (call
 * `linearizable()` first when a read must see every committed write). Writes are transactions,
 * proposed through the replicated log; the transactions of one event-loop turn travel in one
 * entry. A transaction either applies whole or fails with a typed error and changes nothing.
 */
import { RaftError } from '@shoal/raft';
import { type Logger, silentLogger, ShoalError } from '@shoal/common';
import { StoreUnavailableError } from './errors.js';
import type { IndexName, ObjectKind, StoredObject } from './kinds.js';
import type { ReplicatedLog } from './replicated-log.js';
import type { Change, TxnResult } from './state.js';
import type { StoreStateMachine } from './state-machine.js';
import { checkTransaction, encodeBatch, type Operation, type Transaction } from './transaction.js';
import type { WatchOptions } from './watch.js';

export interface ClusterStoreOptions {
  readonly log: ReplicatedLog;
  readonly stateMachine: StoreStateMachine;
  readonly now?: () => Date;
  readonly logger?: Logger;
  /** Most transactions in one proposal (default 256). */
  readonly maxBatch?: number;
}

export interface Committed {
  readonly revision: number;
  readonly changes: readonly Change[];
}

interface Pending {
  readonly txn: Transaction;
  resolve(r: TxnResult): void;
  reject(e: Error): void;
}

/** Reads and staged writes of one `update()` call. */
export class Tx {
  readonly ops: Operation[] = [];
  constructor(private readonly store: ClusterStore) {}

  get<T extends StoredObject = StoredObject>(kind: ObjectKind, id: string): T | undefined {
    return this.store.get<T>(kind, id);
  }
  byName<T extends StoredObject = StoredObject>(kind: ObjectKind, name: string): T | undefined {
    return this.store.byName<T>(kind, name);
  }
  find<T extends StoredObject = StoredObject>(kind: ObjectKind, index: IndexName, value: string): T[] {
    return this.store.find<T>(kind, index, value);
  }
  list<T extends StoredObject = StoredObject>(kind: ObjectKind): T[] {
    return this.store.list<T>(kind);
  }
  create(
    kind: ObjectKind,
    object: Omit<StoredObject, 'Version' | 'CreatedAt' | 'UpdatedAt'> & Record<string, unknown>,
  ): void {
    this.ops.push({ op: 'create', kind, object: { ...object, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '' } });
  }
  /** `object.Version.Index` must be the version it was read at. */
  update(kind: ObjectKind, object: StoredObject): void {
    this.ops.push({ op: 'update', kind, object });
  }
  remove(kind: ObjectKind, id: string, version?: number): void {
    this.ops.push(version === undefined ? { op: 'remove', kind, id } : { op: 'remove', kind, id, version });
  }
}

export class ClusterStore {
  private readonly log: ReplicatedLog;
  private readonly sm: StoreStateMachine;
  private readonly now: () => Date;
  private readonly logger: Logger;
  private readonly maxBatch: number;
  private queue: Pending[] = [];
  private flushScheduled = false;
  private closed = false;

  constructor(opts: ClusterStoreOptions) {
    this.log = opts.log;
    this.sm = opts.stateMachine;
    this.now = opts.now ?? (() => new Date());
    this.logger = opts.logger ?? silentLogger();
    this.maxBatch = opts.maxBatch ?? 256;
  }

  /** The revision of the last transaction this manager applied. */
  get revision(): number {
    return this.sm.state.revision;
  }

  isLeader(): boolean {
    return this.log.leaderInfo().isLeader;
  }

  get<T extends StoredObject = StoredObject>(kind: ObjectKind, id: string): T | undefined {
    return this.sm.state.table(kind).get(id) as T | undefined;
  }

  byName<T extends StoredObject = StoredObject>(kind: ObjectKind, name: string): T | undefined {
    const table = this.sm.state.table(kind);
    const id = table.idByName(name);
    return id === undefined ? undefined : (table.get(id) as T | undefined);
  }

  find<T extends StoredObject = StoredObject>(kind: ObjectKind, index: IndexName, value: string): T[] {
    return [...this.sm.state.table(kind).find(index, value)] as T[];
  }

  list<T extends StoredObject = StoredObject>(kind: ObjectKind): T[] {
    return [...this.sm.state.table(kind).all()] as T[];
  }

  /** Waits until this manager has applied every write committed before the call. */
  async linearizable(signal?: AbortSignal): Promise<void> {
    try {
      await this.log.readIndex(signal === undefined ? {} : { signal });
    } catch (err) {
      throw translate(err);
    }
  }

  /** Changes from `fromRevision` on (see WatchHub). */
  watch(opts: WatchOptions = {}): AsyncIterableIterator<Change> {
    return this.sm.hub.watch(opts);
  }

  /**
   * Builds a transaction from this manager's state with `fn`, then commits it. When `fn` stages
   * nothing, nothing is proposed and the result has no changes.
   */
  async update(fn: (tx: Tx) => void, opts: { signal?: AbortSignal } = {}): Promise<Committed> {
    const tx = new Tx(this);
    fn(tx);
    if (tx.ops.length === 0) return { revision: this.revision, changes: [] };
    return this.commit(tx.ops, opts);
  }

  /** Commits `ops` as one transaction; throws the store error of the first failed check. */
  async commit(ops: readonly Operation[], opts: { signal?: AbortSignal } = {}): Promise<Committed> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    const txn: Transaction = { ops, at: this.now().toISOString() };
    checkTransaction(txn);
    opts.signal?.throwIfAborted();
    const r = await new Promise<TxnResult>((resolve, reject) => {
      this.queue.push({ txn, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
    if (!r.ok) throw r.error;
    return { revision: r.revision, changes: r.changes };
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      const data = encodeBatch({ v: 1, txns: batch.map((p) => p.txn) });
      this.log.propose<readonly TxnResult[]>(data).then(
        (results) => {
          for (const [i, p] of batch.entries()) {
            const r = results[i];
            if (r === undefined) p.reject(new StoreUnavailableError('the store returned no result for a transaction'));
            else p.resolve(r);
          }
        },
        (err: unknown) => {
          const e = translate(err);
          this.logger.debug({ err: e.message, txns: batch.length }, 'store proposal failed');
          for (const p of batch) p.reject(e);
        },
      );
    }
  }

  close(): void {
    this.closed = true;
    this.sm.hub.closeAll(new StoreUnavailableError('the store is closed'));
  }
}

/** Raft's failures become store errors with a kind the control API can map. */
function translate(err: unknown): Error {
  if (err instanceof ShoalError && !(err instanceof RaftError)) return err;
  if (err instanceof RaftError) {
    return new StoreUnavailableError(`the cluster store cannot commit now: ${err.message}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}
