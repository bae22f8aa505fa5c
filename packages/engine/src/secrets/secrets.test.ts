/**
 * Secrets and configs on a tmpfs, read by a real container: content, owner, mode, read-only; and
 * the secret's bytes found nowhere on disk (data root, /run, /tmp, the bundle's config.json).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { open, readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { errnoCode, hasCode } from '@shoal/common';
import { isMountPoint, listMounts } from '../rootfs/mount.js';
import { kernelVersion } from '../seccomp/profile.js';
import { buildSpec } from '../spec/build-spec.js';
import { RuncHarness, writeBusyboxLayer } from '../spec/test-harness.js';
import { cleanupStaleSecretMounts, mountSecrets, secretsDir, unmountSecrets } from './secrets.js';

const image = { Cmd: ['sh'], Env: ['PATH=/bin'] };
const SKIP_FS = new Set([
  'proc',
  'sysfs',
  'cgroup',
  'cgroup2',
  'devpts',
  'mqueue',
  'nsfs',
  'overlay',
  'debugfs',
  'tracefs',
  'bpf',
]);

/**
 * What a scan of shared directories (/run, /tmp, where other processes come and go) may meet:
 * an entry that vanished or was replaced between listing and reading, or one root cannot read
 * (a FUSE mount of another user). These are collected in `skipped`, anything else fails the scan.
 */
const SCAN_SKIPPABLE = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM']);

/** Files under `roots` containing `needle` (no symlinks followed, bounded in files and size). */
async function scan(
  roots: string[],
  needle: Buffer,
  skip: Set<string>,
): Promise<{ hits: string[]; files: number; skipped: string[] }> {
  const skipMounts = new Set(
    listMounts()
      .filter((m) => SKIP_FS.has(m.fsType) || skip.has(m.mountPoint))
      .map((m) => m.mountPoint),
  );
  const hits: string[] = [];
  const skipped: string[] = [];
  let files = 0;
  const tolerate =
    (path: string) =>
    (err: unknown): undefined => {
      const code = errnoCode(err);
      if (code === undefined || !SCAN_SKIPPABLE.has(code)) throw err;
      skipped.push(`${path} (${code})`);
      return undefined;
    };
  const buf = Buffer.alloc(1 << 20);
  const walk = async (dir: string): Promise<void> => {
    if (skipMounts.has(dir) || files > 200_000) return;
    for (const name of (await readdir(dir).catch(tolerate(dir))) ?? []) {
      const p = join(dir, name);
      const st = await lstat(p).catch(tolerate(p));
      if (!st) continue;
      if (st.isDirectory()) await walk(p);
      else if (st.isFile() && st.size > 0 && st.size < 64 << 20) {
        files++;
        const fh = await open(p, 'r').catch(tolerate(p));
        if (!fh) continue;
        try {
          let carry = Buffer.alloc(0);
          for (;;) {
            const { bytesRead } = await fh.read(buf, 0, buf.length, null);
            if (bytesRead === 0) break;
            const chunk = Buffer.concat([carry, buf.subarray(0, bytesRead)]);
            if (chunk.includes(needle)) {
              hits.push(p);
              break;
            }
            carry = chunk.subarray(Math.max(0, chunk.length - needle.length));
          }
        } finally {
          await fh.close();
        }
      }
    }
  };
  for (const r of roots) await walk(r);
  return { hits, files, skipped };
}

describe('secrets and configs on tmpfs (real runc)', { timeout: 300_000 }, () => {
  let h: RuncHarness;
  let layer: string;
  before(async () => {
    h = await RuncHarness.create();
    layer = join(h.work, 'layer');
    writeBusyboxLayer(layer);
  });
  after(async () => {
    await h.cleanup();
    assert.equal(
      listMounts().some((m) => m.mountPoint.includes(h.suffix) || m.mountPoint.startsWith(h.work)),
      false,
    );
  });

  it('a container reads its secret with the asked owner and mode, cannot write it, and the bytes are on no disk', async () => {
    const id = h.newId('secret');
    const token = randomBytes(24).toString('hex');
    const secret = Buffer.from(`pw-${token}`);
    const configToken = randomBytes(8).toString('hex');
    try {
      const rootfs = await h.rootfs(id, [layer]);
      const { mounts, dir } = await mountSecrets(h.containerDir(id), [
        { name: 'db_pw', data: secret, uid: 1000, gid: 1000, mode: 0o400 },
        { name: 'app.conf', kind: 'config', data: Buffer.from(`conf-${configToken}`), mode: 0o444 },
      ]);
      assert.ok(
        secret.every((b) => b === 0),
        'the caller buffer is zeroed',
      );
      assert.deepEqual(
        mounts.map((m) => m.destination),
        ['/run/secrets/db_pw', '/app.conf'],
      );
      assert.equal(listMounts().find((m) => m.mountPoint === dir)?.fsType, 'tmpfs');
      const tmpfs = listMounts().find((m) => m.mountPoint === dir);
      assert.match(tmpfs?.options ?? '', /^ro,nosuid,nodev,noexec/);
      const [kmaj, kmin] = kernelVersion();
      if (kmaj > 6 || (kmaj === 6 && kmin >= 4)) assert.match(tmpfs?.superOptions ?? '', /noswap/);
      const spec = await buildSpec(
        {
          id,
          user: 'app',
          extraMounts: mounts,
          args: [
            'sh',
            '-c',
            'cat /run/secrets/db_pw; echo; stat -c "%a %u %g" /run/secrets/db_pw /app.conf; cat /app.conf; echo; ' +
              'echo x > /run/secrets/db_pw || echo write-failed',
          ],
        },
        image,
        { rootfs, dataRoot: h.dataRoot, cgroupParent: h.cgroupParent },
      );
      const r = await h.runToExit(id, spec);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.equal(lines[0], `pw-${token}`);
      assert.equal(lines[1], '400 1000 1000');
      assert.equal(lines[2], '444 0 0');
      assert.equal(lines[3], `conf-${configToken}`);
      assert.match(r.stdout, /write-failed/);
      assert.match(r.stderr + r.stdout, /Read-only file system|Permission denied/);

      // the upper dir holds only empty mount points, config.json only paths
      const upperSecret = join(h.containerDir(id), 'upper', 'run', 'secrets', 'db_pw');
      assert.equal(statSync(upperSecret).size, 0);
      const found = await scan([h.dataRoot, '/run', '/tmp', h.runDir], Buffer.from(token), new Set([dir]));
      assert.deepEqual(
        found.hits,
        [],
        `secret bytes found in ${found.hits.join(', ')} (not read: ${found.skipped.join(', ') || 'none'})`,
      );
      assert.ok(found.files > 0, 'the scan read files');
      // control: the same scan does find the bytes where they are (the secrets tmpfs)
      assert.equal((await scan([dir], Buffer.from(token), new Set())).hits.length, 1);
    } finally {
      await h.remove(id);
    }
    assert.equal(isMountPoint(secretsDir(h.containerDir(id))), false);
  });

  it('bad input: invalid names, targets and modes are refused and nothing is mounted', async () => {
    const cdir = h.containerDir(h.newId('badsecret'));
    for (const files of [
      [{ name: '../x', data: Buffer.from('a') }],
      [{ name: 'x', target: '/run/../etc/passwd', data: Buffer.from('a') }],
      [{ name: 'x', data: Buffer.from('a'), mode: 0o4777 }],
      [
        { name: 'a', target: '/same', data: Buffer.from('a') },
        { name: 'b', target: '/same', data: Buffer.from('b') },
      ],
    ]) {
      await assert.rejects(mountSecrets(cdir, files), (e: unknown) => hasCode(e, 'ENGINE_SECRET_MOUNT'));
      assert.equal(existsSync(secretsDir(cdir)), false);
    }
  });

  it('cleanupStaleSecretMounts unmounts crash leftovers but keeps those of live containers', async () => {
    const live = h.newId('live');
    const dead = h.newId('dead');
    for (const id of [live, dead]) {
      mkdirSync(h.containerDir(id), { recursive: true });
      await mountSecrets(h.containerDir(id), [{ name: 's', data: Buffer.from('x') }]);
    }
    const cleaned = await cleanupStaleSecretMounts(h.dataRoot, (id) => id === live);
    assert.ok(cleaned.includes(dead));
    assert.ok(!cleaned.includes(live));
    assert.equal(isMountPoint(secretsDir(h.containerDir(dead))), false);
    assert.equal(isMountPoint(secretsDir(h.containerDir(live))), true);
    assert.deepEqual(readdirSync(h.containerDir(dead)), []);
    await unmountSecrets(h.containerDir(live));
    assert.equal(isMountPoint(secretsDir(h.containerDir(live))), false);
  });
});
