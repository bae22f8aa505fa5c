import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wal, type WalState } from './wal.js';
import { StorageFatalError, StorageLockedError, WalCorruptError } from '../errors.js';
import type { Entry } from '../core/types.js';
import { RECORD_HEADER, recordSize } from './record.js';
import { encodeEntry, encodeHardState } from '../codec/message-codec.js';

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-wal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function ent(index: number, term: number, s = `e${index}`): Entry {
  return { index, term, type: 'normal', data: Buffer.from(s) };
}

function summary(s: WalState): string[] {
  return s.entries.map((e) => `${e.index}/${e.term}/${Buffer.from(e.data).toString()}`);
}

async function segFile(dir: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
  return join(dir, names[names.length - 1]!);
}

test('restart returns exactly what was saved, including overwritten suffixes', async (t) => {
  const dir = await tmp(t);
  const { wal } = await Wal.open(dir, { segmentSize: 4096 });
  const model: Entry[] = [];
  let hs = { term: 1, vote: 'a', commit: 0 };
  for (let b = 0; b < 60; b++) {
    let start = model.length + 1;
    if (b % 9 === 8 && model.length > 3) start = model.length - 2; // a new leader overwrites a suffix
    const term = 1 + Math.floor(b / 9);
    const batch = [start, start + 1, start + 2].map((i) => ent(i, term, `b${b}i${i}`));
    model.length = start - 1;
    model.push(...batch);
    hs = { term, vote: b % 2 ? 'a' : 'b', commit: Math.max(0, start - 3) };
    await wal.save(hs, batch, b % 3 !== 0);
  }
  await wal.saveSnapshotMarker({ term: 2, index: 5 });
  assert.ok(wal.segmentFiles().length > 2, 'small segments were cut');
  await wal.close();
  const { wal: w2, state } = await Wal.open(dir, { segmentSize: 4096 });
  t.after(() => w2.close());
  assert.deepEqual(state.hardState, hs);
  assert.deepEqual(summary(state), summary({ hardState: hs, entries: model, markers: [] }));
  assert.deepEqual(state.markers[state.markers.length - 1], { term: 2, index: 5 });
  assert.equal(state.truncatedAt, undefined);
});

test('a second open of the same WAL directory is refused', async (t) => {
  const dir = await tmp(t);
  const { wal } = await Wal.open(dir, { segmentSize: 4096 });
  t.after(() => wal.close());
  await assert.rejects(Wal.open(dir), StorageLockedError);
});

test('torn tails of every length are truncated to the last whole record', async (t) => {
  const dir = await tmp(t);
  const { wal } = await Wal.open(dir, { segmentSize: 8192 });
  await wal.save({ term: 1, vote: 'a', commit: 1 }, [ent(1, 1), ent(2, 1)], true);
  const file = await segFile(dir);
  const before = await readFile(file);
  let end = 0;
  while (before.readUInt32LE(end) !== 0 || before[end + 4] !== 0) end += recordSize(before.readUInt32LE(end));
  await wal.save({ term: 1, vote: 'a', commit: 4 }, [ent(3, 1, 'x'.repeat(40)), ent(4, 1, 'y'.repeat(13))], true);
  await wal.close();
  const full = await readFile(file);
  let lastEnd = end;
  while (full.readUInt32LE(lastEnd) !== 0) lastEnd += recordSize(full.readUInt32LE(lastEnd));
  const l3 = encodeEntry(ent(3, 1, 'x'.repeat(40))).length;
  const l4 = encodeEntry(ent(4, 1, 'y'.repeat(13))).length;
  const r3 = end + recordSize(l3);
  const r4 = r3 + recordSize(l4);
  assert.equal(lastEnd, r4 + recordSize(encodeHardState({ term: 1, vote: 'a', commit: 4 }).length));
  for (let len = 0; len < lastEnd - end; len++) {
    const torn = Buffer.from(full);
    torn.fill(0, end + len, lastEnd);
    await writeFile(file, torn);
    const { wal: w, state } = await Wal.open(dir, { segmentSize: 8192 });
    const expect = ['1/1/e1', '2/1/e2'];
    if (end + len >= end + RECORD_HEADER + l3) expect.push(`3/1/${'x'.repeat(40)}`);
    if (end + len >= r3 + RECORD_HEADER + l4) expect.push(`4/1/${'y'.repeat(13)}`);
    assert.deepEqual(summary(state), expect, `torn at +${len}`);
    if (state.truncatedAt !== undefined) assert.ok([end, r3, r4].includes(state.truncatedAt.offset), `+${len}`);
    if (len > 0 && len < 8) assert.equal(state.truncatedAt?.offset, end, 'a torn header is cut');
    // The log keeps working after the truncation, and a second restart agrees.
    await w.save(undefined, [ent(expect.length + 1, 2, 'after')], true);
    await w.close();
    const { wal: w3, state: s3 } = await Wal.open(dir, { segmentSize: 8192 });
    assert.deepEqual(summary(s3), [...expect, `${expect.length + 1}/2/after`]);
    await w3.close();
  }
});

test('a bit flip before the last record refuses to start and names file and offset', async (t) => {
  const dir = await tmp(t);
  const { wal } = await Wal.open(dir, { segmentSize: 8192 });
  for (let i = 1; i <= 6; i++) await wal.save({ term: 1, vote: '', commit: i - 1 }, [ent(i, 1, 'p'.repeat(i))], true);
  await wal.close();
  const file = await segFile(dir);
  const good = await readFile(file);
  // Record boundaries, to tell pad bytes (not covered by the CRC) and the last record apart.
  const starts: number[] = [];
  const pads: [number, number][] = [];
  for (let at = 0; good.readUInt32LE(at) !== 0;) {
    starts.push(at);
    const len = good.readUInt32LE(at);
    pads.push([at + RECORD_HEADER + len, at + recordSize(len)]);
    at += recordSize(len);
  }
  const lastStart = starts[starts.length - 1]!;
  const end = lastStart + recordSize(good.readUInt32LE(lastStart));
  let corrupt = 0;
  for (let off = 0; off < end + 16; off++) {
    for (const bit of [0, 5]) {
      const bad = Buffer.from(good);
      bad[off]! ^= 1 << bit;
      await writeFile(file, bad);
      const inPad = pads.some(([a, b]) => off >= a && off < b);
      try {
        const { wal: w, state } = await Wal.open(dir, { segmentSize: 8192 });
        await w.close();
        if (inPad || off >= end) assert.equal(state.entries.length, 6, `flip at ${off} lost data`);
        else assert.ok(off >= lastStart, `flip at ${off} before the last record was accepted`);
      } catch (err) {
        assert.ok(err instanceof WalCorruptError, `flip at ${off}: ${String(err)}`);
        assert.ok(!inPad && off < end, `flip at ${off} should be harmless`);
        assert.equal(err.file, file.slice(dir.length + 1));
        assert.ok(err.offset <= off, 'offset points at or before the damage');
        corrupt++;
      }
    }
  }
  assert.ok(corrupt > 100, 'flips were detected');
});

test('damage in an older segment or a missing segment refuses to start', async (t) => {
  const dir = await tmp(t);
  const { wal } = await Wal.open(dir, { segmentSize: 1024 });
  for (let i = 1; i <= 40; i++) await wal.save(undefined, [ent(i, 1, 'z'.repeat(30))], true);
  const files = wal.segmentFiles();
  await wal.close();
  assert.ok(files.length >= 3);
  const first = join(dir, files[0]!);
  const good = await readFile(first);
  const bad = Buffer.from(good);
  bad[100]! ^= 0x10;
  await writeFile(first, bad);
  await assert.rejects(Wal.open(dir, { segmentSize: 1024 }), (err: unknown) => {
    return err instanceof WalCorruptError && err.file === files[0] && /older segment/.test(err.message);
  });
  await writeFile(first, good);
  const second = join(dir, files[1]!);
  const keep = await readFile(second);
  await rm(second);
  await assert.rejects(Wal.open(dir, { segmentSize: 1024 }), /is missing/);
  await writeFile(second, keep);
  await truncate(join(dir, files[2]!), 4);
  await assert.rejects(Wal.open(dir, { segmentSize: 1024 }), WalCorruptError);
});

test('purge removes only segments wholly covered, keeping hard state and marker', async (t) => {
  const dir = await tmp(t);
  const { wal } = await Wal.open(dir, { segmentSize: 1024 });
  await wal.save({ term: 3, vote: 'v', commit: 0 }, [], true);
  for (let i = 1; i <= 60; i++) await wal.save(undefined, [ent(i, 3, 'q'.repeat(20))], true);
  await wal.saveSnapshotMarker({ term: 3, index: 30 });
  for (let i = 61; i <= 80; i++) await wal.save(undefined, [ent(i, 3, 'q'.repeat(20))], true);
  const before = wal.segmentFiles();
  await wal.releaseTo(30);
  const after = wal.segmentFiles();
  assert.ok(after.length < before.length, 'something was purged');
  const firstKept = parseInt(after[0]!.slice(17, 33), 16);
  assert.ok(firstKept <= 31, `the first kept segment starts at ${firstKept} <= 31`);
  const removedNext = before[before.length - after.length]!;
  assert.equal(removedNext, after[0]);
  assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.wal')).sort(), after);
  await wal.close();
  const { wal: w2, state } = await Wal.open(dir, { segmentSize: 1024 });
  t.after(() => w2.close());
  assert.deepEqual(state.hardState, { term: 3, vote: 'v', commit: 0 });
  assert.deepEqual(state.markers[state.markers.length - 1], { term: 3, index: 30 });
  assert.equal(state.entries[state.entries.length - 1]!.index, 80);
  assert.ok(state.entries[0]!.index <= 31);
  const idx = state.entries.map((e) => e.index);
  assert.deepEqual(
    idx,
    Array.from({ length: idx.length }, (_, k) => idx[0]! + k),
    'contiguous',
  );
});

test('kill -9 of a writer in a loop loses nothing it acknowledged', async (t) => {
  const dir = await tmp(t);
  const fixture = fileURLToPath(new URL('./wal-writer.fixture.js', import.meta.url));
  let acked = 0;
  let ackTerm = 0;
  for (let round = 0; round < 6; round++) {
    const child = spawn(process.execPath, [fixture, dir, '16384'], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const lines = out.split('\n');
        out = lines.pop()!;
        for (const l of lines) {
          const [, i, term] = l.split(' ');
          acked = Number(i);
          ackTerm = Number(term);
        }
        if (acked > 0 && Math.random() < 0.05) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    const { wal, state } = await Wal.open(dir, { segmentSize: 16384 });
    await wal.close();
    const last = state.entries[state.entries.length - 1];
    assert.ok(last !== undefined && last.index >= acked, `round ${round}: acked ${acked}, recovered ${last?.index}`);
    const e = state.entries.find((x) => x.index === acked)!;
    assert.equal(e.term, ackTerm);
    assert.equal(Buffer.from(e.data).toString(), `v${acked}`.repeat(1 + (acked % 7)));
    assert.ok(state.hardState.commit >= acked);
  }
  assert.ok(acked > 0);
});

test('a failed write or fdatasync is fatal and poisons the WAL', async (t) => {
  const dir = await tmp(t);
  const { wal } = await Wal.open(dir, { segmentSize: 8192 });
  await wal.save(undefined, [ent(1, 1)], true);
  // Pull the file out from under the WAL: the next write fails with EBADF.
  const handles = wal as unknown as { fh: { close(): Promise<void> }; dsync: { close(): Promise<void> } };
  await handles.fh.close();
  await handles.dsync.close();
  await assert.rejects(wal.save(undefined, [ent(2, 1)], true), StorageFatalError);
  await assert.rejects(wal.save(undefined, [ent(3, 1)], true), StorageFatalError, 'never retried');
  await assert.rejects(wal.saveSnapshotMarker({ term: 1, index: 1 }), StorageFatalError);
  // Closing a poisoned WAL reports the poisoning (or nothing): the files are closed either way.
  await wal.close().catch((err: unknown) => assert.ok(err instanceof StorageFatalError, String(err)));
});

test('a fresh WAL sealed by a cipher with random nonces reopens (the header is sealed once)', async (t) => {
  const dir = await tmp(t);
  // The shape of ca's DekCipher: a random prefix per seal, so two seals of one body differ.
  const cipher = {
    seal: (b: Uint8Array) => Buffer.concat([randomBytes(12), b]),
    open: (b: Uint8Array) => Buffer.from(b).subarray(12),
  };
  const { wal } = await Wal.open(dir, { segmentSize: 4096, cipher });
  await wal.save({ term: 1, vote: '', commit: 1 }, [ent(1, 1), ent(2, 1)], true);
  await wal.close();
  const { wal: w2, state } = await Wal.open(dir, { segmentSize: 4096, cipher });
  t.after(() => w2.close());
  assert.deepEqual(summary(state), ['1/1/e1', '2/1/e2']);
  assert.deepEqual(state.hardState, { term: 1, vote: '', commit: 1 });
});
