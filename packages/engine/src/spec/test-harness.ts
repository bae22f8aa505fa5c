/**
 * Test support for the spec, rootfs, cgroup and secrets tests: busybox and whiteout layer dirs,
 * and a private runc (root and bundles on a tmpfs of its own under /run) that runs containers
 * from `buildSpec` output and removes everything it made: containers, mounts, cgroups, dirs.
 * Not part of the engine's API.
 */
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ignoreErrno, run, sleep, type RunResult } from '@shoal/common';
import { lsetxattr, mknod, S_IFCHR } from '../libc.js';
import { containerCgroup } from '../cgroups/cgroup.js';
import { mountRootfs, unmountRootfs } from '../rootfs/overlay.js';
import { isMountPoint, sysMount, unmountAll } from '../rootfs/mount.js';
import { unmountSecrets } from '../secrets/secrets.js';
import type { OciSpec } from './oci.js';

export const APPLETS = [
  'sh',
  'cat',
  'echo',
  'ls',
  'id',
  'stat',
  'sleep',
  'touch',
  'unshare',
  'mount',
  'grep',
  'head',
  'dd',
  'true',
  'false',
  'hostname',
  'printf',
  'test',
  'nsenter',
  'ps',
  'sysctl',
];

/** A busybox root with `root` and `app` (1000:1000, also in group `extra` 2000). */
export function writeBusyboxLayer(dir: string): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
  copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n');
}

/**
 * Whiteout layers in overlay form above a base: `lower` has /data/gone, /data/kept and
 * /opaque/old; `upper` deletes /data/gone (0/0 char device) and makes /opaque opaque with
 * /opaque/new.
 */
export function writeWhiteoutLayers(root: string): string[] {
  const base = join(root, 'l0');
  const lower = join(root, 'l1');
  const upper = join(root, 'l2');
  writeBusyboxLayer(base);
  mkdirSync(join(lower, 'data'), { recursive: true });
  mkdirSync(join(lower, 'opaque'), { recursive: true });
  writeFileSync(join(lower, 'data', 'gone'), 'deleted in the top layer\n');
  writeFileSync(join(lower, 'data', 'kept'), 'kept\n');
  writeFileSync(join(lower, 'opaque', 'old'), 'hidden by the opaque dir\n');
  mkdirSync(join(upper, 'data'), { recursive: true });
  mkdirSync(join(upper, 'opaque'), { recursive: true });
  mknod(join(upper, 'data', 'gone'), S_IFCHR, 0, 0, 0);
  lsetxattr(join(upper, 'opaque'), 'trusted.overlay.opaque', Buffer.from('y'));
  writeFileSync(join(upper, 'opaque', 'new'), 'new\n');
  return [base, lower, upper];
}

export interface RunOutcome extends RunResult {
  /** runc's own exit code: the container's, or 1..255 when runc failed. */
  code: number;
}

/** A private runc environment for one test file. */
export class RuncHarness {
  readonly suffix = randomBytes(4).toString('hex');
  readonly work = mkdtempSync(join(tmpdir(), 'shoal-spec-'));
  readonly dataRoot = join(this.work, 'data');
  /** tmpfs: runc root and bundles. */
  readonly runDir = `/run/shoal-test-${this.suffix}`;
  readonly runcRoot = join(this.runDir, 'runc');
  readonly cgroupParent = `/shoal-test-${this.suffix}`;
  private readonly ids = new Set<string>();

  static create(): Promise<RuncHarness> {
    const h = new RuncHarness();
    mkdirSync(h.runDir, { recursive: true, mode: 0o700 });
    sysMount('tmpfs', h.runDir, 'tmpfs', 0, 'size=16m,mode=0700');
    mkdirSync(h.runcRoot);
    mkdirSync(join(h.dataRoot, 'containers'), { recursive: true });
    return Promise.resolve(h);
  }

  newId(tag: string): string {
    const id = `${tag}-${this.suffix}-${randomBytes(3).toString('hex')}`;
    this.ids.add(id);
    return id;
  }

  containerDir(id: string): string {
    return join(this.dataRoot, 'containers', id);
  }

  bundle(id: string): string {
    return join(this.runDir, 'bundles', id);
  }

  /** Mounts the overlay rootfs at `<bundle>/rootfs`. */
  async rootfs(id: string, layerDirs: readonly string[]): Promise<string> {
    const target = join(this.bundle(id), 'rootfs');
    mkdirSync(target, { recursive: true });
    await mountRootfs({ id, containerDir: this.containerDir(id), layerDirs, target });
    return target;
  }

  async writeSpec(id: string, spec: OciSpec): Promise<void> {
    await writeFile(join(this.bundle(id), 'config.json'), JSON.stringify(spec));
  }

  /** runc under umask 022 (mount points it creates must be world-readable). */
  runc(args: string[], timeoutMs = 60_000): Promise<RunOutcome> {
    const child = run('sh', ['-c', 'umask 022; exec "$@"', 'sh', 'runc', '--root', this.runcRoot, ...args], {
      check: false,
      timeout: timeoutMs,
    });
    return child;
  }

  /** `runc run` in the foreground: the container's output and exit code. */
  async runToExit(id: string, spec: OciSpec): Promise<RunOutcome> {
    await this.writeSpec(id, spec);
    return this.runc(['run', '--bundle', this.bundle(id), id]);
  }

  /** `runc run -d`, output to `<bundle>/out`; returns once started. */
  async runDetached(id: string, spec: OciSpec): Promise<void> {
    await this.writeSpec(id, spec);
    const out = join(this.bundle(id), 'out');
    const r = await run(
      'sh',
      [
        '-c',
        'umask 022; exec "$@" >"$OUT" 2>&1 </dev/null',
        'sh',
        'runc',
        '--root',
        this.runcRoot,
        'run',
        '-d',
        '--bundle',
        this.bundle(id),
        id,
      ],
      { check: false, env: { ...process.env, OUT: out } },
    );
    if (r.code !== 0) throw new Error(`runc run -d failed: ${await readFile(out, 'utf8').catch(() => r.stderr)}`);
  }

  async state(id: string): Promise<string | undefined> {
    const r = await this.runc(['state', id]);
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout) as { status: string }).status;
  }

  async waitStopped(id: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.state(id)) === 'running') {
      if (Date.now() > deadline) throw new Error(`${id} still running after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  async output(id: string): Promise<string> {
    return readFile(join(this.bundle(id), 'out'), 'utf8');
  }

  /** Removes one container: runc state, cgroup, secrets, rootfs, dirs. */
  async remove(id: string): Promise<void> {
    await this.runc(['kill', id, 'KILL']);
    await this.runc(['delete', '--force', id]);
    await containerCgroup(id, this.cgroupParent).remove({ keepParent: true });
    await unmountSecrets(this.containerDir(id));
    await unmountRootfs(this.containerDir(id), { target: join(this.bundle(id), 'rootfs'), remove: true });
    await rm(this.bundle(id), { recursive: true, force: true });
    await rm(this.containerDir(id), { recursive: true, force: true });
    this.ids.delete(id);
  }

  async cleanup(): Promise<void> {
    for (const id of [...this.ids]) await this.remove(id);
    // the cgroup parent in every hierarchy
    await containerCgroup('x', this.cgroupParent).remove();
    unmountAll(this.work);
    if (isMountPoint(this.runDir)) unmountAll(this.runDir);
    await rmdir(this.runDir).catch(ignoreErrno('ENOENT'));
    await rm(this.work, { recursive: true, force: true });
  }
}
