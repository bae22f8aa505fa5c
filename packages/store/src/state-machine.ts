/**
 * The store as Raft's state machine: each committed entry holds a batch of transactions, applied
 * in order; each proposer gets its transactions' results. Applied changes are published to the
 * watch hub. Snapshots hold every object and the revision.
 *
 * Snapshots stream (raft's StreamingStateMachine): `beginSnapshot` takes the tables' frozen
 * objects by reference (objects are immutable, so later applies do not change them), and the
 * source encodes them lazily as JSON lines in chunks of about 1 MiB: a header line
 * `{"v":2,"revision":N}`, then one `{"k":kind,"o":object}` line per object. No chunk splits a
 * line, so the concatenation of the chunks is the same format. `restoreChunks` parses line by
 * line and replaces the state only after the last chunk (a stream that fails, e.g. a bad CRC at
 * its end, changes nothing). Version 1 snapshots (one JSON document) are still read.
 */
import { type Logger, silentLogger } from '@shoal/common';
import { StringDecoder } from 'node:string_decoder';
import type { AppliedEntry, StateMachine } from '@shoal/raft';
import { decodeJson, jsonString, parseJsonString } from './codec.js';
import { OBJECT_KINDS, type ObjectKind, type StoredObject } from './kinds.js';
import { StoreDecodeError } from './errors.js';
import { ObjectState, type StateSnapshot, type TxnResult } from './state.js';
import { decodeBatch } from './transaction.js';
import { WatchHub, type WatchHubOptions } from './watch.js';

/** A frozen state as chunks (raft's SnapshotSource, which its driver finds by shape). */
export interface StoreSnapshotSource {
  chunks(): Iterable<Uint8Array>;
  close(): void;
}

/** Target size of one snapshot chunk. */
const CHUNK_BYTES = 1024 * 1024;
/** How a version 2 (streamed) snapshot starts. */
const V2_PREFIX = '{"v":2,';

/** Builds a state from the lines of a version 2 snapshot. */
class SnapshotParser {
  revision: number | undefined;
  readonly objects: Partial<Record<ObjectKind, StoredObject[]>> = {};
  private rest = '';
  private readonly decoder = new StringDecoder('utf8');

  push(chunk: Uint8Array): void {
    const text = this.rest + this.decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    for (const line of lines) if (line !== '') this.line(line);
  }

  end(): StateSnapshot {
    const tail = this.rest + this.decoder.end();
    if (tail !== '') this.line(tail);
    if (this.revision === undefined) throw new StoreDecodeError('store snapshot has no header line');
    return { v: 1, revision: this.revision, objects: this.objects };
  }

  private line(text: string): void {
    let v: { v?: unknown; revision?: unknown; k?: unknown; o?: unknown };
    try {
      v = parseJsonString(text) as typeof v;
    } catch (err) {
      throw new StoreDecodeError(`store snapshot line is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (this.revision === undefined) {
      if (v.v !== 2 || typeof v.revision !== 'number')
        throw new StoreDecodeError('store snapshot does not start with a version 2 header');
      this.revision = v.revision;
      return;
    }
    const kind = v.k as ObjectKind;
    if (!(OBJECT_KINDS as readonly string[]).includes(kind) || typeof v.o !== 'object' || v.o === null)
      throw new StoreDecodeError(`store snapshot has a bad object line (kind ${String(v.k)})`);
    (this.objects[kind] ??= []).push(v.o as StoredObject);
  }
}

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

  /** The whole state as one buffer (the chunks of `beginSnapshot`, concatenated). */
  snapshot(): Uint8Array {
    const src = this.beginSnapshot();
    try {
      return Buffer.concat([...src.chunks()]);
    } finally {
      src.close();
    }
  }

  beginSnapshot(): StoreSnapshotSource {
    const frozen = this.state.snapshot();
    return {
      *chunks(): Generator<Uint8Array> {
        yield Buffer.from(`${jsonString({ v: 2, revision: frozen.revision })}\n`, 'utf8');
        let lines: string[] = [];
        let size = 0;
        for (const kind of OBJECT_KINDS) {
          for (const o of frozen.objects[kind] ?? []) {
            const line = `${jsonString({ k: kind, o })}\n`;
            lines.push(line);
            size += line.length;
            if (size >= CHUNK_BYTES) {
              yield Buffer.from(lines.join(''), 'utf8');
              lines = [];
              size = 0;
            }
          }
        }
        if (lines.length > 0) yield Buffer.from(lines.join(''), 'utf8');
      },
      close: () => undefined,
    };
  }

  async restoreChunks(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    let parser: SnapshotParser | undefined;
    const v1: Uint8Array[] = [];
    let first = true;
    for await (const c of chunks) {
      if (first && c.byteLength > 0) {
        first = false;
        if (isV2(c)) parser = new SnapshotParser();
      }
      if (parser) parser.push(c);
      else v1.push(c);
    }
    if (parser) this.install(parser.end());
    else this.restore(Buffer.concat(v1));
  }

  restore(data: Uint8Array): void {
    if (data.byteLength === 0) {
      this.install({ v: 1, revision: 0, objects: {} });
      return;
    }
    if (isV2(data)) {
      const parser = new SnapshotParser();
      parser.push(data);
      this.install(parser.end());
      return;
    }
    let s: StateSnapshot;
    try {
      s = decodeJson(data) as StateSnapshot;
    } catch (err) {
      throw new StoreDecodeError(`store snapshot is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (s.v !== 1) throw new StoreDecodeError(`store snapshot has unknown version ${String(s.v)}`);
    this.install(s);
  }

  private install(s: StateSnapshot): void {
    this.state.restore(s);
    this.hub.reset(this.state.revision);
  }
}

function isV2(data: Uint8Array): boolean {
  return (
    Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, V2_PREFIX.length)).toString('utf8') ===
    V2_PREFIX
  );
}
