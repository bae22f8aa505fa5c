// Named local volumes (`shoal volume ...`, `container run -v NAME:/path`, `--mount type=volume`)
// on the real engine: the real CLI in child processes, busybox pulled from a real registry,
// containers under runc. Each test has its own data root (removed with everything in it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnv, shoal, type CliResult } from './engine-cli-support.js';

interface Volume {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: string;
}

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout;
}

function mountedAt(path: string): string | undefined {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === path);
  return line?.split(' - ')[1]?.split(' ')[0];
}

test(
  'volumes: create, ls, inspect, rm, prune; in use; kept after the container; copy-up; tmpfs; --mount',
  { timeout: 240_000 },
  async (t) => {
    const env = await cliEnv(t);
    const r = await env.root();
    const f = r.flags;
    const vol = (...args: string[]): Promise<CliResult> => shoal(['volume', ...args, ...f]);
    const names = async (): Promise<string[]> =>
      ok(await vol('ls', '-q'), 'ls -q')
        .split('\n')
        .filter(Boolean)
        .sort();
    const inspect = async (n: string): Promise<Volume> =>
      (JSON.parse(ok(await vol('inspect', n), `inspect ${n}`)) as Volume[])[0]!;
    const run = (...args: string[]): Promise<CliResult> => shoal(['container', 'run', ...f, ...args]);

    // create, inspect as Docker's
    assert.equal(ok(await vol('create', '--label', 'tier=db', '--label', 'x', 'data1'), 'create').trim(), 'data1');
    const v = await inspect('data1');
    assert.equal(v.Name, 'data1');
    assert.equal(v.Driver, 'local');
    assert.equal(v.Scope, 'local');
    assert.equal(v.Mountpoint, join(r.dataRoot, 'volumes', 'data1', '_data'));
    assert.deepEqual(v.Labels, { tier: 'db', x: '' });
    assert.equal(v.Options, null);
    assert.ok(!Number.isNaN(Date.parse(v.CreatedAt)), v.CreatedAt);
    assert.ok(existsSync(v.Mountpoint));
    // create again: the same volume, unchanged
    assert.equal(ok(await vol('create', 'data1'), 'create again').trim(), 'data1');
    assert.deepEqual((await inspect('data1')).Labels, { tier: 'db', x: '' });
    ok(await vol('create', 'other'), 'create other');

    // ls: table, -q, filters, format
    const table = ok(await vol('ls'), 'ls').split('\n');
    assert.match(table[0] ?? '', /^DRIVER\s+VOLUME NAME$/);
    assert.ok(
      table.some((l) => /^local\s+data1$/.test(l)),
      table.join('\n'),
    );
    assert.deepEqual(await names(), ['data1', 'other']);
    assert.equal(ok(await vol('ls', '-q', '--filter', 'label=tier=db'), 'label').trim(), 'data1');
    assert.equal(ok(await vol('ls', '-q', '--filter', 'name=oth'), 'name').trim(), 'other');
    assert.equal(
      ok(await vol('ls', '--format', '{{.Name}}/{{.Driver}}', '--filter', 'name=data1'), 'format').trim(),
      'data1/local',
    );
    assert.equal(
      (JSON.parse(ok(await vol('ls', '--format', 'json', '--filter', 'name=data1'), 'json')) as Volume).Name,
      'data1',
    );

    // a container writes into a named volume; the data outlives the container
    ok(await run('--rm', '-v', 'data1:/data', env.image, 'sh', '-c', 'echo kept > /data/f'), 'write');
    assert.equal(readFileSync(join(v.Mountpoint, 'f'), 'utf8'), 'kept\n');
    assert.equal(ok(await run('--rm', '-v', 'data1:/data:ro', env.image, 'cat', '/data/f'), 'read'), 'kept\n');
    const ro = await run('--rm', '-v', 'data1:/data:ro', env.image, 'sh', '-c', 'echo x > /data/g');
    assert.notEqual(ro.code, 0, 'a read-only volume refuses writes');

    // in use (by a stopped container too): rm refused, prune skips it
    const id = ok(await shoal(['container', 'create', ...f, '-v', 'data1:/data', env.image, 'true']), 'create').trim();
    const busy = await vol('rm', 'data1');
    assert.notEqual(busy.code, 0);
    assert.match(busy.stderr, /data1: volume is in use/);
    assert.equal(busy.stderr.trim().split('\n').length, 1, busy.stderr);
    assert.ok(existsSync(join(v.Mountpoint, 'f')), 'nothing removed');
    const inUse = JSON.parse(
      ok(await vol('ls', '--format', 'json', '--filter', 'dangling=false'), 'dangling'),
    ) as Volume;
    assert.equal(inUse.Name, 'data1');
    ok(await shoal(['container', 'rm', ...f, id]), 'container rm');

    // copy-up: a new (empty) volume gets what the image has at the target
    ok(await run('--rm', '-v', 'etc1:/etc', env.image, 'true'), 'copy-up run');
    const etc = (await inspect('etc1')).Mountpoint;
    assert.ok(readdirSync(etc).includes('passwd'), `image /etc copied: ${readdirSync(etc).join(' ')}`);
    // a volume with content is not copied into again
    writeFileSync(join(v.Mountpoint, 'only'), 'x');
    ok(await run('--rm', '-v', 'data1:/etc', env.image, 'true'), 'no copy-up');
    assert.ok(!readdirSync(v.Mountpoint).includes('passwd'));

    // tmpfs-typed volume: mounted at its Mountpoint on first use, seen as tmpfs inside
    ok(
      await vol('create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m,mode=0755', 'tmp1'),
      'tmpfs create',
    );
    assert.deepEqual((await inspect('tmp1')).Options, { type: 'tmpfs', device: 'tmpfs', o: 'size=1m,mode=0755' });
    const mounts = ok(
      await run('--rm', '-v', 'tmp1:/t', env.image, 'sh', '-c', 'grep " /t " /proc/mounts; echo in > /t/f'),
      'tmpfs run',
    );
    assert.match(mounts, /^tmpfs \/t tmpfs .*size=1024k/m);
    const tmpMp = (await inspect('tmp1')).Mountpoint;
    assert.equal(mountedAt(tmpMp), 'tmpfs');
    assert.equal(readFileSync(join(tmpMp, 'f'), 'utf8'), 'in\n');

    // a bind-typed volume (type=none,o=bind,device=DIR)
    const hostDir = join(env.dir, 'bound');
    mkdirSync(hostDir);
    ok(
      await vol('create', '--opt', 'type=none', '--opt', 'o=bind', '--opt', `device=${hostDir}`, 'bind1'),
      'bind create',
    );
    ok(await run('--rm', '-v', 'bind1:/b', env.image, 'sh', '-c', 'echo b > /b/f'), 'bind run');
    assert.equal(readFileSync(join(hostDir, 'f'), 'utf8'), 'b\n');

    // --mount creates the volume with its labels and options on first use
    ok(
      await run(
        '--rm',
        '--mount',
        'type=volume,source=mnt1,target=/m,volume-label=made=by-mount,volume-opt=type=tmpfs,volume-opt=device=tmpfs',
        env.image,
        'sh',
        '-c',
        'grep -q " /m tmpfs " /proc/mounts',
      ),
      '--mount',
    );
    const m = await inspect('mnt1');
    assert.deepEqual(m.Labels, { made: 'by-mount' });
    assert.deepEqual(m.Options, { type: 'tmpfs', device: 'tmpfs' });

    // anonymous volume: a random name and Docker's label; prune removes it (not named ones), -a the rest
    const anonId = ok(await shoal(['container', 'create', ...f, '-v', '/anon', env.image, 'true']), 'anon').trim();
    const anon = (await names()).filter((n) => /^[0-9a-f]{64}$/.test(n));
    assert.equal(anon.length, 1, `one anonymous volume: ${(await names()).join(' ')}`);
    assert.deepEqual((await inspect(anon[0]!)).Labels, { 'com.docker.volume.anonymous': '' });
    const kept = ok(await vol('prune', '-f'), 'prune while in use');
    assert.ok(!kept.includes(anon[0]!), 'in use: not pruned');
    ok(await shoal(['container', 'rm', ...f, anonId]), 'rm anon container');
    const pruned = ok(await vol('prune', '-f'), 'prune');
    assert.match(pruned, new RegExp(`Deleted Volumes:\\n${anon[0]!}\\n`));
    assert.deepEqual(await names(), ['bind1', 'data1', 'etc1', 'mnt1', 'other', 'tmp1']);
    ok(await vol('prune', '-a', '-f', '--filter', 'label=made'), 'prune -a label');
    // --rm and rm -v take a container's anonymous volumes with it, not its named ones
    ok(await run('--rm', '-v', '/anon2', '-v', 'data1:/d', env.image, 'true'), '--rm anonymous');
    const withAnon = ok(await shoal(['container', 'create', ...f, '-v', '/anon3', env.image, 'true']), 'anon3').trim();
    assert.equal((await names()).filter((n) => /^[0-9a-f]{64}$/.test(n)).length, 1, 'only anon3 is left');
    ok(await shoal(['container', 'rm', '-v', ...f, withAnon]), 'rm -v');
    assert.deepEqual(await names(), ['bind1', 'data1', 'etc1', 'other', 'tmp1']);

    // rm: the tmpfs is unmounted and the bind device left alone; -f ignores a missing one
    ok(await vol('rm', 'tmp1', 'bind1'), 'rm');
    assert.equal(mountedAt(tmpMp), undefined, 'tmpfs unmounted');
    assert.equal(readFileSync(join(hostDir, 'f'), 'utf8'), 'b\n', 'the bound host dir keeps its files');
    const missing = await vol('rm', 'nope');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no such volume: nope/);
    ok(await vol('rm', '-f', 'nope'), 'rm -f missing');
    ok(await vol('prune', '-a', '-f'), 'prune -a');
    assert.deepEqual(await names(), []);
  },
);

test('volumes: bad input is one line and creates nothing', { timeout: 120_000 }, async (t) => {
  const env = await cliEnv(t);
  const r = await env.root();
  const f = r.flags;
  const cases: [string[], RegExp][] = [
    [['volume', 'create', 'a!b'], /volume name "a!b"/],
    [['volume', 'create', 'x'], /too short/],
    [['volume', 'create', '-d', 'nfs', 'v1'], /driver "nfs" is not supported/],
    [['volume', 'create', '-o', 'foo=bar', 'v2'], /invalid option key "foo"/],
    [['volume', 'create', '-o', 'type=ext4', '-o', 'device=/dev/null', 'v3'], /type "ext4" is not supported/],
    [
      ['volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=lots', 'v4'],
      /o=size=lots|size=lots/,
    ],
    [['volume', 'create', '-o', 'type=tmpfs', 'v5'], /missing required option "device"/],
    [['container', 'run', '--rm', '-v', 'b@d:/x', 'IMAGE', 'true'], /volume name "b@d"/],
    [
      ['container', 'run', '--rm', '--mount', 'type=volume,source=v6,target=/x,volume-opt=foo=1', 'IMAGE', 'true'],
      /invalid option key "foo"/,
    ],
    [['container', 'run', '--rm', '--mount', 'type=volume,source=v7', 'IMAGE', 'true'], /target is required/],
  ];
  for (const [args, re] of cases) {
    const full = args.map((a) => (a === 'IMAGE' ? env.image : a));
    const res = await shoal([...full.slice(0, 2), ...f, ...full.slice(2)]);
    assert.notEqual(res.code, 0, `${args.join(' ')} must fail`);
    assert.match(res.stderr, re, args.join(' '));
    assert.equal(res.stderr.trim().split('\n').length, 1, `one line: ${res.stderr}`);
  }
  const dir = join(r.dataRoot, 'volumes');
  const left = existsSync(dir) ? readdirSync(dir).filter((n) => n !== '.lock') : [];
  assert.deepEqual(left, [], 'no volume made');
  assert.equal(ok(await shoal(['container', 'ls', '-a', '-q', ...f]), 'ls'), '', 'no container made');
});
