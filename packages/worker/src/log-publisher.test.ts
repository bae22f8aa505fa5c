/**
 * The node side of `service logs` against an in-memory engine: which containers a subscription
 * reads (by the swarm labels), the options handed to the engine, the acknowledgement first and
 * Close last, batching, follow picking up a container that appears later, and a failed publish
 * stopping the reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PublishLogsRequest, SubscriptionMessage } from '@shoal/api';
import { silentLogger } from '@shoal/common';
import { ContainerNotFoundError, type LogEntry, type ReadLogsOptions } from '@shoal/engine';
import { LABEL_SERVICE_ID, LABEL_TASK_ID } from './labels.js';
import { LogPublisher, type LogBrokerLink, type LogEngine } from './log-publisher.js';

interface FakeContainer {
  id: string;
  labels: Record<string, string>;
  lines: string[];
  /** With follow: lines that come later, one per read turn, then the log ends. */
  later?: string[];
}

function fakeEngine(containers: FakeContainer[], calls: { id: string; opts: ReadLogsOptions }[]): LogEngine {
  return {
    list: () => Promise.resolve(containers.map((c) => ({ id: c.id }) as never)),
    inspect: (id: string) => {
      const c = containers.find((x) => x.id === id);
      return c ? Promise.resolve({ labels: c.labels } as never) : Promise.reject(new ContainerNotFoundError(id));
    },
    logs: async function* (id: string, opts: Omit<ReadLogsOptions, 'doneFile'> = {}): AsyncGenerator<LogEntry> {
      calls.push({ id, opts });
      const c = containers.find((x) => x.id === id)!;
      const all = opts.tail === undefined ? c.lines : c.lines.slice(-opts.tail);
      for (const l of all)
        yield { time: '2026-11-29T04:00:00.000000000Z', stream: 'stdout', partial: false, line: Buffer.from(l) };
      if (opts.follow)
        for (const l of c.later ?? []) {
          await new Promise((r) => setImmediate(r));
          yield { time: '2026-11-29T04:00:01.000000000Z', stream: 'stderr', partial: true, line: Buffer.from(l) };
        }
    } as LogEngine['logs'],
  };
}

/** A link whose subscription stream is fed by the test. */
function fakeLink(fail?: (req: PublishLogsRequest) => boolean): {
  link: LogBrokerLink;
  sent: PublishLogsRequest[];
  push: (m: SubscriptionMessage) => void;
  end: () => void;
} {
  const sent: PublishLogsRequest[] = [];
  const queue: (SubscriptionMessage | null)[] = [];
  let wake: (() => void) | undefined;
  const push = (m: SubscriptionMessage | null): void => {
    queue.push(m);
    wake?.();
  };
  return {
    sent,
    push,
    end: () => push(null),
    link: {
      async *listen() {
        for (;;) {
          while (queue.length === 0) await new Promise<void>((r) => (wake = r));
          const m = queue.shift()!;
          if (m === null) return;
          yield m;
        }
      },
      publish(req) {
        sent.push(req);
        return fail?.(req) ? Promise.reject(new Error('subscription gone')) : Promise.resolve();
      },
    },
  };
}

const web = (id: string, task: string, lines: string[], later?: string[]): FakeContainer => ({
  id,
  labels: { [LABEL_SERVICE_ID]: 'web', [LABEL_TASK_ID]: task },
  lines,
  ...(later ? { later } : {}),
});

const texts = (sent: PublishLogsRequest[]): string[] =>
  sent.flatMap((r) => (r.Messages ?? []).map((m) => `${m.Context?.TaskID}:${Buffer.from(m.Data!).toString()}`));

test('log publisher: the selected containers, acknowledged first, closed last, with the options', async () => {
  const calls: { id: string; opts: ReadLogsOptions }[] = [];
  const engine = fakeEngine(
    [
      web('c1', 't1', ['a', 'b', 'c']),
      web('c2', 't2', ['d']),
      { id: 'c3', labels: { [LABEL_SERVICE_ID]: 'db', [LABEL_TASK_ID]: 't3' }, lines: ['secret'] },
      { id: 'c4', labels: {}, lines: ['standalone'] },
    ],
    calls,
  );
  const p = new LogPublisher({ engine, nodeId: 'n1', logger: silentLogger() });
  const f = fakeLink();
  await p.serve(
    f.link,
    { ID: 's1', Selector: { ServiceIDs: ['web'] }, Options: { Tail: 2, Since: '2026-11-29T00:00:00Z' } },
    new AbortController().signal,
  );
  assert.deepEqual(f.sent[0], { SubscriptionID: 's1', Messages: [] }, 'the acknowledgement');
  assert.equal(f.sent.at(-1)?.Close, true);
  assert.ok(f.sent.every((r) => r.SubscriptionID === 's1'));
  assert.deepEqual(texts(f.sent).sort(), ['t1:b', 't1:c', 't2:d']);
  assert.deepEqual(
    calls.map((c) => [c.id, c.opts.tail, c.opts.since, c.opts.follow]),
    [
      ['c1', 2, '2026-11-29T00:00:00Z', false],
      ['c2', 2, '2026-11-29T00:00:00Z', false],
    ],
  );
  const m = f.sent.flatMap((r) => r.Messages ?? [])[0]!;
  assert.deepEqual(m.Context, { ServiceID: 'web', NodeID: 'n1', TaskID: 't1' });
  assert.equal(m.Complete, true);

  // A task ID selects that task only; Tail < 0 reads everything.
  const g = fakeLink();
  await p.serve(
    g.link,
    { ID: 's2', Selector: { TaskIDs: ['t3'] }, Options: { Tail: -1 } },
    new AbortController().signal,
  );
  assert.deepEqual(texts(g.sent), ['t3:secret']);
  assert.equal(calls.at(-1)?.opts.tail, undefined);
});

test('log publisher: large logs go in several batches, in order', async () => {
  const lines = Array.from({ length: 2500 }, (_, i) => `l${i}`);
  const p = new LogPublisher({
    engine: fakeEngine([web('c1', 't1', lines)], []),
    nodeId: 'n1',
    logger: silentLogger(),
  });
  const f = fakeLink();
  await p.serve(
    f.link,
    { ID: 's', Selector: { ServiceIDs: ['web'] }, Options: { Tail: -1 } },
    new AbortController().signal,
  );
  assert.ok(f.sent.length >= 4, `${f.sent.length} calls`);
  assert.ok(f.sent.every((r) => (r.Messages ?? []).length <= 1000));
  assert.deepEqual(
    texts(f.sent),
    lines.map((l) => `t1:${l}`),
  );
});

test('log publisher: follow picks up a later container and stops on Close; a failed publish stops the reads', async () => {
  const containers = [web('c1', 't1', ['a'], ['x', 'y'])];
  const p = new LogPublisher({ engine: fakeEngine(containers, []), nodeId: 'n1', logger: silentLogger(), pollMs: 5 });
  const f = fakeLink();
  const ac = new AbortController();
  const running = p.run(f.link, ac.signal);
  f.push({ ID: 's', Selector: { ServiceIDs: ['web'] }, Options: { Follow: true, Tail: -1 } });
  const seen = async (want: string): Promise<void> => {
    while (!texts(f.sent).includes(want)) await new Promise((r) => setTimeout(r, 5));
  };
  await seen('t1:y');
  containers.push(web('c2', 't2', ['late']));
  await seen('t2:late');
  const partial = f.sent.flatMap((r) => r.Messages ?? []).find((m) => Buffer.from(m.Data!).toString() === 'x')!;
  assert.equal(partial.Stream, 'stderr');
  assert.equal(partial.Complete, false);
  f.push({ ID: 's', Close: true });
  f.end();
  await running;
  assert.ok(!f.sent.some((r) => r.Close), 'a followed subscription closed by the manager sends no Close');

  // The manager refuses a batch (subscriber gone): the subscription ends without Close.
  const g = fakeLink((req) => (req.Messages ?? []).length > 0);
  const q = new LogPublisher({
    engine: fakeEngine([web('c1', 't1', ['a', 'b'])], []),
    nodeId: 'n1',
    logger: silentLogger(),
  });
  await assert.rejects(
    q.serve(
      g.link,
      { ID: 's', Selector: { ServiceIDs: ['web'] }, Options: { Tail: -1 } },
      new AbortController().signal,
    ),
    /subscription gone/,
  );
  assert.ok(!g.sent.some((r) => r.Close));
  ac.abort();
});
