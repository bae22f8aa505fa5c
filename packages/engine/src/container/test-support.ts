/**
 * Test support for the lifecycle tests: a one-layer busybox image on local disk (the same content
 * the lab registry serves, unpacked), a private engine (data root, run root, cgroup parent in
 * temp dirs) and a cleanup that leaves nothing behind: containers, shims, mounts, cgroups, dirs.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hasCode } from '@shoal/common';
import type { ResolvedImage } from '../image/types.js';
import { Engine, type EngineOptions, type ImageResolver } from '../engine.js';
import { Cgroup } from '../cgroups/cgroup.js';

const APPLETS = [
  'sh',
  'echo',
  'cat',
  'sleep',
  'ls',
  'test',
  'touch',
  'rm',
  'printf',
  'true',
  'false',
  'head',
  'dd',
  'seq',
];

/** A busybox layer dir and a resolver that answers every ref with it. */
export function busyboxImage(root: string): ImageResolver {
  const layer = join(root, 'layer');
  mkdirSync(join(layer, 'bin'), { recursive: true });
  mkdirSync(join(layer, 'etc'), { recursive: true });
  mkdirSync(join(layer, 'tmp'), { recursive: true });
  copyFileSync('/bin/busybox', join(layer, 'bin', 'busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(layer, 'bin', a));
  writeFileSync(join(layer, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(layer, 'etc', 'group'), 'root:x:0:\n');
  const image: ResolvedImage = {
    id: 'sha256:' + '0'.repeat(64),
    ref: 'test/busybox:latest',
    config: { Cmd: ['sh'], Env: ['PATH=/bin'], WorkingDir: '/' },
    layerDirs: [layer],
  };
  return { resolve: () => Promise.resolve(image) };
}

export interface TestEngine {
  engine: Engine;
  root: string;
  opts: EngineOptions;
  /** Opens a second engine on the same state (an engine restart). */
  reopen(): Promise<Engine>;
  cleanup(): Promise<void>;
}

/** A private engine for one test. */
export async function testEngine(extra: Partial<EngineOptions> = {}): Promise<TestEngine> {
  const root = mkdtempSync(join(tmpdir(), 'shoal-eng-'));
  const opts: EngineOptions = {
    dataRoot: join(root, 'data'),
    runRoot: join(root, 'run'),
    images: busyboxImage(root),
    cgroupParent: `/shoal-test-${randomBytes(4).toString('hex')}`,
    // the engine under test collects exits and runs health checks, as shoald's does
    collector: true,
    ...extra,
  };
  const engines: Engine[] = [await Engine.open(opts)];
  const first = engines[0] as Engine;
  return {
    engine: first,
    root,
    opts,
    async reopen() {
      const e = await Engine.open(opts);
      engines.push(e);
      return e;
    },
    async cleanup() {
      for (const e of engines) await e.close();
      const e = await Engine.open({ ...opts, collector: false });
      for (const c of await e.list({ all: true })) {
        await e.remove(c.id, { force: true }).catch((err: unknown) => {
          if (!hasCode(err, 'ENGINE_CONTAINER_NOT_FOUND')) throw err;
        });
      }
      await e.close();
      // anything runc still knows under this root (a test that failed half way)
      for (const c of await e.runc.list()) await e.runc.delete(c.id, true);
      for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
        const mp = line.split(' ')[4];
        if (mp?.startsWith(root)) execFileSync('umount', ['-l', mp]);
      }
      await removeCgroupParent(opts.cgroupParent ?? '');
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Removes a test's cgroup parent and anything left under it (leftover processes killed) in every hierarchy. */
export async function removeCgroupParent(parent: string): Promise<void> {
  if (parent) await new Cgroup(parent).remove({ keepParent: true });
}

/** Collects a container's whole log as text per stream. */
export async function logText(engine: Engine, id: string): Promise<{ stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  for await (const e of engine.logs(id)) out[e.stream] += e.line.toString() + (e.partial ? '' : '\n');
  return out;
}
