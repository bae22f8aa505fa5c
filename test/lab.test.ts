/**
 * Multi-host lab: real namespaces, veths, bridge, registry and the real `shoal` CLI. Every test
 * uses its own lab name and the file uses its own lab root (SHOAL_LAB_ROOT), and takes its labs
 * down in t.after, also when it fails. Must run as root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { errnoCode, run, sleep, waitFor, type RunResult } from '@shoal/common';
import {
  LabNotFoundError,
  MANIFEST_ACCEPT,
  TestImages,
  labDown,
  labExec,
  labUp,
  pushTestImages,
  readLabState,
  type LabState,
} from '@shoal/testkit';

const repo = new URL('../..', import.meta.url).pathname;
const cliMain = join(repo, 'packages/cli/dist/main.js');
const root = await mkdtemp(join(tmpdir(), 'shoal-labroot-'));
process.env['SHOAL_LAB_ROOT'] = root;
after(() => rm(root, { recursive: true, force: true }));

function uniq(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

function cli(args: string[], opts: { asNobody?: boolean } = {}): Promise<RunResult> {
  const argv = [process.execPath, cliMain, ...args];
  const [file, ...rest] = opts.asNobody
    ? // nobody, but able to read the checkout wherever it lives (a clone under a 0700 dir), and nothing more
      [
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--inh-caps=+dac_read_search',
        '--ambient-caps=+dac_read_search',
        ...argv,
      ]
    : argv;
  return run(file ?? 'node', rest, { check: false, env: { ...process.env, SHOAL_LAB_ROOT: root } });
}

/**
 * Takes a lab down after a test. A lab that is already gone (the test took it down, or `up`
 * failed before making anything) is the expected case; any other failure is a leak and fails.
 */
async function downIfUp(name: string): Promise<void> {
  try {
    await labDown(name);
  } catch (err) {
    if (!(err instanceof LabNotFoundError)) throw err;
  }
}

/** A process's command line, or undefined when it exited meanwhile (ENOENT, or ESRCH mid-read). */
function procCmdline(pid: string | number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
}

/** Brings a lab up through the library and registers its removal. */
async function upLab(t: { after: (fn: () => Promise<void>) => void }, name: string, hosts: number): Promise<LabState> {
  t.after(async () => {
    await downIfUp(name);
  });
  return labUp({ name, hosts });
}

async function canPing(lab: string, host: string, addr: string): Promise<boolean> {
  const r = await labExec(lab, host, ['ping', '-c', '1', '-W', '1', addr]);
  return r.code === 0;
}

/** What of a lab exists on the machine, found by name independently of the lab code. */
async function traces(s: Pick<LabState, 'name' | 'bridge' | 'tag'>): Promise<string[]> {
  const found: string[] = [];
  for (const ns of readdirSync('/run/netns').filter((n) => n.startsWith(`shoal-${s.name}-`))) found.push(`netns ${ns}`);
  for (const line of (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n')) {
    const link = line.split(': ')[1]?.split('@')[0];
    if (link && (link === s.bridge || ['sv', 'sd', 'sr'].some((p) => link.startsWith(`${p}${s.tag}-`))))
      found.push(`link ${link}`);
  }
  const dir = join(root, s.name);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n'))
    if (line.includes(dir)) found.push(`mount ${line.split(' ')[4]}`);
  for (const p of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (procCmdline(p)?.includes(dir)) found.push(`process ${p}`);
  }
  const fw = await run('iptables', ['-w', '-S', 'FORWARD'], { check: false });
  if (fw.stdout.includes(`shoal-lab:${s.name}"`) || fw.stdout.includes(`shoal-lab:${s.name} `))
    found.push('iptables rule');
  if (existsSync(dir)) found.push(`dir ${dir}`);
  return found;
}

test('lab of 3: hosts reach each other and the registry, with their own hostnames', async (t) => {
  const name = uniq('mesh');
  const s = await upLab(t, name, 3);
  assert.equal(s.hosts.length, 3);
  assert.match(s.subnet, /^198\.1[89]\.\d+\.0\/24$/);
  assert.notEqual(s.subnet, '198.18.0.0/24');
  for (const from of s.hosts) {
    for (const to of s.hosts) assert.ok(await canPing(name, from.name, to.address), `${from.name} -> ${to.name}`);
    const hn = await labExec(name, from.name, ['hostname']);
    assert.equal(hn.stdout.trim(), from.hostname);
    const routes = await labExec(name, from.name, ['ip', '-4', 'route', 'show']);
    assert.doesNotMatch(routes.stdout, /default/, 'no route out of the lab');
  }
  assert.ok(s.registry);
  const v2 = await labExec(name, 'h2', [
    'curl',
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `${s.registry.url}/v2/`,
  ]);
  assert.equal(v2.stdout, '200');

  // Running `up` again changes nothing; a larger count adds only the missing hosts.
  const again = await labUp({ name, hosts: 3 });
  assert.deepEqual(again, s);
  const more = await labUp({ name, hosts: 4 });
  assert.deepEqual(more.hosts.slice(0, 3), s.hosts);
  assert.equal(more.hosts[3]?.name, 'h4');
  assert.equal(more.registry?.pid, s.registry.pid);
  assert.ok(await canPing(name, 'h4', s.hosts[0]?.address ?? ''));

  const ls = await cli(['lab', 'ls', name, '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  const view = JSON.parse(ls.stdout) as {
    registry: { addr: string; state: string };
    hosts: { name: string; state: string; address: string }[];
  };
  assert.equal(view.registry.addr, `${s.gateway}:5000`);
  assert.equal(view.registry.state, 'up');
  assert.deepEqual(
    view.hosts.map((h) => [h.name, h.state]),
    [
      ['h1', 'up'],
      ['h2', 'up'],
      ['h3', 'up'],
      ['h4', 'up'],
    ],
  );

  const code = await cli(['lab', 'exec', name, 'h1', '--', 'sh', '-c', 'exit 7']);
  assert.equal(code.code, 7, 'lab exec passes the exit code');
});

test('a cut host is unreachable until healed; loss and delay faults', async (t) => {
  const name = uniq('fault');
  const s = await upLab(t, name, 3);
  const [h1, h2] = s.hosts;
  assert.ok(h1 && h2);
  assert.equal((await cli(['lab', 'cut', name, 'h2'])).code, 0);
  assert.equal(await canPing(name, 'h1', h2.address), false);
  assert.equal(await canPing(name, 'h2', h1.address), false);
  assert.match((await cli(['lab', 'ls', name])).stdout, /h2 .* cut/);
  assert.equal((await cli(['lab', 'heal', name, 'h2'])).code, 0);
  assert.ok(
    await waitFor(async () => ((await canPing(name, 'h1', h2.address)) ? true : undefined), {
      timeoutMs: 5000,
      what: 'h2 back',
    }),
  );

  // Delay shows in ping times (netem, or the relay on kernels without netem); TCP still works.
  const delay = await cli(['lab', 'delay', name, 'h1', '--ms', '80']);
  assert.equal(delay.code, 0, delay.stderr);
  const ping = await labExec(name, 'h1', ['ping', '-c', '3', '-i', '0.2', h2.address]);
  const times = [...ping.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  assert.equal(times.length, 3, ping.stdout);
  for (const ms of times) assert.ok(ms >= 80, `rtt ${ms} ms includes the 80 ms delay`);
  assert.match((await cli(['lab', 'ls', name])).stdout, /h1 .* up \(delay 80ms/);
  const v2 = await labExec(name, 'h1', [
    'curl',
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `${s.registry?.url}/v2/`,
  ]);
  assert.equal(v2.stdout, '200', 'TCP through the delayed link');
  assert.ok(await canPing(name, 'h3', h2.address), 'other hosts are unaffected');
  assert.equal((await cli(['lab', 'delay', name, 'h1', '--ms', '0'])).code, 0);
  assert.doesNotMatch((await cli(['lab', 'ls', name])).stdout, /delay/);

  assert.equal((await cli(['lab', 'delay', name, 'h1', '--ms', '0', '--loss', '100'])).code, 0);
  assert.equal(await canPing(name, 'h1', h2.address), false, 'all packets h1 sends are lost');
  assert.ok(await canPing(name, 'h3', h2.address), 'other hosts are unaffected');
  assert.equal((await cli(['lab', 'delay', name, 'h1', '--ms', '0'])).code, 0);
  assert.ok(await canPing(name, 'h1', h2.address), 'faults removed');
});

test('test images pushed to the lab registry verify from inside a lab host', async (t) => {
  const name = uniq('img');
  const s = await upLab(t, name, 2);
  assert.ok(s.registry);
  const pushed = await pushTestImages(s.registry.url);
  const host = s.hosts[1];
  assert.ok(host);
  let n = 0;
  const fetchInHost = async (path: string, accept?: string): Promise<Buffer> => {
    const file = join(host.dataDir, `fetch-${n++}`);
    const args = [
      'curl',
      '-sf',
      '-o',
      file,
      ...(accept ? ['-H', `Accept: ${accept}`] : []),
      `${s.registry?.url}${path}`,
    ];
    const r = await labExec(name, host.name, args);
    assert.equal(r.code, 0, `${path}: ${r.stderr}`);
    return readFile(file);
  };
  const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const forms = new Set<string>();
  for (const ref of [TestImages.busybox, TestImages.busyboxDocker, TestImages.busyboxZstd, TestImages.whiteout]) {
    const img = pushed.find((p) => p.ref === ref);
    assert.ok(img?.manifest, ref);
    const bytes = await fetchInHost(`/v2/${img.repository}/manifests/${img.tag}`, MANIFEST_ACCEPT);
    assert.equal(sha(bytes), img.digest, `${ref} manifest`);
    const doc = JSON.parse(bytes.toString()) as {
      mediaType: string;
      config: { digest: string };
      layers: { digest: string; mediaType: string }[];
    };
    const config = await fetchInHost(`/v2/${img.repository}/blobs/${doc.config.digest}`);
    assert.equal(sha(config), img.manifest.config.digest);
    const diffIds = (JSON.parse(config.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    for (const [i, l] of doc.layers.entries()) {
      const blob = await fetchInHost(`/v2/${img.repository}/blobs/${l.digest}`);
      assert.equal(sha(blob), l.digest, `${ref} layer ${i}`);
      const zstd = l.mediaType.endsWith('+zstd');
      assert.equal(sha(zstd ? zstdDecompressSync(blob) : gunzipSync(blob)), diffIds[i]);
      forms.add(`${doc.mediaType} ${zstd ? 'zstd' : 'gzip'}`);
    }
  }
  assert.deepEqual([...forms].sort(), [
    'application/vnd.docker.distribution.manifest.v2+json gzip',
    'application/vnd.oci.image.manifest.v1+json gzip',
    'application/vnd.oci.image.manifest.v1+json zstd',
  ]);
});

test('two labs coexist on separate subnets and bridges; down leaves nothing', async (t) => {
  const a = uniq('la');
  const b = uniq('a-rather-long-lab-name');
  const sa = await upLab(t, a, 2);
  const sb = await upLab(t, b, 2);
  assert.notEqual(sa.subnet, sb.subnet);
  assert.notEqual(sa.bridge, sb.bridge);
  assert.ok(await canPing(a, 'h1', sa.hosts[1]?.address ?? ''));
  assert.ok(await canPing(b, 'h1', sb.hosts[1]?.address ?? ''));
  assert.equal(await canPing(a, 'h1', sb.hosts[0]?.address ?? ''), false, 'labs are isolated');
  const down = await cli(['lab', 'down', a]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(await traces(sa), []);
  assert.ok(await canPing(b, 'h2', sb.hosts[0]?.address ?? ''), 'the other lab still works');
  const res = await fetch(`${sb.registry?.url}/v2/`);
  assert.equal(res.status, 200);
});

test('down cleans up after kill -9 of the CLI mid-up, of the registry and of host processes', async (t) => {
  const name = uniq('crash');
  t.after(async () => {
    await downIfUp(name);
  });
  // 1. kill -9 `lab up` while it is making hosts.
  const up = spawn(process.execPath, [cliMain, 'lab', 'up', '--name', name, '--hosts', '12'], {
    stdio: 'ignore',
    env: { ...process.env, SHOAL_LAB_ROOT: root },
  });
  await waitFor(async () => ((await readLabState(name))?.hosts.length ?? 0) >= 2 || undefined, {
    timeoutMs: 20_000,
    what: 'hosts being made',
  });
  up.kill('SIGKILL');
  await new Promise((r) => up.once('exit', r));
  let s = await readLabState(name);
  assert.ok(s && s.hosts.length < 12, 'up was interrupted');
  const partialDown = await cli(['lab', 'down', name]);
  assert.equal(partialDown.code, 0, partialDown.stderr);
  assert.deepEqual(await traces(s), []);

  // 2. A complete lab whose registry, exec'd processes and CLI are all killed with SIGKILL.
  assert.equal((await cli(['lab', 'up', '--name', name, '--hosts', '2'])).code, 0);
  s = await readLabState(name);
  assert.ok(s?.registry);
  const exec = spawn(process.execPath, [cliMain, 'lab', 'exec', name, 'h1', '--', 'sleep', '1000'], {
    stdio: 'ignore',
    env: { ...process.env, SHOAL_LAB_ROOT: root },
  });
  const netns = s.hosts[0]?.netns ?? '';
  const sleeper = await waitFor(
    async () => {
      const r = await run('ip', ['netns', 'pids', netns], { check: false });
      const pids = r.stdout.split('\n').filter(Boolean).map(Number);
      return pids.find((p) => procCmdline(p)?.startsWith('sleep'));
    },
    { timeoutMs: 5000, what: `sleep in ${netns}` },
  );
  assert.equal((await cli(['lab', 'delay', name, 'h2', '--ms', '10'])).code, 0);
  const relay = (await readLabState(name))?.hosts[1]?.fault?.relayPid;
  exec.kill('SIGKILL');
  process.kill(s.registry.pid, 'SIGKILL');
  if (relay) process.kill(relay, 'SIGKILL');
  await sleep(100);
  const down = await cli(['lab', 'down', name]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(await traces(s), []);
  assert.throws(() => process.kill(sleeper, 0), 'the process left in the host was killed');
});

test('concurrent ups of one lab and of two labs do not race', async (t) => {
  const a = uniq('cc');
  const b = uniq('cc');
  for (const n of [a, b]) {
    t.after(async () => {
      await downIfUp(n);
    });
  }
  const results = await Promise.all([
    cli(['lab', 'up', '--name', a, '--hosts', '2']),
    cli(['lab', 'up', '--name', a, '--hosts', '2']),
    cli(['lab', 'up', '--name', b, '--hosts', '2']),
  ]);
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const sa = await readLabState(a);
  const sb = await readLabState(b);
  assert.ok(sa && sb);
  assert.deepEqual(
    sa.hosts.map((h) => h.name),
    ['h1', 'h2'],
  );
  assert.notEqual(sa.subnet, sb.subnet);
  const registries = readdirSync('/proc').filter(
    (p) => /^\d+$/.test(p) && procCmdline(p)?.includes(join(root, a, 'registry')) === true,
  );
  assert.equal(registries.length, 1, 'one registry for the lab');
  assert.ok(await canPing(a, 'h1', sa.hosts[1]?.address ?? ''));
  assert.ok(await canPing(b, 'h2', sb.hosts[0]?.address ?? ''));
});

test('bad input: one clear line, an error code, and nothing made', async () => {
  const name = uniq('bad');
  const cases: [string[], string, { asNobody?: boolean }?][] = [
    [['lab', 'up', '--name', 'Bad_Name'], 'LAB_INVALID_NAME'],
    [['lab', 'up', '--name', '1abc'], 'LAB_INVALID_NAME'],
    [['lab', 'up', '--name', name, '--hosts', '0'], 'LAB_HOST_COUNT'],
    [['lab', 'up', '--name', name, '--hosts', '65'], 'LAB_HOST_COUNT'],
    [['lab', 'up', '--name', name, '--hosts', 'abc'], 'LAB_HOST_COUNT'],
    [['lab', 'up', '--name', name], 'LAB_NOT_ROOT', { asNobody: true }],
    [['lab', 'ls', name], 'LAB_NOT_FOUND'],
    [['lab', 'down', name], 'LAB_NOT_FOUND'],
    [['lab', 'exec', name, 'h1', '--', 'true'], 'LAB_NOT_FOUND'],
    [['lab', 'cut', name, 'h1'], 'LAB_NOT_FOUND'],
    [['lab', 'delay', name, 'h1', '--ms', '5'], 'LAB_NOT_FOUND'],
  ];
  for (const [args, code, opts] of cases) {
    const r = await cli(args, opts);
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}`);
    assert.match(r.stderr, new RegExp(`^shoal: [^\\n]+ \\[${code}\\]\\n$`), `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
  assert.equal(existsSync(join(root, name)), false);
  assert.equal(
    readdirSync('/run/netns').some((n) => n.startsWith(`shoal-${name}`)),
    false,
  );

  // Unknown host of an existing lab.
  const lab = uniq('bad');
  try {
    assert.equal((await cli(['lab', 'up', '--name', lab, '--hosts', '1', '--no-registry'])).code, 0);
    for (const args of [
      ['lab', 'exec', lab, 'h9', '--', 'true'],
      ['lab', 'cut', lab, 'nohost'],
      ['lab', 'heal', lab, 'h2'],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^shoal: lab '[^']+' has no host '[^']+' \(hosts: h1\) \[LAB_HOST_NOT_FOUND\]\n$/);
    }
  } finally {
    await downIfUp(lab);
  }
});
