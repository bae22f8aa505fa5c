/**
 * The confinement and name-resolution flags of `shoal container run/create`: parsed as the docker
 * CLI does, refused with one clear line when bad (before anything is made), and observed inside a
 * real container when good.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Engine } from '@shoal/engine';
import { Cgroup } from '@shoal/engine/internal';
import { parseAddHost, parseEnv, parseNetwork, parseSecret, parseSysctl } from './container.js';
import { isSwarmNetwork } from './container-attach.js';

function makeLayer(root: string): string {
  const layer = join(root, 'layer');
  for (const d of ['bin', 'etc', 'tmp']) mkdirSync(join(layer, d), { recursive: true });
  copyFileSync('/bin/busybox', join(layer, 'bin', 'busybox'));
  for (const a of ['sh', 'echo', 'cat', 'head', 'ls']) symlinkSync('busybox', join(layer, 'bin', a));
  writeFileSync(join(layer, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(layer, 'etc', 'group'), 'root:x:0:\n');
  return layer;
}

interface Ctx {
  root: string;
  layer: string;
  flags: string[];
}

function shoal(
  ctx: Ctx,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new URL('../program.js', import.meta.url).href;
  const container = new URL('./container.js', import.meta.url).href;
  const script = `
    import { main } from ${JSON.stringify(program)};
    import { useImages } from ${JSON.stringify(container)};
    const image = { id: 'sha256:' + '2'.repeat(64), ref: 'test/busybox:latest', config: { Cmd: ['sh'], Env: ['PATH=/bin', 'FROM_IMAGE=1'] }, layerDirs: [${JSON.stringify(ctx.layer)}] };
    useImages({ resolve: async () => image });
    process.exitCode = await main(JSON.parse(process.argv[1]));
  `;
  const [verb, ...rest] = args;
  const argv = ['container', verb ?? '', ...ctx.flags, ...rest];
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(argv)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function setup(t: { after(fn: () => Promise<void>): void }): Ctx {
  const root = mkdtempSync(join(tmpdir(), 'shoal-cliflags-'));
  const cgroupParent = `/shoal-clitest-${randomBytes(4).toString('hex')}`;
  const ctx: Ctx = {
    root,
    layer: makeLayer(root),
    flags: ['--data-root', join(root, 'data'), '--run-root', join(root, 'run'), '--cgroup-parent', cgroupParent],
  };
  t.after(async () => {
    const e = await Engine.open({
      dataRoot: join(root, 'data'),
      runRoot: join(root, 'run'),
      cgroupParent,
      background: false,
      images: { resolve: () => Promise.reject(new Error('unused')) },
    });
    for (const c of await e.list({ all: true })) await e.remove(c.id, { force: true });
    await e.close();
    await new Cgroup(cgroupParent).remove({ keepParent: true });
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8').includes(root);
    if (!mounted) await rm(root, { recursive: true, force: true });
    assert.ok(!mounted, 'no mounts left');
  });
  return ctx;
}

test('flag parsing follows the docker CLI', () => {
  assert.equal(parseEnv('A=1'), 'A=1');
  assert.equal(parseEnv('HOME_X', { HOME_X: '/root' }), 'HOME_X=/root', 'a bare KEY copies the set value');
  assert.equal(parseEnv('UNSET_X', {}), 'UNSET_X', 'and stays bare (omitted) when unset');
  assert.equal(parseNetwork('none'), 'none');
  assert.equal(parseNetwork('host'), 'host');
  assert.deepEqual(parseNetwork('ns:/run/netns/x'), { path: '/run/netns/x' });
  assert.throws(() => parseNetwork('bridge'), /--network "bridge": expected none, host or ns:PATH/);
  assert.throws(() => parseNetwork('ns:rel'), /ns: needs an absolute path/);
  // a swarm network's name goes to shoald (container run --network NAME); modes never do
  for (const v of ['appnet', 'my_net.1', 'a-b']) assert.equal(isSwarmNetwork(v), true, v);
  for (const v of ['none', 'host', 'bridge', 'default', 'ns:/run/netns/x', 'a/b', '-x', ''])
    assert.equal(isSwarmNetwork(v), false, v);
  assert.deepEqual(parseAddHost('db:198.18.0.5'), { host: 'db', ip: '198.18.0.5' });
  assert.deepEqual(parseAddHost('db:[2001:db8::1]'), { host: 'db', ip: '2001:db8::1' });
  assert.deepEqual(parseAddHost('db=2001:db8::1'), { host: 'db', ip: '2001:db8::1' });
  assert.throws(() => parseAddHost('db'), /--add-host "db": expected host:ip/);
  assert.deepEqual(parseSysctl('net.core.somaxconn=1024', {}), { 'net.core.somaxconn': '1024' });
  assert.throws(() => parseSysctl('net.core.somaxconn', {}), /--sysctl "net.core.somaxconn": expected key=value/);
  const read = (p: string): Buffer => Buffer.from(`data of ${p}`);
  assert.deepEqual(parseSecret('/x/db_pw', read), { name: 'db_pw', data: Buffer.from('data of /x/db_pw') });
  assert.deepEqual(parseSecret('src=/x/f,name=tok,target=/etc/tok,uid=1000,gid=1000,mode=0400', read), {
    name: 'tok',
    data: Buffer.from('data of /x/f'),
    target: '/etc/tok',
    uid: 1000,
    gid: 1000,
    mode: 0o400,
  });
  assert.throws(() => parseSecret('name=tok', read), /src=FILE is required/);
  assert.throws(() => parseSecret('src=/x,mode=999', read), /mode "999" is not valid/);
  assert.throws(() => parseSecret('src=/x,owner=1', read), /unknown field "owner=1"/);
});

test(
  'container run: --ulimit, --sysctl, --init, --cap-add/--cap-drop, --secret, --add-host, --dns, -e KEY reach the container',
  {
    timeout: 90_000,
  },
  async (t) => {
    const ctx = setup(t);
    const secretFile = join(ctx.root, 'api_token');
    writeFileSync(secretFile, 'tok-123');
    const script = [
      'echo nofile=$(ulimit -n)/$(ulimit -Hn)',
      'echo shmmax=$(cat /proc/sys/kernel/shmmax)',
      'head -1 /proc/1/status',
      'cat /proc/self/status | while read k v; do [ "$k" = CapBnd: ] && echo bnd=$v; done',
      'echo secret=$(cat /run/secrets/token)',
      'echo host_key=${SHOAL_CLI_KEY-unset} unset_key=${SHOAL_CLI_UNSET-unset} from_image=${FROM_IMAGE-unset}',
      'echo hostname=$(cat /etc/hostname)',
      'cat /etc/hosts | while read ip n; do [ "$n" = db ] && echo db=$ip; done',
      'cat /etc/resolv.conf',
    ].join('; ');
    const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_CLI_KEY: 'from-host' };
    delete env['SHOAL_CLI_UNSET'];
    const r = await shoal(
      ctx,
      [
        'run',
        '--rm',
        '--ulimit',
        'nofile=1234:2345',
        '--sysctl',
        'kernel.shmmax=123456789',
        '--init',
        '--cap-drop',
        'ALL',
        '--cap-add',
        'net_admin',
        '--cap-add',
        'CAP_KILL',
        '--secret',
        `src=${secretFile},name=token`,
        '--network',
        'none',
        '--add-host',
        'db:198.18.0.5',
        '--dns',
        '198.18.0.53',
        '--dns-search',
        'svc.example',
        '--dns-option',
        'ndots:1',
        '-e',
        'SHOAL_CLI_KEY',
        '-e',
        'SHOAL_CLI_UNSET',
        '-e',
        'FROM_IMAGE',
        '-h',
        'cli-1',
        'busybox',
        'sh',
        '-c',
        script,
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes('nofile=1234/2345'), r.stdout);
    assert.ok(lines.includes('shmmax=123456789'), r.stdout);
    assert.match(r.stdout, /^Name:\s+(docker-init|tini-static|tini)$/m, 'PID 1 is the init');
    // CAP_KILL (5) and CAP_NET_ADMIN (12)
    assert.ok(lines.includes(`bnd=${((1n << 5n) | (1n << 12n)).toString(16).padStart(16, '0')}`), r.stdout);
    assert.ok(lines.includes('secret=tok-123'), r.stdout);
    assert.ok(lines.includes('host_key=from-host unset_key=unset from_image=unset'), r.stdout);
    assert.ok(lines.includes('hostname=cli-1'), r.stdout);
    assert.ok(lines.includes('db=198.18.0.5'), r.stdout);
    assert.match(r.stdout, /^nameserver 198\.18\.0\.53\nsearch svc\.example\noptions ndots:1\n/m);
  },
);

test('bad flag values: one clear line naming the flag, nothing made', { timeout: 180_000 }, async (t) => {
  const ctx = setup(t);
  const cases: [string[], RegExp][] = [
    [['--ulimit', 'nofile=abc'], /^shoal: --ulimit: "nofile=abc" is not name=soft\[:hard\]/],
    [['--ulimit', 'nofile=10:5'], /^shoal: --ulimit: nofile: soft limit 10 exceeds hard limit 5/],
    [['--sysctl', 'kernel.hostname=x'], /^shoal: --sysctl "kernel.hostname": is not namespaced/],
    [['--sysctl', 'nokey'], /--sysctl "nokey": expected key=value/],
    [['--cap-add', 'SYS_MAGIC'], /^shoal: --cap-add: unknown capability "SYS_MAGIC"/],
    [['--network', 'bridge'], /--network "bridge": expected none, host or ns:PATH/],
    [['--network-alias', 'x'], /^shoal: --network-alias: network-scoped aliases are only supported for swarm networks/],
    [['--add-host', 'db:1.2.3'], /^shoal: --add-host: db: "1.2.3" is not an IP address/],
    [['--dns', '1.2.3.4.5'], /^shoal: --dns: "1.2.3.4.5" is not an IP address/],
    [['--secret', 'src=/nonexistent/shoal-secret'], /--secret .*cannot read \/nonexistent\/shoal-secret/],
  ];
  for (const [flags, re] of cases) {
    const r = await shoal(ctx, ['run', ...flags, 'busybox', 'true']);
    assert.equal(r.code, 1, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, flags.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
  const ls = await shoal(ctx, ['ls', '-a', '-q']);
  assert.equal(ls.stdout, '', 'no container was made');
});
