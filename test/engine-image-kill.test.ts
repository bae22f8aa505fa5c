// Kill fuzz of `shoal image pull` and `shoal image load`: the CLI is killed with SIGKILL at a
// random moment of the operation, over and over, on one data root. After every kill the image
// index is whole and names only complete content; the next run of the operation succeeds,
// verifies, and leaves no temp file, temp or half-made layer dir, temp index or lock file.
//
// SHOAL_KILL_ROUNDS (default 50) sets the number of kills, SHOAL_KILL_SEED the seed (printed
// with every failure, so a failing schedule can be replayed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildTestImages,
  pushTestImages,
  startRegistry,
  TestImages,
  type RunningRegistry,
  type TestImageSet,
} from '@shoal/testkit';
import { ImageService } from '@shoal/engine';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (layer unpacking: chown, mknod, xattrs)';
const ROUNDS = Number(process.env['SHOAL_KILL_ROUNDS'] ?? 50);
const SEED = Number(process.env['SHOAL_KILL_SEED'] ?? randomInt(2 ** 31));
const cliMain = new URL('../../packages/cli/dist/main.js', import.meta.url).pathname;

let work: string;
let set: TestImageSet;
let reg: RunningRegistry;
let archive: string;

/** mulberry32: a small seeded PRNG, so that a schedule replays from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

before(async () => {
  if (!isRoot) return;
  work = mkdtempSync(join(tmpdir(), 'shoal-image-kill-'));
  set = await buildTestImages();
  reg = await startRegistry({ dir: join(work, 'registry') });
  await pushTestImages(reg.url, { set, only: [TestImages.whiteout, TestImages.busyboxZstd] });
  archive = join(work, 'layout.tar');
  execFileSync('tar', ['-C', set.layoutDir, '-cf', archive, '.']);
});

after(async () => {
  if (!isRoot) return;
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

/** Runs the CLI; with `killAfterMs`, sends it SIGKILL after that long. */
function cli(args: string[], killAfterMs?: number): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [cliMain, 'image', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => c.kill('SIGKILL'), killAfterMs);
    c.on('error', reject);
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ms: performance.now() - t0 });
    });
  });
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path) as AsyncIterable<Buffer>) h.update(c);
  return `sha256:${h.digest('hex')}`;
}

/** Removes every image and collects all content (in this process, through the store's locks). */
async function emptyStore(root: string): Promise<void> {
  const svc = new ImageService({ root });
  for (const img of await svc.list()) await svc.remove(img.id);
  await svc.gc();
}

/** Right after a kill: the index parses and every image in it has all its content. */
async function assertIndexWhole(root: string, where: string): Promise<void> {
  const svc = new ImageService({ root });
  const idx = await svc.store.read(); // throws on a torn or corrupt file
  for (const img of Object.values(idx.images)) {
    for (const d of [img.id, img.manifestDigest, ...img.layerDigests])
      assert.ok(existsSync(svc.blobs.path(d)), `${where}: image ${img.id} names missing blob ${d}`);
    for (const d of img.diffIds)
      assert.ok(await svc.layers.has(d), `${where}: image ${img.id} names missing layer ${d}`);
  }
  for (const id of Object.values(idx.refs)) assert.ok(idx.images[id], `${where}: a ref names no image (${id})`);
}

/** After a completed run: nothing temporary left, every blob and layer verifies. */
async function assertClean(root: string, where: string): Promise<void> {
  const svc = new ImageService({ root });
  const ls = (d: string): string[] => (existsSync(d) ? readdirSync(d) : []);
  assert.deepEqual(ls(svc.blobs.tmpDir), [], `${where}: temp files left`);
  assert.deepEqual(
    ls(svc.layers.dir).filter((n) => n.startsWith('.')),
    [],
    `${where}: temp or half-deleted layer dirs left`,
  );
  assert.deepEqual(
    ls(root).filter((n) => n.endsWith('.tmp')),
    [],
    `${where}: temp index left`,
  );
  assert.deepEqual(ls(join(root, 'locks')), [], `${where}: lock files left`);
  for (const name of ls(svc.blobs.blobDir))
    assert.equal(await sha256(join(svc.blobs.blobDir, name)), `sha256:${name}`, `${where}: blob ${name} verifies`);
  for (const id of ls(svc.layers.dir)) {
    const diffId = readFileSync(join(svc.layers.dir, id, 'diffid'), 'utf8').trim();
    assert.equal(diffId.slice(7, 19), id, `${where}: layer dir ${id} holds its diffID`);
  }
  await assertIndexWhole(root, where);
}

test(
  `kill -9 of image pull and image load at random points (${ROUNDS} rounds, seed ${SEED})`,
  { skip, timeout: 30 * 60_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (SHOAL_KILL_SEED=${SEED} replays it), ${ROUNDS} rounds`);
    const random = prng(SEED);
    const data = mkdtempSync(join(work, 'data-'));
    const root = ['--data-root', data];
    const ops: { name: string; args: string[]; ref: string }[] = [
      {
        name: 'pull',
        args: ['pull', '-q', `${reg.addr}/${TestImages.whiteout}`, ...root],
        ref: `${reg.addr}/${TestImages.whiteout}`,
      },
      {
        name: 'pull',
        args: ['pull', '-q', `${reg.addr}/${TestImages.busyboxZstd}`, ...root],
        ref: `${reg.addr}/${TestImages.busyboxZstd}`,
      },
      { name: 'load', args: ['load', '-q', '-i', archive, ...root], ref: TestImages.whiteout },
    ];
    // How long each operation takes from a cold store and from a warm one (kills are spread over
    // the time of the condition the round runs in, so that most rounds are killed mid-way).
    const cold: number[] = [];
    const warm: number[] = [];
    for (const op of ops) {
      const r = await cli(op.args);
      assert.equal(r.code, 0, r.stderr);
      cold.push(r.ms);
      const w = await cli(op.args);
      assert.equal(w.code, 0, w.stderr);
      warm.push(w.ms);
      await emptyStore(data);
    }
    let killed = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const where = `seed ${SEED} round ${round}`;
      const i = Math.floor(random() * ops.length);
      const op = ops[i];
      assert.ok(op);
      // Half the rounds start from an empty store (downloads and unpacking get killed), the
      // others from whatever the previous round left.
      const empty = random() < 0.5;
      if (empty) await emptyStore(data);
      const took = (empty ? cold[i] : warm[i]) ?? 1000;
      const delay = Math.floor(random() * took * 1.1);
      const r = await cli(op.args, delay);
      if (r.signal === 'SIGKILL') {
        killed++;
      } else {
        assert.equal(r.code, 0, `${where}: ${op.name} not killed but failed: ${r.stderr}`);
        // Follow the machine's speed: a run that finished first shortens later delays of its kind.
        if (empty) cold[i] = Math.min(took, r.ms);
        else warm[i] = Math.min(took, r.ms);
      }
      await assertIndexWhole(data, `${where} after kill at ${delay} ms of ${op.name}`);
      const again = await cli(op.args);
      assert.equal(again.code, 0, `${where}: ${op.name} after the kill: ${again.stderr}`);
      await assertClean(data, `${where} after ${op.name} again`);
      const svc = new ImageService({ root: data });
      const resolved = await svc.resolve(op.ref);
      for (const d of resolved.layerDirs) assert.ok(existsSync(d), `${where}: layer dir ${d}`);
    }
    t.diagnostic(`${killed} of ${ROUNDS} runs were killed before they finished`);
    assert.ok(killed >= ROUNDS / 5, `seed ${SEED}: only ${killed} of ${ROUNDS} runs were killed in time`);
  },
);
