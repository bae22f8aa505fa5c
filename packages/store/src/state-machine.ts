/**
 * The store as Raft's state machine: each committed entry holds a batch of transactions, applied
 * in order; each proposer gets its transactions' results. Applied changes are published to the
 * watch hub. Snapshots hold every object and the revision.
 */
import { type Logger, silentLogger } from '@shoal/common';
import type { AppliedEntry, StateMachine } from '@shoal/raft';
import { decodeJson, encodeJson } from './codec.js';
import { StoreDecodeError } from './errors.js';
import { ObjectState, type StateSnapshot, type TxnResult } from './state.js';
import { decodeBatch } from './transaction.js';
import { WatchHub, type WatchHubOptions } from './watch.js';

export class StoreStateMachine implements StateMachine {
  readonly state = new ObjectState();
  readonly hub: WatchHub;
  private readonly log: Logger;

  constructor(opts: WatchHubOptions & { logger?: Logger } = {}) {
    this.hub = new WatchHub(opts);
    this.log = opts.logger ?? silentLogger();
  }

  /** One result per entry: the results of its transactions, in order. */
  apply(entries: readonly AppliedEntry[]): (readonly TxnResult[])[] {
    const out: (readonly TxnResult[])[] = [];
    for (const e of entries) {
      if (e.data.byteLength === 0) {
        out.push([]);
        continue;
      }
      let batch;
      try {
        batch = decodeBatch(e.data);
      } catch (err) {
        // Every manager fails the same way on the same entry, so skipping keeps them equal.
        this.log.error({ index: e.index, err: (err as Error).message }, 'skipping an undecodable store entry');
        out.push([{ ok: false, error: err as StoreDecodeError }]);
        continue;
      }
      const results: TxnResult[] = [];
      for (const t of batch.txns) {
        const r = this.state.apply(t);
        if (r.ok) this.hub.publish(r.revision, r.changes);
        results.push(r);
      }
      out.push(results);
    }
    return out;
  }

  snapshot(): Uint8Array {
    return encodeJson(this.state.snapshot());
  }

  restore(data: Uint8Array): void {
    if (data.byteLength === 0) {
      this.state.restore({ v: 1, revision: 0, objects: {} });
    } else {
      let s: StateSnapshot;
      try {
        s = decodeJson(data) as StateSnapshot;
      } catch (err) {
        throw new StoreDecodeError(`store snapshot is not JSON: ${(err as Error).message}`, { cause: err });
      }
      if (s.v !== 1) throw new StoreDecodeError(`store snapshot has unknown version ${String(s.v)}`);
      this.state.restore(s);
    }
    this.hub.reset(this.state.revision);
  }
}
