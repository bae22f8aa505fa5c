/**
 * Cgroups: layout detection, stats and OOM counters over recorded v1 (hybrid) and v2 trees written
 * as fixture dirs, and a real v1/v2 cgroup here: a process in it, stats, kill and removal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, symlinkSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasCode, waitFor } from '@shoal/common';
import { Cgroup, containerCgroup } from './cgroup.js';
import { detectCgroupLayout } from './layout.js';

const work = mkdtempSync(join(tmpdir(), 'shoal-cgroup-'));
after(() => rmSync(work, { recursive: true, force: true }));

function files(dir: string, entries: Record<string, string>): void {
  for (const [name, content] of Object.entries(entries)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
}

/** A hybrid v1 host like this one (cpu and cpuacct co-mounted, as on most v1 distros). */
function v1Fixture(): string {
  const root = join(work, 'v1');
  const p = 'shoal/abc';
  files(join(root, 'memory', p), {
    'memory.usage_in_bytes': '16777216\n',
    'memory.limit_in_bytes': '16777216\n',
    'memory.max_usage_in_bytes': '16773120\n',
    'memory.stat': 'cache 0\nrss 16000000\ntotal_inactive_file 1048576\n',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n',
    'memory.failcnt': '120\n',
    'cgroup.procs': '',
  });
  files(join(root, 'cpu,cpuacct', p), {
    'cpuacct.usage': '123456789\n',
    'cpu.cfs_quota_us': '50000\n',
    'cgroup.procs': '',
  });
  symlinkSync('cpu,cpuacct', join(root, 'cpu'));
  symlinkSync('cpu,cpuacct', join(root, 'cpuacct'));
  files(join(root, 'pids', p), { 'pids.current': '7\n', 'pids.max': 'max\n', 'cgroup.procs': '' });
  files(join(root, 'systemd', p), { 'cgroup.procs': '' });
  files(join(root, 'unified'), { 'cgroup.controllers': '' });
  files(join(root, 'unified', p), { 'cgroup.procs': '' });
  return root;
}

function v2Fixture(): string {
  const root = join(work, 'v2');
  files(root, { 'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n' });
  files(join(root, 'shoal', 'abc'), {
    'cpu.stat': 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n',
    'memory.current': '8388608\n',
    'memory.max': '67108864\n',
    'memory.peak': '9000000\n',
    'memory.stat': 'anon 4194304\nfile 4194304\ninactive_file 2097152\n',
    'memory.events': 'low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n',
    'pids.current': '3\n',
    'pids.max': '100\n',
    'cgroup.procs': '',
  });
  return root;
}

describe('cgroup layout and stats over recorded trees', () => {
  it('reads a v1 (hybrid) tree: controllers, hierarchies, stats and oom_kill', async () => {
    const root = v1Fixture();
    const layout = detectCgroupLayout(root);
    assert.equal(layout.version, 1);
    if (layout.version !== 1) return;
    assert.equal(layout.controllers.get('memory'), join(root, 'memory'));
    assert.equal(layout.controllers.get('cpuacct'), join(root, 'cpu,cpuacct'));
    assert.equal(layout.controllers.has('unified'), false);
    assert.deepEqual(
      layout.hierarchies.map((h) => h.slice(root.length + 1)),
      ['cpu', 'memory', 'pids', 'systemd', 'unified'],
    );
    const cg = new Cgroup('/shoal/abc', layout);
    assert.deepEqual(await cg.stats(), {
      cpuUsageNs: 123456789,
      memoryUsageBytes: 16777216,
      memoryWorkingSetBytes: 16777216 - 1048576,
      memoryLimitBytes: 16777216,
      memoryMaxUsageBytes: 16773120,
      pidsCurrent: 7,
      oomKills: 3,
    });
    writeFileSync(join(root, 'memory', 'shoal', 'abc', 'memory.limit_in_bytes'), '9223372036854771712\n');
    assert.equal((await cg.stats()).memoryLimitBytes, undefined, 'v1 "unlimited" is no limit');
    assert.equal(await new Cgroup('/shoal/none', layout).oomKills(), 0);
    assert.equal((await cg.existingDirs()).length, 5);
  });

  it('reads a v2 tree: cpu.stat, memory.current/max/peak, memory.events oom_kill, pids', async () => {
    const layout = detectCgroupLayout(v2Fixture());
    assert.equal(layout.version, 2);
    const cg = containerCgroup('abc', '/shoal', layout);
    assert.deepEqual(await cg.stats(), {
      cpuUsageNs: 2_500_000,
      memoryUsageBytes: 8388608,
      memoryWorkingSetBytes: 8388608 - 2097152,
      memoryLimitBytes: 67108864,
      memoryMaxUsageBytes: 9000000,
      pidsCurrent: 3,
      pidsLimit: 100,
      oomKills: 1,
    });
    writeFileSync(join(layout.root, 'shoal', 'abc', 'memory.max'), 'max\n');
    assert.equal((await cg.stats()).memoryLimitBytes, undefined);
  });

  it('refuses cgroup paths that escape the root', () => {
    for (const p of ['relative', '/', '/a/../../b']) {
      assert.throws(
        () => new Cgroup(p, detectCgroupLayout(v2Fixture())),
        (e: unknown) => hasCode(e, 'ENGINE_CGROUP'),
      );
    }
  });
});

describe('a real cgroup on this host', () => {
  it('holds a process, reports it, kills it and is removed with its empty parent', async () => {
    const layout = detectCgroupLayout();
    const parent = `/shoal-cgtest-${randomBytes(4).toString('hex')}`;
    const cg = containerCgroup('leaf', parent, layout);
    const dirs =
      layout.version === 2
        ? [join(layout.root, cg.path)]
        : ['memory', 'pids', 'cpuacct', 'freezer'].map((c) => cg.dir(c)).filter((d): d is string => !!d);
    // a shell that keeps forking: the kill must still leave the cgroup empty
    // (it starts forking only once it is in the cgroup: a line on stdin says so)
    const child = spawn('sh', ['-c', 'read go; while true; do sleep 300 & sleep 0.01; done'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    try {
      for (const d of dirs) {
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, 'cgroup.procs'), String(child.pid));
      }
      if (layout.version === 1)
        writeFileSync(join(cg.dir('memory') as string, 'memory.limit_in_bytes'), String(64 << 20));
      child.stdin?.write('go\n');
      await waitFor(async () => ((await cg.pids()).length >= 3 ? true : undefined), {
        timeoutMs: 10_000,
        what: 'forks',
      });
      assert.ok((await cg.pids()).includes(child.pid as number));
      const stats = await cg.stats();
      assert.ok(stats.memoryUsageBytes >= 0);
      if (layout.version === 1) assert.equal(stats.memoryLimitBytes, 64 << 20);
      assert.ok((stats.pidsCurrent ?? 0) >= 3);
      assert.equal(stats.oomKills, 0);
      const exited = new Promise((r) => child.once('exit', r));
      await cg.remove();
      assert.equal(await exited, null);
      assert.deepEqual(await cg.pids(), []);
      for (const d of dirs) {
        assert.equal(existsSync(d), false, d);
        assert.equal(existsSync(dirname(d)), false, `parent ${dirname(d)}`);
      }
      await cg.remove(); // idempotent
    } finally {
      child.kill('SIGKILL');
      for (const d of dirs) {
        if (existsSync(d)) {
          for (const pid of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
            process.kill(Number(pid), 'SIGKILL');
        }
      }
      await cg.remove();
    }
  });
});

/** A real v2 tree: the host's own (v2-only hosts) or a hybrid host's `unified` one. */
function v2Root(): string | undefined {
  for (const r of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    if (existsSync(join(r, 'cgroup.controllers')) && existsSync(join(r, 'cgroup.procs'))) return r;
  }
  return undefined;
}

describe('a real cgroup v2 tree', { skip: v2Root() ? false : 'no cgroup v2 mount' }, () => {
  it('kills a forking process tree through cgroup.kill and removes the cgroup and its parent', async () => {
    const layout = detectCgroupLayout(v2Root());
    assert.equal(layout.version, 2);
    const parent = `/shoal-cgtest2-${randomBytes(4).toString('hex')}`;
    const cg = containerCgroup('leaf', parent, layout);
    const dir = join(layout.root, cg.path);
    const child = spawn('sh', ['-c', 'read go; while true; do sleep 300 & sleep 0.01; done'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cgroup.procs'), String(child.pid));
      child.stdin?.write('go\n');
      await waitFor(async () => ((await cg.pids()).length >= 3 ? true : undefined), {
        timeoutMs: 10_000,
        what: 'forks',
      });
      const stats = await cg.stats();
      assert.ok(stats.cpuUsageNs >= 0);
      const exited = new Promise((r) => child.once('exit', r));
      await cg.remove();
      assert.equal(await exited, null);
      assert.equal(existsSync(dir), false);
      assert.equal(existsSync(dirname(dir)), false);
    } finally {
      child.kill('SIGKILL');
      if (existsSync(dir)) {
        for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          process.kill(Number(pid), 'SIGKILL');
        }
      }
      await cg.remove();
    }
  });
});
