/**
 * Every create option reaches the container, observed from inside real containers under runc:
 * ulimits (`ulimit -n`), sysctls (/proc/sys), init (PID 1), cap-add/cap-drop (/proc/self/status),
 * network none/host/ns:PATH (the netns inode), --add-host/--dns (/etc/hosts, /etc/resolv.conf),
 * the host name (/etc/hostname), and the one merge with the image config (record = config.json).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { hostname as osHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasCode } from '@shoal/common';
import type { Engine, ImageResolver } from '../engine.js';
import type { ImageConfig } from '../image/types.js';
import { ALL_CAPABILITIES, resolveCapabilities } from '../spec/capabilities.js';
import { hostResolvConf, renderHosts, renderResolvConf, rewriteHosts, rewriteResolvConf } from '../spec/etc-files.js';
import { etcFilesInput } from './config.js';
import type { ContainerCreateOptions } from './types.js';
import { busyboxImage, logText, testEngine } from './test-support.js';

/** The busybox image with another config (entrypoint, env, workdir...). */
function imageWith(config: ImageConfig): { images: ImageResolver; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-img-'));
  const base = busyboxImage(dir);
  return {
    images: { resolve: async (ref) => ({ ...(await base.resolve(ref)), config }) },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs to exit; the output split into `---name` sections and `key=value` words. */
async function runToExit(engine: Engine, opts: ContainerCreateOptions) {
  const id = await engine.run(opts);
  const exit = await engine.wait(id);
  const { stdout, stderr } = await logText(engine, id);
  assert.equal(exit.exitCode, 0, `${stdout}${stderr}`);
  const sections = new Map<string, string>();
  let cur = '';
  for (const line of stdout.split('\n')) {
    if (line.startsWith('---')) {
      cur = line.slice(3);
      sections.set(cur, '');
    } else if (cur) sections.set(cur, `${sections.get(cur) ?? ''}${line}\n`);
  }
  const values = new Map<string, string>();
  for (const w of (sections.get('values') ?? '').split(/\s+/)) {
    const eq = w.indexOf('=');
    if (eq > 0) values.set(w.slice(0, eq), w.slice(eq + 1));
  }
  return { id, stdout, sections, values };
}

const SHOW = [
  'echo ---values',
  'echo nofile=$(ulimit -n) nofile_hard=$(ulimit -Hn) nproc=$(ulimit -u)',
  'echo shmmax=$(cat /proc/sys/kernel/shmmax) ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)',
  'echo from_image=${FROM_IMAGE-unset} drop_me=${DROP_ME-unset} host_env=$HOSTNAME',
  'echo ---pid1',
  'head -1 /proc/1/status',
  'echo ---net',
  'ls -l /proc/self/ns/net',
  'echo ---status',
  'cat /proc/self/status',
  'echo ---hosts',
  'cat /etc/hosts',
  'echo ---hostname',
  'cat /etc/hostname',
  'echo ---resolv',
  'cat /etc/resolv.conf',
  'echo ---end',
].join('; ');

const SCRIPT = SHOW;

/** The netns inode from `ls -l /proc/self/ns/net` (`... -> net:[4026531840]`). */
const netOf = (r: { sections: Map<string, string> }): string =>
  /net:\[(\d+)\]/.exec(r.sections.get('net') ?? '')?.[1] ?? 'none';

const capMask = (caps: readonly string[]): string => {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(ALL_CAPABILITIES.indexOf(c as (typeof ALL_CAPABILITIES)[number]));
  return m.toString(16).padStart(16, '0');
};

const netnsInode = (path: string): string => /\[(\d+)\]/.exec(readlinkSync(path))?.[1] ?? '';

test('every create option reaches the container', { timeout: 90_000 }, async (t) => {
  const img = imageWith({ Cmd: ['sh'], Env: ['PATH=/bin', 'FROM_IMAGE=1', 'DROP_ME=x'], WorkingDir: '/' });
  const te = await testEngine({ images: img.images });
  t.after(async () => {
    await te.cleanup();
    img.cleanup();
  });
  const { sections, values } = await runToExit(te.engine, {
    image: 'busybox',
    cmd: ['sh', '-c', SCRIPT],
    env: ['DROP_ME'],
    hostname: 'web-1',
    ulimits: ['nofile=1234:2345', { name: 'nproc', soft: 500, hard: 500 }],
    sysctls: { 'kernel.shmmax': '123456789', 'net.ipv4.ip_forward': '1' },
    init: true,
    capAdd: ['NET_ADMIN'],
    capDrop: ['chown'],
    extraHosts: [{ host: 'db', ip: '198.18.0.5' }],
    dns: ['198.18.0.53'],
    dnsSearch: ['svc.example'],
    dnsOptions: ['ndots:1'],
  });
  assert.equal(values.get('nofile'), '1234');
  assert.equal(values.get('nofile_hard'), '2345');
  assert.equal(values.get('nproc'), '500');
  assert.equal(values.get('shmmax'), '123456789');
  assert.equal(values.get('ip_forward'), '1');
  assert.match(sections.get('pid1') ?? '', /^Name:\s+(docker-init|tini-static|tini)\n$/, 'PID 1 is the init');
  assert.equal(values.get('from_image'), '1', 'image env kept');
  assert.equal(values.get('drop_me'), 'unset', 'a bare KEY removes the image variable');
  assert.equal(values.get('host_env'), 'web-1');
  const status = sections.get('status') ?? '';
  const want = capMask(resolveCapabilities(['NET_ADMIN'], ['CHOWN']));
  assert.equal(/^CapBnd:\s*(\S+)$/m.exec(status)?.[1], want, 'bounding set');
  assert.equal(/^CapEff:\s*(\S+)$/m.exec(status)?.[1], want, 'effective set');
  assert.equal(sections.get('hostname'), 'web-1\n');
  assert.equal(
    sections.get('hosts'),
    renderHosts({ hostname: 'web-1', hostNetwork: false, extraHosts: [{ host: 'db', ip: '198.18.0.5' }] }),
  );
  assert.match(sections.get('hosts') ?? '', /^198\.18\.0\.5\tdb$/m);
  assert.equal(
    sections.get('resolv'),
    renderResolvConf(
      {
        hostname: 'web-1',
        hostNetwork: false,
        dns: ['198.18.0.53'],
        dnsSearch: ['svc.example'],
        dnsOptions: ['ndots:1'],
      },
      hostResolvConf(),
    ),
  );
  assert.match(sections.get('resolv') ?? '', /^nameserver 198\.18\.0\.53\nsearch svc\.example\noptions ndots:1\n/);
});

test('--init puts tini in front as PID 1', { timeout: 60_000 }, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const withInit = await runToExit(te.engine, {
    image: 'busybox',
    init: true,
    cmd: ['sh', '-c', 'head -1 /proc/1/status'],
  });
  assert.match(withInit.stdout, /^Name:\s+(docker-init|tini-static|tini)$/m);
  // `; true` keeps sh from exec'ing head
  const without = await runToExit(te.engine, { image: 'busybox', cmd: ['sh', '-c', 'head -1 /proc/1/status; true'] });
  assert.match(without.stdout, /^Name:\s+sh$/m);
});

test('network none, host and ns:PATH, with their /etc files', { timeout: 90_000 }, async (t) => {
  const te = await testEngine();
  const ns = `shoal-es-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.after(async () => {
    await te.cleanup();
    execFileSync('ip', ['netns', 'del', ns]);
  });
  const hostNet = netnsInode('/proc/self/ns/net');
  const cmd = ['sh', '-c', SCRIPT];

  const none = await runToExit(te.engine, { image: 'busybox', cmd, hostname: 'iso' });
  assert.notEqual(netOf(none), hostNet, 'a network namespace of its own');
  assert.equal(none.sections.get('hosts'), renderHosts({ hostname: 'iso', hostNetwork: false }));
  assert.equal(
    none.sections.get('resolv'),
    renderResolvConf({ hostname: 'iso', hostNetwork: false }, hostResolvConf()),
  );
  assert.doesNotMatch(none.sections.get('resolv') ?? '', /nameserver (127\.|::1)/, 'no loopback nameserver');

  const host = await runToExit(te.engine, {
    image: 'busybox',
    cmd,
    network: 'host',
    extraHosts: [{ host: 'db', ip: '198.18.0.5' }],
  });
  assert.equal(netOf(host), hostNet, "the host's network namespace");
  assert.equal(host.sections.get('hostname'), `${osHostname()}\n`, "the host's name, as Docker");
  assert.equal(host.sections.get('hosts'), `${readFileSync('/etc/hosts', 'utf8')}198.18.0.5\tdb\n`);
  assert.equal(host.sections.get('resolv'), hostResolvConf());

  const joined = await runToExit(te.engine, { image: 'busybox', cmd, network: { path: `/run/netns/${ns}` } });
  assert.equal(netOf(joined), String(statSync(`/run/netns/${ns}`).ino), 'the given namespace');
});

test(
  'the record and config.json come from one merge (a bare KEY is removed in both)',
  { timeout: 60_000 },
  async (t) => {
    const img = imageWith({
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: ['echo from-image'],
      Env: ['PATH=/bin', 'SHOAL_BARE_KEY=image'],
      WorkingDir: '/tmp',
    });
    const te = await testEngine({ images: img.images });
    const saved = process.env['SHOAL_BARE_KEY'];
    process.env['SHOAL_BARE_KEY'] = 'from-the-engine-process';
    t.after(async () => {
      if (saved === undefined) delete process.env['SHOAL_BARE_KEY'];
      else process.env['SHOAL_BARE_KEY'] = saved;
      await te.cleanup();
      img.cleanup();
    });
    const id = await te.engine.create({
      image: 'busybox',
      cmd: ['echo key=${SHOAL_BARE_KEY-unset} cwd=$(pwd)'],
      env: ['SHOAL_BARE_KEY', 'X=1'],
      hostname: 'merge-1',
    });
    const rec = await te.engine.inspect(id);
    const spec = JSON.parse(readFileSync(join(rec.bundle, 'config.json'), 'utf8')) as {
      process: { args: string[]; env: string[]; cwd: string };
    };
    assert.deepEqual(rec.process.env, spec.process.env);
    assert.deepEqual(rec.process.args, spec.process.args);
    assert.equal(rec.process.cwd, spec.process.cwd);
    assert.deepEqual(spec.process.env, ['PATH=/bin', 'HOSTNAME=merge-1', 'X=1']);
    assert.deepEqual(spec.process.args, ['/bin/sh', '-c', 'echo key=${SHOAL_BARE_KEY-unset} cwd=$(pwd)']);
    await te.engine.start(id);
    assert.equal((await te.engine.wait(id)).exitCode, 0);
    assert.equal((await logText(te.engine, id)).stdout, 'key=unset cwd=/tmp\n');
  },
);

test('with a read-only rootfs the /etc files are mounted read-only', { timeout: 60_000 }, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const r = await runToExit(te.engine, {
    image: 'busybox',
    readOnly: true,
    hostname: 'ro-1',
    cmd: ['sh', '-c', 'cat /etc/hostname; echo x >> /etc/hosts && echo wrote || echo refused'],
  });
  assert.equal(r.stdout, 'ro-1\nrefused\n');
});

test(
  'a running container sees /etc/hosts and resolv.conf rewritten from its record',
  { timeout: 60_000 },
  async (t) => {
    const te = await testEngine();
    t.after(() => te.cleanup());
    const id = await te.engine.run({
      image: 'busybox',
      hostname: 'live-1',
      extraHosts: [{ host: 'db', ip: '198.18.0.5' }],
      cmd: ['sleep', '1000'],
    });
    const rec = await te.engine.inspect(id);
    assert.ok(rec.network, 'the record keeps the network settings');
    const input = { ...etcFilesInput(rec.network), addresses: ['198.18.0.9'] };
    rewriteHosts(te.engine.store.dir(id), input);
    rewriteResolvConf(te.engine.store.dir(id), { ...input, dns: ['198.18.0.53'] });
    const hosts = await te.engine.exec(id, ['cat', '/etc/hosts', '/etc/resolv.conf']);
    assert.equal(hosts.exitCode, 0, hosts.output);
    assert.match(hosts.output, /^198\.18\.0\.5\tdb\n198\.18\.0\.9\tlive-1\n/m);
    assert.match(hosts.output, /^nameserver 198\.18\.0\.53$/m);
    await te.engine.stop(id, { timeoutMs: 0 });
  },
);

test('bad option values are refused before anything is made', { timeout: 60_000 }, async (t) => {
  const te = await testEngine();
  t.after(() => te.cleanup());
  const cases: [Partial<ContainerCreateOptions>, RegExp][] = [
    [{ ulimits: ['nofile=abc'] }, /ulimits: "nofile=abc" is not name=soft\[:hard\]/],
    [{ ulimits: ['bogus=1'] }, /unknown ulimit "bogus"/],
    [{ ulimits: ['nofile=10:5'] }, /soft limit 10 exceeds hard limit 5/],
    [{ sysctls: { 'kernel.hostname': 'x' } }, /kernel\.hostname.*not namespaced/],
    [{ sysctls: { 'net.ipv4.ip_forward': '1' }, network: 'host' }, /net\.\* sysctls need/],
    [{ capAdd: ['SYS_MAGIC'] }, /SYS_MAGIC/],
    [{ capDrop: ['NOPE'] }, /NOPE/],
    [{ network: { path: 'relative' } }, /network: .* is not none, host or \{path/],
    [{ network: 'bridge' as 'none' }, /network: "bridge" is not none, host/],
    [{ extraHosts: [{ host: 'db', ip: '1.2.3' }] }, /add-host: db: "1\.2\.3" is not an IP address/],
    [{ dns: ['not-an-ip'] }, /dns: "not-an-ip" is not an IP address/],
    [{ dnsSearch: ['bad domain'] }, /dns-search/],
  ];
  for (const [extra, re] of cases) {
    await assert.rejects(te.engine.run({ image: 'busybox', cmd: ['true'], ...extra }), (e: unknown) => {
      const codes = ['ENGINE_INVALID_SPEC', 'ENGINE_UNKNOWN_CAPABILITY', 'ENGINE_INVALID_SYSCTL'];
      assert.ok(
        codes.some((c) => hasCode(e, c)),
        String(e),
      );
      assert.match(String(e), re);
      return true;
    });
  }
  assert.deepEqual(await te.engine.list({ all: true }), [], 'no container was made');
});
