/**
 * Overlay networking end to end on a lab of 5 (1 manager, 4 workers) through the real `shoal` CLI
 * and every host's real shoald: services on one overlay reach each other by name across hosts
 * (embedded DNS at 127.0.0.11, over UDP and TCP), `tasks.NAME` lists the tasks, dnsrr answers with the task
 * addresses, the VIP spreads 60 requests over 3 replicas, a port published in ingress mode
 * answers on all 5 node addresses and one in host mode only on the task's node, and after
 * `service rm` and `network rm` no namespace, bridge, VXLAN device, veth or nftables table of
 * the cluster is left on any host but the ingress sandbox, which every node has from init/join
 * on, with or without a published port (checked first, before any service). Also: `ping` by task and service name across hosts; no request
 * through a VIP fails while its tasks are replaced (`service update --force`); and (second test)
 * a node's shoald killed with -9 leaves no FDB or neighbour entry of its VTEP and tasks on the
 * other hosts' overlay, and its task, replaced elsewhere, answers by name. Images come from the
 * lab's registry. Root only; the lab goes in `after`, also when a test fails.
 *
 * busybox's `wget` segfaults, so connections go with `nc`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { run, waitFor, type RunResult } from '@shoal/common';
import { pushTestImages, readLabState, TestImages } from '@shoal/testkit';
import { cliMain, labTestRig, removeNamespacesTagged } from './lab-test-rig.js';

const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5'];
/** The namespace-name tags of the cluster's nodes (their sandboxes and overlays are removed in `after` too). */
let tags: string[] = [];

const { labName, shoal } = await labTestRig({
  rootPrefix: 'shoal-netlab-',
  labPrefix: 'nl',
  cleanup: () => removeNamespacesTagged(tags),
});

function onHost(host: string, args: string[]): Promise<RunResult> {
  return shoal(['lab', 'exec', labName, host, '--', process.execPath, cliMain, ...args]);
}

let lastOutput = '';
async function ok(host: string, args: string[]): Promise<string> {
  const r = await onHost(host, args);
  lastOutput = `${args.join(' ')} -> ${r.stdout}${r.stderr}`;
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  try {
    return await waitFor(fn, { timeoutMs, intervalMs: 500 });
  } catch (err) {
    throw new Error(`${what}: ${String(err)}; last seen: ${lastOutput}`, { cause: err });
  }
}

/** Running tasks of a service: node -> task names. */
async function running(service: string): Promise<{ node: string; name: string }[]> {
  const out = await ok('h1', [
    'service',
    'ps',
    '--no-trunc',
    '--filter',
    'desired-state=running',
    '--format',
    '{{.Node}} {{.CurrentState}} {{.Name}}.{{.ID}}',
    service,
  ]);
  return out
    .split('\n')
    .filter((l) => /^\S+ Running /.test(l))
    .map((l) => {
      const f = l.split(' ');
      return { node: f[0] ?? '', name: f.at(-1) ?? '' };
    });
}

/** A command in the container of one running task of `service`. */
async function inTask(task: { node: string; name: string }, cmd: string[]): Promise<string> {
  const r = await onHost(task.node, ['container', 'exec', task.name, ...cmd]);
  lastOutput = `${cmd.join(' ')} -> ${r.stdout}${r.stderr}`;
  return r.stdout;
}

async function lookup(task: { node: string; name: string }, name: string): Promise<string[]> {
  const out = await inTask(task, ['nslookup', name]);
  const answers = out
    .split(/Name:\s/)
    .slice(1)
    .join('\n');
  return [...answers.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1] ?? '').sort();
}

/**
 * A DNS query over TCP to 127.0.0.11:53 from a task's sandbox (its network namespace, where the
 * container's 127.0.0.11 is): the A records of the answer, or the error. busybox's tools ask
 * over UDP only, so this is a small Node client that sends one length-prefixed query.
 */
const TCP_QUERY = `
const net = require('node:net');
const name = process.env.NAME;
const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
const h = Buffer.alloc(12);
h.writeUInt16BE(0x5151, 0);
h.writeUInt16BE(0x0100, 2);
h.writeUInt16BE(1, 4);
const q = Buffer.concat([h, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
const len = Buffer.alloc(2);
len.writeUInt16BE(q.length, 0);
const s = net.connect({ host: '127.0.0.11', port: 53 }, () => s.write(Buffer.concat([len, q])));
let got = Buffer.alloc(0);
s.setTimeout(5000, () => { console.log(JSON.stringify('timeout')); s.destroy(); });
s.on('error', (e) => console.log(JSON.stringify(e.code)));
s.on('data', (d) => {
  got = Buffer.concat([got, d]);
  if (got.length < 2 || got.length < 2 + got.readUInt16BE(0)) return;
  const m = got.subarray(2);
  let off = q.length; // past the header and the echoed question (as sent)
  const ips = [];
  for (let i = 0; i < m.readUInt16BE(6); i++) {
    off += 2; // the owner name: a pointer to the question
    const type = m.readUInt16BE(off);
    const rdlen = m.readUInt16BE(off + 8);
    if (type === 1) ips.push([...m.subarray(off + 10, off + 14)].join('.'));
    off += 10 + rdlen;
  }
  console.log(JSON.stringify(ips.sort()));
  s.destroy();
});
`;

/** The sandbox (network namespace) of a task on this machine. */
function sandboxOf(task: { name: string }): string {
  const id = (task.name.split('.').at(-1) ?? '').slice(0, 16).toLowerCase();
  const sb = (existsSync('/run/netns') ? readdirSync('/run/netns') : []).find(
    (n) => n.startsWith('shoal-t-') && n.endsWith(`-${id}`),
  );
  assert.ok(sb, `the sandbox of task ${task.name}`);
  return sb;
}

async function lookupOverTcp(task: { name: string }, name: string): Promise<unknown> {
  const r = await run('nsenter', [`--net=/run/netns/${sandboxOf(task)}`, '--', process.execPath, '-e', TCP_QUERY], {
    env: { ...process.env, NAME: name },
  });
  return JSON.parse(r.stdout);
}

const GET = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3`;

/** The bodies of `n` HTTP GETs to addr:port from inside a task (busybox nc). */
async function fetchMany(task: { node: string; name: string }, addr: string, n: number): Promise<string[]> {
  const script = `for i in $(seq ${n}); do ${GET} ${addr} 80 | tail -n 1; echo; done`;
  const out = await inTask(task, ['sh', '-c', script]);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

const CLIENT = `
const req = require('http').get({ host: process.env.ADDR, port: Number(process.env.PORT), path: '/', timeout: 3000 }, (res) => {
  let d = '';
  res.on('data', (c) => { d += c; });
  res.on('end', () => console.log(JSON.stringify(d.trim())));
});
req.on('timeout', () => { req.destroy(); console.log(JSON.stringify('timeout')); });
req.on('error', (e) => console.log(JSON.stringify(e.code)));
`;

/** An HTTP GET from a lab host's own namespace (not a container): the body or an error code. */
async function fromHost(netns: string, addr: string, port: number): Promise<string> {
  const r = await run('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', CLIENT], {
    env: { ...process.env, ADDR: addr, PORT: String(port) },
  });
  return JSON.parse(r.stdout) as string;
}

const HOSTNAME = /^[0-9a-f]{12}$/;

/**
 * A 3-replica httpd service `vw` behind its VIP is replaced task by task (`service update --force`,
 * stop-first) while the client connects to its VIP address and to `vw` by name (the embedded DNS
 * answering while the nodes are busy) in a loop: no connection may fail, so a task leaves
 * every VIP before its container stops. Its httpd exits at once on SIGTERM, so a task still behind
 * a VIP when it is stopped refuses (or loses) the connections sent to it.
 */
async function vipUnderReplacement(image: string, client: { node: string; name: string }): Promise<void> {
  const quickStop = 'mkdir -p /www && hostname > /www/index.html && trap "exit 0" TERM; httpd -f -p 80 -h /www & wait';
  await ok('h1', [
    'service',
    'create',
    '-d',
    '--name',
    'vw',
    '--network',
    'appnet',
    '--replicas',
    '3',
    image,
    'sh',
    '-c',
    quickStop,
  ]);
  const first = await until('3 vw tasks running', async () => {
    const r = await running('vw');
    return r.length === 3 ? r : undefined;
  });
  const oldNames = await until('vw answers by name from 3 tasks', async () => {
    const seen = new Set(await fetchMany(client, 'vw', 9));
    return seen.size === 3 && [...seen].every((b) => HOSTNAME.test(b)) ? seen : undefined;
  });
  const [vip] = await lookup(client, 'vw');
  assert.ok(vip, 'vw resolves');
  const log = `/tmp/vw-${randomBytes(3).toString('hex')}`;
  const loop = inTask(client, [
    'sh',
    '-c',
    // through the VIP's address, and by name (`vw` resolves to the VIP: the embedded DNS answers)
    `while [ ! -e ${log}.stop ]; do for t in ${vip} vw; do b=$(${GET} $t 80 | tail -n 1); echo "r:$b:$t:$(date +%s)" >> ${log}; done; done; cat ${log}`,
  ]);
  const lines = async (): Promise<number> =>
    Number((await inTask(client, ['sh', '-c', `cat ${log} | wc -l`])).trim() || 0);
  try {
    await until('the client loop runs', async () => ((await lines()) >= 5 ? true : undefined));
    await ok('h1', [
      'service',
      'update',
      '-d',
      '--force',
      '--update-order',
      'stop-first',
      '--update-delay',
      '0s',
      'vw',
    ]);
    const oldIds = new Set(first.map((t) => t.name));
    await until(
      'every vw task replaced',
      async () => {
        const r = await running('vw');
        return r.length === 3 && r.every((t) => !oldIds.has(t.name)) ? true : undefined;
      },
      180_000,
    );
    const after = await lines();
    await until('the client loop goes on after the update', async () =>
      (await lines()) >= after + 5 ? true : undefined,
    );
  } finally {
    await inTask(client, ['touch', `${log}.stop`]);
  }
  const results = (await loop).split('\n').filter((l) => l.startsWith('r:'));
  const bodies = results.map((l) => l.split(':')[1] ?? '');
  const failedAll = bodies.flatMap((b, i) => (HOSTNAME.test(b) ? [] : [i]));
  // By address the VIP must never fail. By name a request also needs the DNS answer, which a
  // starved machine can still lose now and then (1 of 7,002 in one CI run at high load): up to 1 %
  // of the by-name requests may fail, and each is shown in the message if more do.
  const byName = (i: number): boolean => !/^\d+\.\d+\.\d+\.\d+$/.test(results[i]?.split(':')[2] ?? '');
  const nameTotal = results.filter((_l, i) => byName(i)).length;
  const nameFailed = failedAll.filter(byName).length;
  const failed = nameFailed * 100 <= nameTotal ? failedAll.filter((i) => !byName(i)) : failedAll;
  // each failure with the answers around it: which task stopped or started there
  const around = failed.map((i) => results.slice(Math.max(0, i - 6), i + 7).join(' '));
  let state = '';
  if (failed.length > 0) {
    // what the client sees now (for the failure message)
    const ips = await lookup(client, 'tasks.vw');
    const direct = await Promise.all(ips.map(async (ip) => `${ip}=${(await fetchMany(client, ip, 1)).join('')}`));
    const viaVip = (await fetchMany(client, 'vw', 3)).join(',');
    const sandboxes = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
    const sb = sandboxOf(client);
    const nft = await run('ip', ['netns', 'exec', sb, 'nft', 'list', 'table', 'ip', 'shoal_vip'], { check: false });
    const ovs = sandboxes.filter((n) => n.startsWith('shoal-ov-') && tags.some((t) => n.includes(`-${t}-`)));
    const peers = await Promise.all(ovs.map(async (o) => `${o}: ${JSON.stringify(await peersIn(o))}`));
    state = `; now: tasks.vw ${direct.join(' ')}; vw -> ${viaVip}; vip table ${nft.stdout}${nft.stderr}; ${peers.join('; ')}`;
  }
  assert.equal(
    failed.length,
    0,
    `${failed.length} of ${results.length} requests through the VIP (by address and by name) failed during the update (old tasks ${[...oldNames].join(' ')}): ${around.join(' | ')}${state}`,
  );
  assert.ok(
    bodies.some((b) => oldNames.has(b)),
    'requests reached the old tasks',
  );
  assert.ok(
    bodies.some((b) => !oldNames.has(b)),
    `requests reached the new tasks: ${[...new Set(bodies)].join(', ')}`,
  );
}

/** What the first test made, for the next one (the lab stays up until `after`). */
let lab: { image: string; nodes: Map<string, string> } | undefined;

test(
  'overlay services across hosts: DNS, tasks.NAME, dnsrr, VIP, ingress and host ports, cleanup',
  { timeout: 900_000 },
  async () => {
    const up = await shoal(['lab', 'up', '--name', labName, '--hosts', '5', '--managers', '1']);
    assert.equal(up.code, 0, up.stderr);
    const state = await readLabState(labName);
    assert.ok(state?.registry, 'the lab has a registry');
    const pushed = await pushTestImages(state.registry.url, { only: [TestImages.busybox] });
    const image = pushed[0]?.remoteRef ?? '';
    assert.match(image, /busybox/);
    const hosts = state.hosts;
    const nodeIds = (await ok('h1', ['node', 'ls', '--format', '{{.ID}}'])).split('\n').filter((l) => l !== '');
    assert.equal(nodeIds.length, 5);
    lab = { image, nodes: new Map() };
    for (const h of HOSTS) lab.nodes.set(h, (await ok('h1', ['node', 'inspect', '--format', '{{.ID}}', h])).trim());
    tags = nodeIds.map((id) =>
      id
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .slice(0, 10),
    );

    // the ingress sandbox on every node from init/join on, before any service publishes a port
    // (Docker's ingress-sbox): shoal_ing in each host's namespace, in the ingress overlay's
    // namespace of that node
    const ingressId = (await ok('h1', ['network', 'inspect', '--format', '{{.Id}}', 'ingress'])).trim();
    assert.match(ingressId, /^[a-z0-9]{12,}$/);
    const ingressNs = tags.map((t) => `shoal-ov-${t}-${ingressId.slice(0, 12).toLowerCase()}`).sort();
    const hasIngressLink = async (netns: string): Promise<boolean> => {
      const r = await run(
        'nsenter',
        [`--net=/run/netns/${netns}`, '--', 'ip', '-o', '-4', 'addr', 'show', 'shoal_ing'],
        {
          check: false,
        },
      );
      lastOutput = `${netns}: ${r.stdout}${r.stderr}`;
      return r.code === 0 && / inet 198\.19\./.test(r.stdout);
    };
    for (const h of hosts)
      await until(`ingress sandbox on ${h.name}`, async () => (await hasIngressLink(h.netns)) || undefined);
    assert.deepEqual(
      readdirSync('/run/netns')
        .filter((n) => ingressNs.includes(n))
        .sort(),
      ingressNs,
      'an ingress overlay namespace per node',
    );

    const meshPort = 30000 + (randomBytes(2).readUInt16BE() % 1000);
    const hostPort = meshPort + 1000;
    const httpd = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];
    await ok('h1', ['network', 'create', '-d', 'overlay', 'appnet']);
    await ok('h1', [
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--network',
      'appnet',
      '--replicas',
      '3',
      '--publish',
      `published=${meshPort},target=80`,
      image,
      ...httpd,
    ]);
    await ok('h1', ['service', 'create', '-d', '--name', 'client', '--network', 'appnet', image, 'sleep', '3600']);
    await ok('h1', [
      'service',
      'create',
      '-d',
      '--name',
      'rr',
      '--endpoint-mode',
      'dnsrr',
      '--network',
      'appnet',
      '--replicas',
      '2',
      image,
      'sleep',
      '3600',
    ]);
    await ok('h1', [
      'service',
      'create',
      '-d',
      '--name',
      'hm',
      '--publish',
      `mode=host,published=${hostPort},target=80`,
      image,
      ...httpd,
    ]);
    const webTasks = await until('3 web tasks running', async () => {
      const r = await running('web');
      return r.length === 3 ? r : undefined;
    });
    const [clientTask] = await until('client running', async () => {
      const r = await running('client');
      return r.length === 1 ? r : undefined;
    });
    assert.ok(clientTask);
    await until('rr running', async () => ((await running('rr')).length === 2 ? true : undefined));
    const [hmTask] = await until('hm running', async () => {
      const r = await running('hm');
      return r.length === 1 ? r : undefined;
    });
    assert.ok(hmTask);
    // a host-mode task shows the port its node publishes (Task.Status.PortStatus), as `docker service ps` does
    const hmPorts = await ok('h1', [
      'service',
      'ps',
      '--filter',
      'desired-state=running',
      '--format',
      '{{.Ports}}',
      'hm',
    ]);
    assert.equal(hmPorts.trim(), `*:${hostPort}->80/tcp`, 'service ps PORTS of the host-mode task');
    assert.ok(
      webTasks.some((w) => w.node !== clientTask.node),
      `some web task on another host than the client: ${JSON.stringify(webTasks)} ${clientTask.node}`,
    );

    // DNS: the service name is its VIP, tasks.NAME every task, dnsrr every task
    const vips = JSON.parse(
      await ok('h1', ['service', 'inspect', '--format', '{{json .Endpoint.VirtualIPs}}', 'web']),
    ) as { Addr: string }[];
    const vipAddrs = vips.map((v) => v.Addr.split('/')[0] ?? '');
    const webIps = await until('tasks.web lists 3 tasks', async () => {
      const ips = await lookup(clientTask, 'tasks.web');
      return ips.length === 3 ? ips : undefined;
    });
    const [vip] = await lookup(clientTask, 'web');
    assert.ok(vip && vipAddrs.includes(vip), `web resolves to its VIP (${vip}; ${JSON.stringify(vips)})`);
    const rrIps = await until('rr lists 2 tasks', async () => {
      const ips = await lookup(clientTask, 'rr');
      return ips.length === 2 ? ips : undefined;
    });
    assert.deepEqual(await lookup(clientTask, 'tasks.rr'), rrIps, 'dnsrr: the name gives the task addresses');
    // the same names over TCP, from the client's namespace (as a resolver retrying a truncated answer)
    assert.deepEqual(await lookupOverTcp(clientTask, 'tasks.web'), webIps, 'tasks.web over TCP');
    assert.deepEqual(await lookupOverTcp(clientTask, 'web'), [vip], 'web over TCP');

    // reachability by name across hosts: every task the name lists answers with its hostname
    const names = new Set<string>();
    for (const ip of webIps) for (const body of await fetchMany(clientTask, ip, 1)) names.add(body);
    assert.equal(names.size, 3, `3 distinct web tasks answer: ${[...names].join(', ')}`);

    // the VIP spreads 60 requests over the 3 replicas
    const bodies = await fetchMany(clientTask, vip, 60);
    assert.equal(bodies.length, 60, `60 answers through the VIP: ${bodies.join(',')}`);
    const spread = new Map<string, number>();
    for (const b of bodies) spread.set(b, (spread.get(b) ?? 0) + 1);
    assert.deepEqual([...spread.keys()].sort(), [...names].sort(), 'every replica behind the VIP answers');

    // ingress: the published port answers on every node's address
    const from = hosts[0];
    assert.ok(from);
    for (const h of hosts)
      await until(`ingress port on ${h.name}`, async () =>
        names.has(await fromHost(from.netns, h.address, meshPort)) ? true : undefined,
      );
    // host mode: only the node of the task
    const hmHost = hosts.find((h) => h.name === hmTask.node);
    assert.ok(hmHost, `host of hm: ${hmTask.node}`);
    const hmName = await until('host-mode port', async () => {
      const b = await fromHost(from.netns, hmHost.address, hostPort);
      return /^[0-9a-f]{12}$/.test(b) ? b : undefined;
    });
    assert.ok(hmName);
    for (const h of hosts.filter((x) => x !== hmHost))
      assert.match(
        await fromHost(from.netns, h.address, hostPort),
        /ECONNREFUSED|timeout/,
        `not published on ${h.name}`,
      );

    // ping by name across hosts (busybox ping opens a raw socket: CAP_NET_RAW, in the default caps)
    const farWeb = webTasks.find((w) => w.node !== clientTask.node);
    assert.ok(farWeb);
    for (const target of [farWeb.name, 'web', 'rr']) {
      const p = await onHost(clientTask.node, [
        'container',
        'exec',
        clientTask.name,
        'ping',
        '-c',
        '2',
        '-W',
        '3',
        target,
      ]);
      assert.equal(p.code, 0, `ping ${target} from ${clientTask.node}: ${p.stdout}${p.stderr}`);
      assert.match(p.stdout, /2 packets transmitted, 2 packets received/, `ping ${target}`);
    }

    await vipUnderReplacement(image, clientTask);

    // cleanup: after service rm and network rm nothing of the cluster's networks is left but the
    // nodes' ingress sandboxes (they stay while the node is in the swarm)
    await ok('h1', ['service', 'rm', 'web', 'client', 'rr', 'hm', 'vw']);
    await until('network rm', async () =>
      (await onHost('h1', ['network', 'rm', 'appnet'])).code === 0 ? true : undefined,
    );
    const ours = (n: string): boolean => tags.some((tag) => n.includes(`-${tag}-`)) && !ingressNs.includes(n);
    await until('no namespaces of the cluster left', () =>
      Promise.resolve(existsSync('/run/netns') && readdirSync('/run/netns').some(ours) ? undefined : true),
    );
    for (const h of hosts) {
      await until(`no links or tables left on ${h.name}`, async () => {
        const links = await run('nsenter', [`--net=/run/netns/${h.netns}`, '--', 'ip', '-o', 'link', 'show']);
        const tables = await run('nsenter', [`--net=/run/netns/${h.netns}`, '--', 'nft', 'list', 'tables']);
        lastOutput = `${h.name}: ${links.stdout} ${tables.stdout}`;
        const left =
          /shoal_gwbridge|vxlan|gw[0-9a-f]{11}|vo[0-9a-f]{11}/.test(links.stdout) || /shoal_/.test(tables.stdout);
        return left ? undefined : true;
      });
      assert.ok(await hasIngressLink(h.netns), `the ingress sandbox stays on ${h.name}`);
    }
    assert.equal(readdirSync('/run/netns').filter((n) => ingressNs.includes(n)).length, ingressNs.length);
    for (const h of HOSTS) {
      const out = await ok(h, ['container', 'ls', '-a', '--format', '{{.Names}}']);
      assert.doesNotMatch(out, /^(web|client|rr|hm|vw)\./m, `task containers left on ${h}`);
    }
  },
);

/** The name tag of a node in namespace names (as the daemon makes it from the node ID). */
function tagOf(nodeId: string): string {
  return nodeId
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 10);
}

/** The VTEPs of the FDB entries and the addresses of the neighbour entries on an overlay's vxlan0. */
async function peersIn(ns: string): Promise<{ vteps: string[]; neigh: string[] }> {
  const fdb = await run('bridge', ['-n', ns, 'fdb', 'show', 'dev', 'vxlan0'], { check: false });
  const neigh = await run('ip', ['-n', ns, 'neigh', 'show', 'dev', 'vxlan0'], { check: false });
  lastOutput = `${ns}: fdb ${fdb.stdout}${fdb.stderr} neigh ${neigh.stdout}${neigh.stderr}`;
  return {
    vteps: [...fdb.stdout.matchAll(/ dst (\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1] ?? ''),
    neigh: [...neigh.stdout.matchAll(/^(\d+\.\d+\.\d+\.\d+) /gm)].map((m) => m[1] ?? ''),
  };
}

test(
  "overlay peers: a killed node's VTEP and endpoints leave the others' FDB and neighbours; its task comes back reachable by name",
  { timeout: 600_000 },
  async () => {
    assert.ok(lab, 'the lab of the first test is up');
    const { image, nodes } = lab;
    await ok('h1', ['network', 'create', '-d', 'overlay', 'peernet']);
    const netId = (await ok('h1', ['network', 'inspect', '--format', '{{.Id}}', 'peernet'])).trim();
    const httpd = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];
    // the client on h2, the server on another worker (h1 is the only manager and stays up)
    await ok('h1', [
      'service',
      'create',
      '-d',
      '--name',
      'pc',
      '--network',
      'peernet',
      '--constraint',
      'node.hostname==h2',
      image,
      'sleep',
      '3600',
    ]);
    await ok('h1', [
      'service',
      'create',
      '-d',
      '--name',
      'pk',
      '--network',
      'peernet',
      '--constraint',
      'node.role==worker',
      '--constraint',
      'node.hostname!=h2',
      image,
      ...httpd,
    ]);
    const [pc] = await until('pc running', async () => {
      const r = await running('pc');
      return r.length === 1 ? r : undefined;
    });
    const [pk] = await until('pk running', async () => {
      const r = await running('pk');
      return r.length === 1 ? r : undefined;
    });
    assert.ok(pc && pk);
    const victim = pk.node;
    let killed = false;
    try {
      const vtep = (await ok('h1', ['node', 'inspect', '--format', '{{.Status.Addr}}', victim])).trim();
      const ov = `shoal-ov-${tagOf(nodes.get('h2') ?? '')}-${netId.slice(0, 12).toLowerCase()}`;
      const [pkAddr] = await until('tasks.pk resolves', async () => {
        const ips = await lookup(pc, 'tasks.pk');
        return ips.length === 1 ? ips : undefined;
      });
      assert.ok(pkAddr);
      await until(`h2 has ${victim} (${vtep}) and pk (${pkAddr}) as peers`, async () => {
        const p = await peersIn(ov);
        return p.vteps.includes(vtep) && p.neigh.includes(pkAddr) ? true : undefined;
      });
      const oldBody = await until('pk answers by name', async () => {
        const [b] = await fetchMany(pc, 'pk', 1);
        return b && HOSTNAME.test(b) ? b : undefined;
      });

      // kill -9 of the server's shoald: the node goes down, its endpoints and VTEP leave h2's overlay
      const stop = await shoal(['lab', 'stop', labName, victim, '--signal', 'KILL']);
      assert.equal(stop.code, 0, stop.stderr);
      killed = true;
      await until(`${victim}'s VTEP and pk's old address leave h2's overlay`, async () => {
        const p = await peersIn(ov);
        return !p.vteps.includes(vtep) && !p.neigh.includes(pkAddr) ? true : undefined;
      });

      // the replacement runs elsewhere and answers by name
      const [moved] = await until('pk replaced on another node', async () => {
        const r = (await running('pk')).filter((t) => t.node !== victim);
        return r.length === 1 ? r : undefined;
      });
      assert.ok(moved);
      const newVtep = (await ok('h1', ['node', 'inspect', '--format', '{{.Status.Addr}}', moved.node])).trim();
      await until(`h2 has ${moved.node} (${newVtep}) as a peer`, async () =>
        (await peersIn(ov)).vteps.includes(newVtep) ? true : undefined,
      );
      const newBody = await until('the new pk answers by name', async () => {
        const [b] = await fetchMany(pc, 'pk', 1);
        return b && HOSTNAME.test(b) && b !== oldBody ? b : undefined;
      });
      assert.notEqual(newBody, oldBody);
      assert.equal((await lookup(pc, 'tasks.pk')).length, 1, 'tasks.pk lists only the new task');
    } finally {
      // the killed node comes back and removes what it ran; then the services and the network go
      if (killed) await shoal(['lab', 'start', labName, victim]);
      await onHost('h1', ['service', 'rm', 'pc', 'pk']);
      await until('network rm peernet', async () =>
        (await onHost('h1', ['network', 'rm', 'peernet'])).code === 0 ? true : undefined,
      );
    }
  },
);
