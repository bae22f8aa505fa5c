/**
 * End-to-end: containers run by real runc from `buildSpec` output on an overlay rootfs. Checks the
 * default confinement (seccomp, capabilities, masked paths), user resolution, read-only rootfs,
 * whiteouts, init, an OOM kill seen through the cgroup, and that bad input or a runc failure
 * leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCode, run, waitFor } from '@shoal/common';
import { detectCgroupLayout } from '../cgroups/layout.js';
import { containerCgroup } from '../cgroups/cgroup.js';
import { isMountPoint, listMounts } from '../rootfs/mount.js';
import { buildSpec, type ContainerSpecInput } from './build-spec.js';
import { RuncHarness, writeWhiteoutLayers } from './test-harness.js';

const image = { Cmd: ['sh'], Env: ['PATH=/bin'], WorkingDir: '/' };

describe('containers under the default confinement (real runc)', { timeout: 180_000 }, () => {
  let h: RuncHarness;
  let layers: string[];

  before(async () => {
    h = await RuncHarness.create();
    layers = writeWhiteoutLayers(join(h.work, 'layers'));
  });
  after(async () => {
    await h.cleanup();
    assert.equal(
      listMounts().some((m) => m.mountPoint.includes(h.suffix)),
      false,
      'no mount of this test is left',
    );
    assert.equal(existsSync(`/sys/fs/cgroup/memory${h.cgroupParent}`), false, 'cgroup parent removed');
  });

  async function runIn(tag: string, input: Omit<ContainerSpecInput, 'id'>) {
    const id = h.newId(tag);
    const rootfs = await h.rootfs(id, layers);
    const spec = await buildSpec({ id, ...input }, image, {
      rootfs,
      dataRoot: h.dataRoot,
      cgroupParent: h.cgroupParent,
    });
    try {
      return { id, spec, ...(await h.runToExit(id, spec)) };
    } finally {
      await h.remove(id);
    }
  }

  it('runs a normal program and blocks unshare, mount and namespace clones with EPERM', async () => {
    const r = await runIn('seccomp', {
      args: ['sh', '-c', 'echo hello; unshare -n true; echo "unshare=$?"; mount -t tmpfs none /tmp; echo "mount=$?"'],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^hello$/m);
    assert.match(r.stdout, /unshare=1/);
    assert.match(r.stdout, /mount=(1|255)/);
    assert.match(r.stdout + r.stderr, /Operation not permitted/);
  });

  it('gives the 14 default capabilities, root with additional gid 0, masked and read-only /proc paths', async () => {
    const r = await runIn('caps', {
      args: [
        'sh',
        '-c',
        'grep CapEff /proc/self/status; id; echo "[$(cat /proc/interrupts)]"; hostname; echo 1 > /proc/sys/vm/drop_caches || echo ro-sys',
      ],
      hostname: 'web-1',
    });
    assert.equal(r.code, 0, r.stderr);
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    assert.match(r.stdout, /CapEff:\s+00000000a80425fb/);
    assert.match(r.stdout, /uid=0\(root\) gid=0\(root\)/);
    assert.match(r.stdout, /^\[\]$/m, '/proc/interrupts is masked (bound to /dev/null)');
    assert.match(r.stdout, /^ro-sys$/m, '/proc/sys is read-only');
    assert.match(r.stdout, /^web-1$/m);
  });

  it('drops and adds capabilities: without NET_RAW/CHOWN, with SYS_ADMIN unshare works', async () => {
    const r = await runIn('capadd', {
      args: ['sh', '-c', 'grep CapEff /proc/self/status; unshare -u true; echo "unshare=$?"'],
      capAdd: ['sys_admin'],
      capDrop: ['NET_RAW', 'CAP_CHOWN'],
    });
    assert.equal(r.code, 0, r.stderr);
    // default 0xa80425fb - CHOWN(bit 0) - NET_RAW(bit 13) + SYS_ADMIN(bit 21)
    assert.match(r.stdout, /CapEff:\s+00000000a82405fa/);
    assert.match(r.stdout, /unshare=0/);
  });

  it('cap-add ALL gives every capability the engine itself has', async () => {
    const r = await runIn('capall', { args: ['grep', 'CapEff', '/proc/self/status'], capAdd: ['ALL'] });
    assert.equal(r.code, 0, r.stderr);
    const own = /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
    assert.match(r.stdout, new RegExp(`CapEff:\\s+${own}`));
  });

  it('runs as a named user with its groups, and as uid:gid', async () => {
    const named = await runIn('user', { args: ['id'], user: 'app' });
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.stdout, /uid=1000\(app\) gid=1000\(app\) groups=1000\(app\),2000\(extra\)/);
    const numeric = await runIn('uidgid', { args: ['id'], user: '1234:2000' });
    assert.match(numeric.stdout, /uid=1234 gid=2000\(extra\)/);
  });

  it('read-only rootfs: writes fail except on tmpfs mounts; whiteouts hide the deleted file', async () => {
    const r = await runIn('ro', {
      args: [
        'sh',
        '-c',
        'touch /x 2>&1; echo "root=$?"; touch /scratch/y && echo scratch=ok; ls /data; echo ---; ls /opaque; touch /dev/shm/z && echo shm=ok',
      ],
      readOnlyRootfs: true,
      mounts: [{ type: 'tmpfs', target: '/scratch', size: '1m' }],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Read-only file system/);
    assert.match(r.stdout, /root=1/);
    assert.match(r.stdout, /scratch=ok/);
    assert.match(r.stdout, /shm=ok/);
    const [data = '', opaque = ''] = r.stdout.split('---');
    assert.match(data, /kept/);
    assert.doesNotMatch(data, /gone/);
    assert.match(opaque, /new/);
    assert.doesNotMatch(opaque, /old/);
  });

  it('init: tini is PID 1 and the command its child', async () => {
    const r = await runIn('init', {
      args: ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$'],
      init: true,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\/sbin\/docker-init -- sh -c/m);
    assert.doesNotMatch(r.stdout, /^1$/m);
  });

  it('applies sysctls, env merge and pids/ulimits', async () => {
    const r = await runIn('sysctl', {
      args: [
        'sh',
        '-c',
        'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni; echo $FOO $HOSTNAME; ulimit -n',
      ],
      env: ['FOO=bar'],
      hostname: 'h1',
      sysctls: { 'kernel.shmmni': '1000' },
      ulimits: ['nofile=4096:8192'],
      pidsLimit: 50,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1000', 'bar h1', '4096']);
  });

  it('joins an existing network namespace by path', async () => {
    const ns = `shoal-spec-${h.suffix}`;
    await run('ip', ['netns', 'add', ns]);
    try {
      await run('ip', ['-n', ns, 'link', 'add', 'shoaltest0', 'type', 'veth', 'peer', 'name', 'shoaltest1']);
      const r = await runIn('netns', {
        args: ['sh', '-c', 'cat /proc/net/dev; cat /proc/sys/net/ipv4/ip_unprivileged_port_start'],
        network: { path: `/run/netns/${ns}` },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /shoaltest0:/);
      assert.match(r.stdout, /^0$/m);
    } finally {
      await run('ip', ['netns', 'del', ns]);
    }
  });

  it('applies memory, cpu and pids limits that the cgroup stats report while running', async () => {
    const id = h.newId('stats');
    try {
      const rootfs = await h.rootfs(id, layers);
      const spec = await buildSpec(
        { id, args: ['sh', '-c', 'sleep 60 & sleep 60 & wait'], memory: '32m', cpus: 0.5, pidsLimit: 20 },
        image,
        { rootfs, dataRoot: h.dataRoot, cgroupParent: h.cgroupParent },
      );
      await h.runDetached(id, spec);
      const cg = containerCgroup(id, h.cgroupParent);
      // sh and its two sleeps (safety-net timeout only)
      const stats = await waitFor(
        async () => {
          const st = await cg.stats();
          return st.pidsCurrent === 3 ? st : undefined;
        },
        { timeoutMs: 10_000, what: '3 processes in the cgroup' },
      );
      assert.equal(stats.memoryLimitBytes, 32 * 1024 * 1024);
      assert.equal(stats.pidsLimit, 20);
      assert.equal(stats.pidsCurrent, 3);
      assert.ok(stats.cpuUsageNs > 0);
      assert.ok(stats.memoryUsageBytes > 0);
      assert.equal(stats.oomKills, 0);
      assert.equal((await cg.pids()).length, 3);
      const layout = detectCgroupLayout();
      if (layout.version === 1) {
        assert.equal(readFileSync(join(cg.dir('cpu') ?? '', 'cpu.cfs_quota_us'), 'utf8').trim(), '50000');
      }
    } finally {
      await h.remove(id);
    }
    assert.equal(existsSync(`/sys/fs/cgroup/pids${h.cgroupParent}/${id}`), false, 'cgroup removed');
  });

  it('a memory limit causes an OOM kill that the cgroup reports', async () => {
    const id = h.newId('oom');
    try {
      const rootfs = await h.rootfs(id, layers);
      const spec = await buildSpec(
        { id, args: ['sh', '-c', 'x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done'], memory: '16m' },
        image,
        { rootfs, dataRoot: h.dataRoot, cgroupParent: h.cgroupParent },
      );
      assert.equal(spec.linux.resources.memory?.limit, 16 * 1024 * 1024);
      assert.equal(spec.linux.resources.memory?.swap, 32 * 1024 * 1024);
      await h.runDetached(id, spec);
      await h.waitStopped(id);
      const cg = containerCgroup(id, h.cgroupParent);
      assert.ok((await cg.oomKills()) > 0, 'oom_kill counted');
      const stats = await cg.stats();
      assert.equal(stats.memoryLimitBytes, 16 * 1024 * 1024);
      assert.ok(stats.oomKills > 0);
      if (detectCgroupLayout().version === 1) {
        assert.ok(existsSync(`/sys/fs/cgroup/memory${h.cgroupParent}/${id}`));
      }
    } finally {
      await h.remove(id);
    }
    assert.equal(existsSync(`/sys/fs/cgroup/memory${h.cgroupParent}/${id}`), false, 'cgroup removed');
    assert.equal(existsSync(`/sys/fs/cgroup/pids${h.cgroupParent}/${id}`), false, 'cgroup removed');
  });

  it('bad input: a clear error naming the field and nothing made', async () => {
    const id = h.newId('bad');
    const rootfs = await h.rootfs(id, layers);
    const volumes = join(h.dataRoot, 'volumes');
    const ctx = { rootfs, dataRoot: h.dataRoot, cgroupParent: h.cgroupParent };
    await assert.rejects(
      buildSpec(
        {
          id,
          mounts: [
            { type: 'volume', source: 'v1', target: '/v' },
            { type: 'bind', source: '/nonexistent-shoal', target: '/x' },
          ],
        },
        image,
        ctx,
      ),
      (e: unknown) =>
        hasCode(e, 'ENGINE_INVALID_MOUNT') && /\/nonexistent-shoal does not exist/.test((e as Error).message),
    );
    assert.equal(existsSync(volumes), false, 'no volume dir made before the error');
    await assert.rejects(buildSpec({ id, mounts: [{ type: 'tmpfs', target: 'rel' }] }, image, ctx), /absolute path/);
    await assert.rejects(buildSpec({ id, memory: '12 parsecs' }, image, ctx), (e: unknown) =>
      hasCode(e, 'ENGINE_INVALID_SPEC'),
    );
    await assert.rejects(buildSpec({ id, capAdd: ['SYS_MAGIC'] }, image, ctx), (e: unknown) =>
      hasCode(e, 'ENGINE_UNKNOWN_CAPABILITY'),
    );
    await assert.rejects(buildSpec({ id, sysctls: { 'kernel.hostname': 'x' } }, image, ctx), (e: unknown) =>
      hasCode(e, 'ENGINE_INVALID_SYSCTL'),
    );
    await assert.rejects(buildSpec({ id, ulimits: ['nofile=10:5'] }, image, ctx), /soft limit 10 exceeds hard limit 5/);
    await assert.rejects(buildSpec({ id, user: 'nobody' }, image, ctx), (e: unknown) =>
      hasCode(e, 'ENGINE_USER_NOT_FOUND'),
    );
    await h.remove(id);
  });

  it('runc failure (missing program): runc reports it and removing leaves nothing', async () => {
    const r = await runIn('fail', { args: ['/no/such/program'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no such file or directory/i);
    assert.equal(isMountPoint(join(h.bundle(r.id), 'rootfs')), false);
    assert.equal(existsSync(h.containerDir(r.id)), false);
    assert.equal(existsSync(`/sys/fs/cgroup/memory${h.cgroupParent}/${r.id}`), false);
    assert.deepEqual(
      readdirSync(h.runcRoot).filter((n) => n.includes(r.id)),
      [],
    );
  });
});
