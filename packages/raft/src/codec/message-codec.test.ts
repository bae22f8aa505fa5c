import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeEntry,
  decodeHardState,
  decodeMessage,
  encodeEntry,
  encodeHardState,
  encodeMessage,
} from './message-codec.js';
import type { Message } from '../core/types.js';
import { newMessage } from '../core/messages.js';
import { RaftDecodeError } from '../errors.js';

const cs = { voters: ['a1', 'b2'], learners: ['c3'], votersOutgoing: [], learnersNext: [], autoLeave: true };

test('messages round-trip with entries, snapshot and context', () => {
  const m: Message = {
    type: 'app',
    from: '00000000000000a1',
    to: '00000000000000b2',
    term: 2 ** 40 + 3,
    index: 17,
    logTerm: 5,
    commit: 16,
    entries: [
      { term: 5, index: 18, type: 'normal', data: new Uint8Array([1, 2, 3]) },
      { term: 5, index: 19, type: 'confChange', data: new Uint8Array(0) },
    ],
    reject: true,
    rejectHint: 9,
    context: new Uint8Array([7, 7]),
    snapshot: { metadata: { index: 10, term: 4, confState: cs }, data: new Uint8Array([9, 8, 7]) },
  };
  const back = decodeMessage(encodeMessage(m));
  const plain = (x: Message) => ({
    ...x,
    context: [...x.context],
    entries: x.entries.map((e) => ({ ...e, data: [...e.data] })),
    snapshot: { ...x.snapshot!, data: [...x.snapshot!.data] },
  });
  assert.deepEqual(plain(back), plain(m));
  assert.equal(back.entries[0]!.data.byteLength, 3);
  assert.deepEqual([...back.snapshot!.data], [9, 8, 7]);
});

test('entries encode once and decode back; hard states round-trip', () => {
  const e = { term: 3, index: 4, type: 'normal' as const, data: Buffer.from('hello') };
  assert.equal(encodeEntry(e), encodeEntry(e), 'cached bytes are reused');
  const d = decodeEntry(encodeEntry(e));
  assert.equal(Buffer.from(d.data).toString(), 'hello');
  assert.equal(d.index, 4);
  const hs = { term: 9, vote: 'abc', commit: 2 ** 52 };
  assert.deepEqual(decodeHardState(encodeHardState(hs)), hs);
});

test('truncated or garbage input fails with RaftDecodeError', () => {
  const m = encodeMessage(newMessage('heartbeat', 'b', { from: 'a', term: 1 }));
  for (let n = 0; n < m.length; n++) assert.throws(() => decodeMessage(m.subarray(0, n)), RaftDecodeError);
  assert.throws(() => decodeMessage(Buffer.concat([m, Buffer.from([0])])), RaftDecodeError);
  const bad = Buffer.from(m);
  bad[1] = 200;
  assert.throws(() => decodeMessage(bad), /unknown message type/);
  assert.throws(() => encodeHardState({ term: -1, vote: '', commit: 0 }), RangeError);
});
