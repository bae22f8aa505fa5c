import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Snapshotter, snapshotFileName } from './snapshotter.js';
import { DiskLogStore } from './disk-store.js';
import type { Snapshot } from '../core/types.js';
import { WalCorruptError } from '../errors.js';
import type { RecordCipher } from '../wal/record.js';

const cs = { voters: ['a', 'b', 'c'], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

function snap(term: number, index: number, text: string): Snapshot {
  return { metadata: { term, index, confState: cs }, data: Buffer.from(text) };
}

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-snap-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('newest valid snapshot wins; a bad one becomes .broken and the older one is used', async (t) => {
  const dir = await tmp(t);
  const s = new Snapshotter(dir);
  await s.save(snap(1, 10, 'ten'));
  await s.save(snap(2, 20, 'twenty'));
  assert.equal(Buffer.from((await s.loadNewest())!.data).toString(), 'twenty');
  assert.equal((await s.loadNewest((_t, i) => i < 20))!.metadata.index, 10, 'only accepted snapshots are used');
  const f = join(dir, snapshotFileName(2, 20));
  const b = await readFile(f);
  b[b.length - 6]! ^= 1;
  await writeFile(f, b);
  const got = (await s.loadNewest())!;
  assert.equal(got.metadata.index, 10);
  assert.deepEqual(got.metadata.confState, cs);
  assert.ok((await readdir(dir)).includes(`${snapshotFileName(2, 20)}.broken`));
  await s.save(snap(3, 30, 'x'));
  await s.save(snap(3, 40, 'y'));
  await s.purge(2);
  assert.deepEqual(
    s.list().map((x) => x.index),
    [40, 30],
  );
});

test('disk store boots from snapshot + marker + later entries, and purges only after', async (t) => {
  const dir = await tmp(t);
  const st = await DiskLogStore.open(dir, { segmentSize: 2048 });
  const ents = Array.from({ length: 120 }, (_, k) => ({
    term: 1,
    index: k + 1,
    type: 'normal' as const,
    data: Buffer.from(`entry-${k + 1}`),
  }));
  await st.save({ term: 1, vote: 'a', commit: 0 }, ents.slice(0, 60), true);
  await st.saveSnapshot(snap(1, 50, 'state@50'));
  await st.save({ term: 1, vote: 'a', commit: 100 }, ents.slice(60), true);
  await st.saveSnapshot(snap(1, 100, 'state@100'));
  const segsBefore = st.files().wal.length;
  await st.releaseTo(100);
  assert.ok(st.files().wal.length < segsBefore, 'segments purged');
  await st.close();
  const again = await DiskLogStore.open(dir, { segmentSize: 2048 });
  assert.equal((await again.readSnapshotData(1, 100)).toString(), 'state@100');
  assert.deepEqual(
    again.boot.entries.map((e) => e.index),
    Array.from({ length: 20 }, (_, k) => 101 + k),
  );
  assert.equal(again.boot.hardState.commit, 100);
  await again.close();
  // A snapshot file without a WAL marker (crash between the two) is ignored.
  await new Snapshotter(join(dir, 'snap')).save(snap(1, 110, 'unmarked'));
  const third = await DiskLogStore.open(dir, { segmentSize: 2048 });
  assert.equal(third.boot.snapshot!.metadata.index, 100);
  await third.close();
  // If the newest snapshot is broken, the older kept one plus the retained log still boots.
  const f = join(dir, 'snap', snapshotFileName(1, 100));
  const b = await readFile(f);
  b[20]! ^= 4;
  await writeFile(f, b);
  const fourth = await DiskLogStore.open(dir, { segmentSize: 2048 });
  assert.equal(fourth.boot.snapshot!.metadata.index, 50);
  assert.equal(fourth.boot.entries[0]!.index, 51);
  assert.equal(fourth.boot.entries.length, 70);
  await fourth.close();
});

test('a cipher seals WAL bodies and snapshot data; the wrong key refuses to start', async (t) => {
  const dir = await tmp(t);
  const xor = (k: number): RecordCipher => ({
    seal: (b) => Buffer.from(b).map((x) => x ^ k),
    open: (b) => {
      const out = Buffer.from(b).map((x) => x ^ k);
      if (out.length > 0 && out[0] === 0xff) throw new Error('does not authenticate');
      return out;
    },
  });
  const st = await DiskLogStore.open(dir, { cipher: xor(0x5a), segmentSize: 4096 });
  await st.save(
    { term: 1, vote: 'z', commit: 1 },
    [{ term: 1, index: 1, type: 'normal', data: Buffer.from('secret!') }],
    true,
  );
  await st.saveSnapshot(snap(1, 1, 'snapsecret'));
  await st.close();
  const raw = Buffer.concat(
    await Promise.all(
      [
        ...(await readdir(join(dir, 'wal'))).map((n) => join(dir, 'wal', n)),
        ...(await readdir(join(dir, 'snap'))).map((n) => join(dir, 'snap', n)),
      ].map((p) => readFile(p)),
    ),
  );
  assert.equal(raw.includes('secret!'), false);
  assert.equal(raw.includes('snapsecret'), false);
  const ok = await DiskLogStore.open(dir, { cipher: xor(0x5a), segmentSize: 4096 });
  assert.equal((await ok.readSnapshotData(1, 1)).toString(), 'snapsecret');
  await ok.close();
  await assert.rejects(DiskLogStore.open(dir, { cipher: xor(0xa5), segmentSize: 4096 }), WalCorruptError);
});

test('a snapshot corrupted inside its data fails while streamed, becomes .broken, and the next boot falls back', async (t) => {
  const dir = await tmp(t);
  const st = await DiskLogStore.open(dir, { segmentSize: 4096 });
  const ents = Array.from({ length: 30 }, (_, k) => ({
    term: 1,
    index: k + 1,
    type: 'normal' as const,
    data: Buffer.from(`e${k + 1}`),
  }));
  await st.save({ term: 1, vote: 'a', commit: 30 }, ents, true);
  const chunks = (tag: string): Buffer[] => Array.from({ length: 8 }, (_, k) => Buffer.alloc(1000, `${tag}${k}`));
  await st.saveSnapshotChunks({ term: 1, index: 10, confState: cs }, chunks('a'));
  await st.saveSnapshotChunks({ term: 1, index: 20, confState: cs }, chunks('b'));
  const got: Buffer[] = [];
  for await (const c of st.readSnapshotChunks(1, 20)) got.push(Buffer.from(c));
  assert.deepEqual(got, chunks('b'), 'chunks come back as written');
  await st.close();
  const f = join(dir, 'snap', snapshotFileName(1, 20));
  const b = await readFile(f);
  b[b.length - 2000]! ^= 1; // inside the data, far from the header
  await writeFile(f, b);
  const again = await DiskLogStore.open(dir, { segmentSize: 4096 });
  assert.equal(again.boot.snapshot!.metadata.index, 20, 'boot checks only the header');
  await assert.rejects(async () => {
    for await (const c of again.readSnapshotChunks(1, 20)) assert.ok(c.byteLength > 0);
  }, /checksum mismatch/);
  await again.close();
  assert.ok((await readdir(join(dir, 'snap'))).includes(`${snapshotFileName(1, 20)}.broken`));
  const third = await DiskLogStore.open(dir, { segmentSize: 4096 });
  assert.equal(third.boot.snapshot!.metadata.index, 10, 'the older snapshot is used');
  assert.equal(third.boot.entries[0]!.index, 11);
  await third.close();
});

test('a snapshot sent between nodes that seal files with different keys arrives readable', async () => {
  // A toy cipher per node: XOR with the node's key byte plus a tag byte that `open` checks.
  const xorCipher = (key: number): RecordCipher => ({
    seal: (b) => Buffer.concat([Buffer.from([key]), Buffer.from(b).map((x) => x ^ key)]),
    open: (b) => {
      if (b[0] !== key) throw new Error('sealed with another key');
      return Buffer.from(b.subarray(1)).map((x) => x ^ key);
    },
  });
  const a = await mkdtemp(join(tmpdir(), 'shoal-snap-a-'));
  const b = await mkdtemp(join(tmpdir(), 'shoal-snap-b-'));
  try {
    const sender = new Snapshotter(a, { cipher: xorCipher(0x5a) });
    const receiver = new Snapshotter(b, { cipher: xorCipher(0x33) });
    const meta = {
      term: 2,
      index: 40,
      confState: { voters: ['n1', 'n2'], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    };
    const data = Buffer.from('objects '.repeat(300_000));
    await sender.saveChunks(meta, [data.subarray(0, 1_000_000), data.subarray(1_000_000)]);
    const rx = receiver.receive(2, 40);
    for await (const block of sender.readFile(2, 40, 64 * 1024)) await rx.write(block);
    await rx.finish();
    assert.equal(await receiver.installReceived(2, 40), true);
    assert.deepEqual(await receiver.readData(2, 40), data);
    // Stored sealed with the receiver's key: the plaintext is not in the file.
    const stored = await readFile(join(b, snapshotFileName(2, 40)));
    assert.equal(stored.includes(Buffer.from('objects objects')), false);
    assert.equal((await readdir(b)).filter((n) => n.endsWith('.recv')).length, 0, 'no receive leftovers');
  } finally {
    await rm(a, { recursive: true, force: true });
    await rm(b, { recursive: true, force: true });
  }
});
