/**
 * Unit tests of buildSpec and its parts over a rootfs directory (no runc): config merge rules,
 * user resolution, capabilities, mounts, read-only rootfs, resources, sysctls, ulimits, init,
 * stop signal, and typed errors for bad input.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasCode } from '@shoal/common';
import { buildSpec, DEFAULT_PATH, type ContainerSpecInput } from './build-spec.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, resolveCapabilities } from './capabilities.js';
import { mergeOptions } from './mounts.js';
import { buildRlimits, parseHardLimits } from './rlimits.js';
import { resolveStopSignal } from './signal.js';
import { parseCpus, parseSize, parseUlimit } from './units.js';
import { resolveUser } from '../user/resolve-user.js';

const root = mkdtempSync(join(tmpdir(), 'shoal-spec-unit-'));
const rootfs = join(root, 'rootfs');
mkdirSync(join(rootfs, 'etc'), { recursive: true });
writeFileSync(
  join(rootfs, 'etc', 'passwd'),
  'root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:web:/var/www:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
);
writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nwww:x:33:\napp:x:1000:\nextra:x:2000:app,web\nother:x:3000:\n');
const dataRoot = join(root, 'data');
const ctx = { rootfs, dataRoot };
after(() => rmSync(root, { recursive: true, force: true }));

const spec = (input: Partial<ContainerSpecInput>, image: object = { Cmd: ['sh'] }) =>
  buildSpec({ id: 'c0ffee123456789', ...input }, image, ctx);

describe('buildSpec: process', () => {
  it('merges entrypoint and cmd as Docker does', async () => {
    const image = { Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['nginx', '-g', 'daemon off;'] };
    assert.deepEqual((await spec({}, image)).process.args, ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
    assert.deepEqual((await spec({ args: ['sh'] }, image)).process.args, ['/docker-entrypoint.sh', 'sh']);
    assert.deepEqual((await spec({ entrypoint: ['/bin/top'] }, image)).process.args, ['/bin/top']);
    assert.deepEqual((await spec({ entrypoint: ['/bin/top'], args: ['-b'] }, image)).process.args, ['/bin/top', '-b']);
    await assert.rejects(spec({}, {}), (e: unknown) => hasCode(e, 'ENGINE_INVALID_SPEC') && /args/.test(String(e)));
  });

  it('merges env per key after a default PATH and HOSTNAME (as Docker), removes bare keys', async () => {
    const s = await spec({ env: ['B=2', 'C=3', 'D'], hostname: 'web-1' }, { Cmd: ['sh'], Env: ['A=1', 'B=1', 'D=4'] });
    assert.deepEqual(s.process.env, [DEFAULT_PATH, 'HOSTNAME=web-1', 'A=1', 'B=2', 'C=3']);
    assert.equal(s.hostname, 'web-1');
    const image = { Cmd: ['sh'], Env: ['PATH=/bin'] };
    assert.deepEqual((await spec({}, image)).process.env, ['PATH=/bin', 'HOSTNAME=c0ffee123456']);
  });

  it('takes workdir and user from the spec over the image', async () => {
    const image = { Cmd: ['sh'], WorkingDir: '/srv', User: 'web' };
    const a = await spec({}, image);
    assert.equal(a.process.cwd, '/srv');
    assert.deepEqual(a.process.user, { uid: 33, gid: 33, additionalGids: [33, 2000] });
    const b = await spec({ workdir: '/tmp', user: 'app:other' }, image);
    assert.equal(b.process.cwd, '/tmp');
    assert.deepEqual(b.process.user, { uid: 1000, gid: 3000, additionalGids: [3000] });
    await assert.rejects(spec({ workdir: 'rel' }), /workdir/);
  });

  it('sets a RLIMIT_NOFILE and maps ulimits', async () => {
    const s = await spec({ ulimits: ['nproc=100:200', { name: 'core', soft: 0, hard: 0 }, 'nofile=512'] });
    const byType = new Map(s.process.rlimits.map((r) => [r.type, r]));
    assert.deepEqual(byType.get('RLIMIT_NOFILE'), { type: 'RLIMIT_NOFILE', soft: 512, hard: 512 });
    assert.deepEqual(byType.get('RLIMIT_NPROC'), { type: 'RLIMIT_NPROC', soft: 100, hard: 200 });
    assert.deepEqual(byType.get('RLIMIT_CORE'), { type: 'RLIMIT_CORE', soft: 0, hard: 0 });
    const d = await spec({});
    assert.ok((d.process.rlimits.find((r) => r.type === 'RLIMIT_NOFILE')?.hard ?? 0) >= 1024);
    assert.throws(() => parseUlimit('files=1'), /unknown ulimit "files"/);
    const hard = parseHardLimits(
      'Limit                     Soft Limit           Hard Limit           Units\n' +
        'Max open files            1024                 20000                files\n' +
        'Max core file size        0                    unlimited            bytes\n',
    );
    assert.deepEqual(
      [...hard],
      [
        ['RLIMIT_NOFILE', 20000],
        ['RLIMIT_CORE', Infinity],
      ],
    );
    assert.throws(
      () => buildRlimits(['nofile=30000'], { engineHard: hard, canRaise: false }),
      (e: unknown) => hasCode(e, 'ENGINE_INVALID_SPEC') && /nofile hard limit 30000 .*CAP_SYS_RESOURCE/.test(String(e)),
    );
    assert.equal(buildRlimits(['nofile=30000'], { engineHard: hard, canRaise: true }).at(0)?.hard, 30000);
    assert.equal(buildRlimits(['core=-1'], { engineHard: hard, canRaise: false }).at(1)?.type, 'RLIMIT_CORE');
    assert.throws(() => parseUlimit('nofile=abc'), /name=soft\[:hard\]/);
  });

  it('adds init in front of the args with a read-only bind of tini', async () => {
    const s = await spec({ args: ['sleep', '1'], init: true });
    assert.deepEqual(s.process.args, ['/sbin/docker-init', '--', 'sleep', '1']);
    const m = s.mounts.find((x) => x.destination === '/sbin/docker-init');
    assert.ok(m?.options.includes('ro'));
    assert.ok(m && existsSync(m.source));
    await assert.rejects(
      buildSpec({ id: 'x', init: true }, { Cmd: ['sh'] }, { ...ctx, initPath: '/nope/tini' }),
      (e: unknown) => hasCode(e, 'ENGINE_INIT_NOT_FOUND'),
    );
  });
});

describe('buildSpec: confinement', () => {
  it('has Docker defaults: caps, no inheritable/ambient, masked and read-only paths, namespaces, devices, sysctls', async () => {
    const s = await spec({});
    assert.deepEqual(new Set(s.process.capabilities.bounding), new Set(DEFAULT_CAPABILITIES));
    assert.deepEqual(s.process.capabilities.effective, s.process.capabilities.bounding);
    assert.equal(s.process.capabilities.inheritable, undefined);
    assert.equal(s.process.noNewPrivileges, false);
    assert.equal(s.process.terminal, false);
    for (const p of [
      '/proc/kcore',
      '/proc/keys',
      '/proc/timer_list',
      '/sys/firmware',
      '/sys/devices/virtual/powercap',
    ]) {
      assert.ok(s.linux.maskedPaths.includes(p), p);
    }
    assert.deepEqual(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    assert.deepEqual(
      s.linux.namespaces.map((n) => n.type).filter((t) => t !== 'cgroup'),
      ['pid', 'network', 'ipc', 'uts', 'mount'],
    );
    assert.deepEqual(s.linux.resources.devices[0], { allow: false, access: 'rwm' });
    assert.ok(s.linux.resources.devices.some((d) => d.allow && d.major === 1 && d.minor === 3));
    assert.equal(s.linux.sysctl?.['net.ipv4.ip_unprivileged_port_start'], '0');
    assert.equal(s.linux.sysctl?.['net.ipv4.ping_group_range'], '0 2147483647');
    assert.equal(s.linux.cgroupsPath, '/shoal/c0ffee123456789');
    assert.deepEqual(
      s.mounts.map((m) => m.destination),
      ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm'],
    );
    assert.equal(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal((await spec({ noNewPrivileges: true, seccomp: 'unconfined' })).process.noNewPrivileges, true);
    assert.equal((await spec({ seccomp: 'unconfined' })).linux.seccomp, undefined);
  });

  it('joins an existing network namespace by path; host network has no net sysctls', async () => {
    const s = await spec({ network: { path: '/proc/self/ns/net' } });
    assert.deepEqual(
      s.linux.namespaces.find((n) => n.type === 'network'),
      { type: 'network', path: '/proc/self/ns/net' },
    );
    await assert.rejects(spec({ network: { path: '/run/netns/nope-shoal' } }), /network namespace .* does not exist/);
    const host = await spec({ network: 'host' });
    assert.equal(
      host.linux.namespaces.find((n) => n.type === 'network'),
      undefined,
    );
    assert.equal(host.linux.sysctl?.['net.ipv4.ip_unprivileged_port_start'], undefined);
    await assert.rejects(spec({ network: 'host', sysctls: { 'net.core.somaxconn': '1024' } }), (e: unknown) =>
      hasCode(e, 'ENGINE_INVALID_SYSCTL'),
    );
  });

  it('validates sysctls: namespaced ones only', async () => {
    const s = await spec({
      sysctls: { 'net.core.somaxconn': '1024', 'kernel.shmmax': '1', 'fs.mqueue.msg_max': '20' },
    });
    assert.equal(s.linux.sysctl?.['net.core.somaxconn'], '1024');
    for (const bad of ['kernel.pid_max', 'vm.swappiness', 'fs.file-max', 'not a key']) {
      await assert.rejects(spec({ sysctls: { [bad]: '1' } }), (e: unknown) => hasCode(e, 'ENGINE_INVALID_SYSCTL'), bad);
    }
  });

  it('resolves cap add/drop with normalisation and ALL', () => {
    assert.deepEqual(resolveCapabilities(['net_admin'], ['CAP_KILL', 'mknod']).includes('CAP_NET_ADMIN'), true);
    const r = resolveCapabilities(['net_admin'], ['CAP_KILL', 'mknod']);
    assert.ok(!r.includes('CAP_KILL') && !r.includes('CAP_MKNOD'));
    assert.deepEqual(resolveCapabilities(['NET_BIND_SERVICE'], ['ALL']), ['CAP_NET_BIND_SERVICE']);
    const everything = new Set<string>(ALL_CAPABILITIES);
    assert.equal(resolveCapabilities(['ALL'], [], everything).length, 41);
    const limited = new Set([...everything].filter((c) => c !== 'CAP_SYS_RESOURCE' && c !== 'CAP_KILL'));
    const all = resolveCapabilities(['ALL'], [], limited);
    assert.equal(all.length, 39, 'ALL is what the engine has');
    assert.ok(!resolveCapabilities([], [], limited).includes('CAP_KILL'), 'defaults cut to the engine set');
    assert.throws(
      () => resolveCapabilities(['SYS_RESOURCE'], [], limited),
      (e: unknown) => hasCode(e, 'ENGINE_INVALID_SPEC') && /bounding set/.test(String(e)),
    );
    assert.ok(!resolveCapabilities(['all'], ['sys_admin']).includes('CAP_SYS_ADMIN'));
    assert.throws(
      () => resolveCapabilities(['CAP_FLY']),
      (e: unknown) => hasCode(e, 'ENGINE_UNKNOWN_CAPABILITY') && /capAdd/.test(String(e)),
    );
  });
});

describe('buildSpec: mounts and resources', () => {
  it('makes bind, volume and tmpfs mounts, parents first, and creates the volume dir', async () => {
    const src = join(root, 'hostdir');
    mkdirSync(src, { recursive: true });
    const s = await spec({
      mounts: [
        { type: 'tmpfs', target: '/data/cache', size: '64m', mode: 0o1777, options: ['exec'] },
        { type: 'volume', source: 'pgdata', target: '/data' },
        { type: 'bind', source: src, target: '/host', readOnly: true, propagation: 'rslave' },
      ],
    });
    const user = s.mounts.slice(7);
    assert.deepEqual(
      user.map((m) => m.destination),
      ['/data', '/host', '/data/cache'],
    );
    assert.deepEqual(user[0], {
      destination: '/data',
      type: 'bind',
      source: join(dataRoot, 'volumes', 'pgdata', '_data'),
      options: ['rbind', 'rprivate'],
    });
    assert.ok(existsSync(join(dataRoot, 'volumes', 'pgdata', '_data')));
    assert.deepEqual(user[1]?.options, ['rbind', 'rslave', 'ro']);
    assert.deepEqual(user[2]?.options, ['nosuid', 'nodev', 'rprivate', 'size=67108864', 'mode=1777', 'exec']);
  });

  it('copies the image content at a new volume target into the volume, once', async () => {
    mkdirSync(join(rootfs, 'srv', 'www', 'sub'), { recursive: true });
    writeFileSync(join(rootfs, 'srv', 'www', 'index.html'), 'hello');
    writeFileSync(join(rootfs, 'srv', 'www', 'sub', 'a'), 'a');
    symlinkSync('/etc', join(rootfs, 'srv', 'escape'));
    await spec({ mounts: [{ type: 'volume', source: 'site', target: '/srv/www' }] });
    const dir = join(dataRoot, 'volumes', 'site', '_data');
    assert.equal(readFileSync(join(dir, 'index.html'), 'utf8'), 'hello');
    assert.equal(readFileSync(join(dir, 'sub', 'a'), 'utf8'), 'a');
    // an existing volume keeps its content
    writeFileSync(join(dir, 'index.html'), 'changed');
    await spec({ mounts: [{ type: 'volume', source: 'site', target: '/srv/www' }] });
    assert.equal(readFileSync(join(dir, 'index.html'), 'utf8'), 'changed');
    // a target reached through a symlink is not copied (it could leave the rootfs)
    await spec({ mounts: [{ type: 'volume', source: 'esc', target: '/srv/escape' }] });
    assert.deepEqual(readdirSync(join(dataRoot, 'volumes', 'esc', '_data')), []);
  });

  it('replaces a default mount with a user one at the same target (e.g. /dev/shm)', async () => {
    const s = await spec({ mounts: [{ type: 'tmpfs', target: '/dev/shm', size: '1g' }] });
    const shm = s.mounts.filter((m) => m.destination === '/dev/shm');
    assert.equal(shm.length, 1);
    assert.ok(shm[0]?.options.includes('size=1073741824'));
    assert.ok((await spec({ shmSize: '128m' })).mounts.some((m) => m.options.includes('size=134217728')));
  });

  it('read-only rootfs: root.readonly and ro on non-special mounts, user mounts keep their mode', async () => {
    const s = await spec({
      readOnlyRootfs: true,
      mounts: [{ type: 'tmpfs', target: '/run' }],
      extraMounts: [{ destination: '/etc/hosts', type: 'bind', source: '/etc/hosts', options: ['rbind', 'rprivate'] }],
    });
    assert.equal(s.root.readonly, true);
    const by = new Map(s.mounts.map((m) => [m.destination, m.options]));
    for (const rw of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/run'])
      assert.ok(!by.get(rw)?.includes('ro'), rw);
    for (const ro of ['/sys', '/sys/fs/cgroup', '/etc/hosts']) assert.ok(by.get(ro)?.includes('ro'), ro);
  });

  it('refuses a user mount and an extra mount on the same target', async () => {
    await assert.rejects(
      spec({
        mounts: [{ type: 'tmpfs', target: '/run/secrets/pw' }],
        extraMounts: [{ destination: '/run/secrets/pw', type: 'bind', source: '/dev/null', options: ['rbind'] }],
      }),
      (e: unknown) => hasCode(e, 'ENGINE_INVALID_MOUNT') && /\/run\/secrets\/pw/.test(String(e)),
    );
  });

  it('rejects bad mounts with ENGINE_INVALID_MOUNT naming the target', async () => {
    const bad: ContainerSpecInput['mounts'][] = [
      [{ type: 'tmpfs', target: 'relative' }],
      [{ type: 'tmpfs', target: '/' }],
      [{ type: 'tmpfs', target: '/a/../b' }],
      [{ type: 'bind', source: 'relative', target: '/x' }],
      [{ type: 'bind', source: '/nonexistent-shoal-src', target: '/x' }],
      [{ type: 'volume', source: '../escape', target: '/x' }],
      [{ type: 'tmpfs', target: '/x', options: ['suid=1'] }],
      [
        { type: 'tmpfs', target: '/x' },
        { type: 'tmpfs', target: '/x/' },
      ],
    ];
    for (const mounts of bad) {
      await assert.rejects(
        spec({ mounts }),
        (e: unknown) => hasCode(e, 'ENGINE_INVALID_MOUNT'),
        JSON.stringify(mounts),
      );
    }
  });

  it('maps memory (swap 2x), reservation, cpus, shares, cpuset and pids', async () => {
    const s = await spec({
      memory: '64m',
      memoryReservation: '32m',
      cpus: '0.5',
      cpuShares: 512,
      cpusetCpus: '0-1',
      pidsLimit: 100,
    });
    assert.deepEqual(s.linux.resources.memory, { limit: 67108864, swap: 134217728, reservation: 33554432 });
    assert.deepEqual(s.linux.resources.cpu, { period: 100000, quota: 50000, shares: 512, cpus: '0-1' });
    assert.deepEqual(s.linux.resources.pids, { limit: 100 });
    assert.deepEqual((await spec({ memory: '1g', memorySwap: -1 })).linux.resources.memory, {
      limit: 2 ** 30,
      swap: -1,
    });
    assert.deepEqual((await spec({ pidsLimit: 0 })).linux.resources.pids, { limit: -1 });
    for (const bad of [
      { memory: '1m' },
      { memory: 'lots' },
      { memorySwap: '1g' },
      { memory: '1g', memorySwap: '512m' },
      { cpus: '-1' },
      { cpuShares: 1 },
      { cpusetCpus: 'a' },
    ]) {
      await assert.rejects(spec(bad), (e: unknown) => hasCode(e, 'ENGINE_INVALID_SPEC'), JSON.stringify(bad));
    }
  });

  it('parses sizes and cpus', () => {
    assert.equal(parseSize('64m', 'x'), 64 * 2 ** 20);
    assert.equal(parseSize('1g', 'x'), 2 ** 30);
    assert.equal(parseSize('1.5k', 'x'), 1536);
    assert.equal(parseSize(4096, 'x'), 4096);
    assert.equal(parseSize('100', 'x'), 100);
    assert.throws(() => parseSize('1q', 'memory'), /invalid spec: memory: "1q" is not a size/);
    assert.deepEqual(parseCpus('1.25'), { period: 100000, quota: 125000 });
    assert.throws(() => parseCpus('0.001'), /minimum/);
  });

  it('merges tmpfs options, the later one winning', () => {
    assert.deepEqual(mergeOptions(['noexec', 'nosuid', 'size=1'], ['exec', 'size=2']), ['nosuid', 'exec', 'size=2']);
    assert.deepEqual(mergeOptions(['nodev', 'rprivate'], ['rshared', 'sync']), ['nodev', 'rshared', 'sync']);
  });
});

describe('user and stop signal resolution', () => {
  it('resolves uid, uid:gid, name, name:group and groupAdd; rejects unknown names', async () => {
    assert.deepEqual(await resolveUser(rootfs, ''), { uid: 0, gid: 0, additionalGids: [0] });
    assert.deepEqual(await resolveUser(rootfs, '1000'), { uid: 1000, gid: 1000, additionalGids: [1000, 2000] });
    assert.deepEqual(await resolveUser(rootfs, '4242'), { uid: 4242, gid: 0, additionalGids: [0] });
    assert.deepEqual(await resolveUser(rootfs, '4242:55'), { uid: 4242, gid: 55, additionalGids: [55] });
    assert.deepEqual(await resolveUser(rootfs, 'app', ['www', '7']), {
      uid: 1000,
      gid: 1000,
      additionalGids: [1000, 7, 33, 2000],
    });
    await assert.rejects(resolveUser(rootfs, 'ghost'), (e: unknown) => hasCode(e, 'ENGINE_USER_NOT_FOUND'));
    await assert.rejects(resolveUser(rootfs, 'app:ghosts'), /no group "ghosts"/);
    await assert.rejects(resolveUser(rootfs, 'a:b:c'), /user\[:group\]/);
  });

  it('does not follow an /etc/passwd symlink out of the rootfs', async () => {
    const evil = join(root, 'evil');
    mkdirSync(join(evil, 'etc'), { recursive: true });
    symlinkSync('/etc/passwd', join(evil, 'etc', 'passwd'));
    await assert.rejects(resolveUser(evil, 'root'), (e: unknown) => hasCode(e, 'ENGINE_USER_NOT_FOUND'));
  });

  it('resolves the stop signal: service, image, SIGTERM', () => {
    assert.equal(resolveStopSignal(undefined, undefined), 'SIGTERM');
    assert.equal(resolveStopSignal(undefined, 'SIGQUIT'), 'SIGQUIT');
    assert.equal(resolveStopSignal('int', 'SIGQUIT'), 'SIGINT');
    assert.equal(resolveStopSignal(9, undefined), 'SIGKILL');
    assert.equal(resolveStopSignal('SIGRTMIN+3', undefined), '37');
    assert.throws(
      () => resolveStopSignal('SIGFOO', undefined),
      (e: unknown) => hasCode(e, 'ENGINE_INVALID_SPEC'),
    );
    assert.throws(() => resolveStopSignal(undefined, 'BOGUS'), /image StopSignal/);
  });
});
