/**
 * The worker's overlay networking on real parts: two lab hosts, each running a real engine and
 * Agent (test/worker-net-node.ts) inside the host's network namespace, as shoald does. The test
 * plays the dispatcher: it sends tasks with NetworksAttachments and the NetworkState of their
 * networks, as the manager would. Containers on the two hosts reach each other over VXLAN, find
 * each other through the embedded DNS server at 127.0.0.11, a VIP balances over the tasks of both
 * hosts and follows state changes, an internal network has no way out, an encrypted network is
 * refused, and once the tasks are gone nothing is left: no namespace, veth, bridge, VXLAN device
 * or nftables table. Images come from the lab's registry. Root only; everything is removed at the
 * end, also on failure.
 *
 * Name resolution: busybox-static's `nslookup` asks the resolv.conf server itself, but its `nc`
 * goes through static glibc, which does not resolve through DNS here ("bad address" after about
 * 8 s; /etc/hosts names do work), and its `wget` segfaults even with an address. So connections
 * are made with `nc` to the address nslookup returned.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AssignmentChange, Network, NetworkState, Task, TaskStatusUpdate } from '@shoal/api';
import { ignoreErrno, isProcessAlive, run } from '@shoal/common';
import { Cgroup } from '@shoal/engine/internal';
import { NetworkAllocator } from '@shoal/network';
import { LabNotFoundError, labDown, labUp, pushTestImages, TestImages } from '@shoal/testkit';
import { makeTask, until } from './worker-support.js';

const root = await mkdtemp(join(tmpdir(), 'shoal-labroot-'));
process.env['SHOAL_LAB_ROOT'] = root;
after(() => rm(root, { recursive: true, force: true }));
const nodeScript = new URL('./worker-net-node.js', import.meta.url).pathname;
const GW_SUBNET = '198.19.255.0/24';

async function downIfUp(name: string): Promise<void> {
  try {
    await labDown(name);
  } catch (err) {
    if (!(err instanceof LabNotFoundError)) throw err;
  }
}

function cleanups(t: { after: (fn: () => Promise<void>) => void }): (fn: () => Promise<unknown>) => void {
  const fns: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of fns.reverse()) await fn().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  });
  return (fn) => fns.push(fn);
}

/** One node: an Agent process in a lab host's namespace. */
class TestNode {
  readonly updates: TaskStatusUpdate[] = [];
  private seq = 0;
  private readonly replies = new Map<number, (m: { value?: unknown; error?: string }) => void>();
  private readonly child: ChildProcess;
  readonly ready: Promise<void>;

  constructor(
    readonly id: string,
    readonly hostTag: string,
    readonly vtep: string,
    netns: string,
    readonly dir: string,
    readonly cgroupParent: string,
    registry: string,
  ) {
    this.child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, nodeScript], {
      env: {
        ...process.env,
        NODE_DIR: dir,
        CGROUP_PARENT: cgroupParent,
        NODE_ID: id,
        HOST_TAG: hostTag,
        VTEP: vtep,
        GW_SUBNET,
        REGISTRY: registry,
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`node ${id} exited (${code})`)));
      this.child.on('message', (raw) => {
        const m = raw as { op: string; id?: number; updates?: TaskStatusUpdate[]; value?: unknown; error?: string };
        if (m.op === 'ready') resolve();
        else if (m.op === 'status') this.updates.push(...(m.updates ?? []));
        else if (m.op === 'reply' && m.id !== undefined) this.replies.get(m.id)?.(m);
      });
    });
  }

  assign(type: 'complete' | 'incremental', changes: AssignmentChange[]): void {
    this.child.send({ op: 'assign', type, changes });
  }

  private ask<T>(msg: Record<string, unknown>): Promise<T> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.replies.set(id, (m) => {
        this.replies.delete(id);
        if (m.error) reject(new Error(m.error));
        else resolve(m.value as T);
      });
      this.child.send({ ...msg, id });
    });
  }

  exec(task: Task, argv: string[]): Promise<{ exitCode: number; output: string }> {
    return this.ask({ op: 'exec', taskId: task.ID, argv });
  }

  sandboxes(): Promise<string[]> {
    return this.ask({ op: 'sandboxes' });
  }

  state(task: Task): string | undefined {
    return this.updates.filter((u) => u.TaskID === task.ID).at(-1)?.Status?.State;
  }

  last(task: Task): TaskStatusUpdate | undefined {
    return this.updates.filter((u) => u.TaskID === task.ID).at(-1);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await Promise.race([this.ask({ op: 'stop' }), exited]);
    await exited;
  }

  /** The node's process (nsenter execs node: the same process). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

const update = (a: AssignmentChange['Assignment']): AssignmentChange => ({ Action: 'update', Assignment: a });

/** nslookup's answers for `name` inside a task container (busybox resolves via resolv.conf). */
async function lookup(node: TestNode, task: Task, name: string): Promise<string[]> {
  const r = await node.exec(task, ['nslookup', name]);
  const after = r.output
    .split(/Name:\s/)
    .slice(1)
    .join('\n');
  return [...after.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1] ?? '').sort();
}

/** An HTTP GET with busybox nc (its wget segfaults in this image, even for an address): the body. */
async function fetchText(node: TestNode, task: Task, host: string, port = 80): Promise<string> {
  const script = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} ${port}`;
  const r = await node.exec(task, ['sh', '-c', script]);
  const body = r.output
    .split(/\r?\n\r?\n/)
    .slice(1)
    .join('\n\n')
    .trim();
  return r.exitCode === 0 && /^HTTP\/1\.[01] /.test(r.output) ? body : `error ${r.exitCode}: ${r.output.trim()}`;
}

/** The node's nft helper: a `shoal-nft` child of its process, if one runs. */
function nftHelperOf(n: TestNode): number | undefined {
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    let stat: string | undefined;
    try {
      stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch (err) {
      ignoreErrno('ENOENT', 'ESRCH')(err); // the process ended meanwhile
    }
    const m = stat === undefined ? null : /^\d+ \((.*)\) \S+ (\d+) /.exec(stat);
    if (m?.[1] === 'shoal-nft' && Number(m[2]) === n.pid) return Number(p);
  }
  return undefined;
}

/** Sockets a process holds besides its stdio: the helper's are one per namespace it holds. */
function socketsBeyondStdio(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`)
    .filter((fd) => Number(fd) > 2)
    .map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`))
    .filter((l) => l.startsWith('socket:'));
}

function netnsNames(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}

test(
  'tasks on two nodes: overlay, DNS, VIP, internal network, encryption and gateway-bridge overlap refused, cleanup',
  { timeout: 420_000 },
  async (t) => {
    const tag = randomBytes(3).toString('hex');
    const lab = `wn-${tag}`;
    const cleanup = cleanups(t);
    cleanup(() => downIfUp(lab));
    const s = await labUp({ name: lab, hosts: 2 });
    const [h1, h2] = s.hosts;
    assert.ok(h1 && h2 && s.registry);
    const pushed = await pushTestImages(s.registry.url, { only: [TestImages.busybox] });
    const image = pushed[0]?.remoteRef ?? '';
    assert.match(image, /busybox/);

    const nodes: TestNode[] = [];
    for (const [i, h] of [h1, h2].entries()) {
      const hex = randomBytes(4).toString('hex');
      const dir = mkdtempSync(join(tmpdir(), 'shoal-wnet-'));
      const n = new TestNode(
        `node${hex}`,
        `w${tag}${i}`,
        h.address,
        `/run/netns/${h.netns}`,
        dir,
        `/shoal-wnet-${hex}`,
        s.registry.addr,
      );
      cleanup(async () => {
        await rm(dir, { recursive: true, force: true });
        await new Cgroup(n.cgroupParent).remove();
      });
      cleanup(async () => {
        await n.stop().catch(() => n.kill());
      });
      nodes.push(n);
    }
    const [n1, n2] = nodes as [TestNode, TestNode];
    await Promise.all(nodes.map((n) => n.ready));
    cleanup(async () => {
      // whatever a failure left: the namespaces named with the nodes' tags
      for (const name of netnsNames())
        if (name.includes(`-w${tag}`)) await run('ip', ['netns', 'del', name], { check: false });
    });

    // the manager's side: two overlays (one internal) allocated from a test pool
    const alloc = new NetworkAllocator({ defaultAddrPool: ['198.19.192.0/18'] });
    const mk = (name: string, extra: Partial<NonNullable<Network['Spec']>> = {}): Network =>
      alloc.allocateNetwork({ ID: randomBytes(12).toString('hex'), Spec: { Name: name, ...extra } });
    const front = mk('front');
    const back = mk('back', { Internal: true });
    const secret = mk('secret', { DriverConfiguration: { Name: 'overlay', Options: { encrypted: '' } } });
    // a user subnet holding the nodes' gateway bridge subnet (GW_SUBNET)
    const clash = mk('clash', { IPAMOptions: { Configs: [{ Subnet: '198.19.254.0/23' }] } });

    const httpd = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];
    const task = (
      node: TestNode,
      service: string,
      slot: number,
      net: Network,
      cmd: string[],
      hostname: string,
    ): Task => {
      const t0 = makeTask(node.id, service, slot, {
        ContainerSpec: { Image: image, Command: cmd, Hostname: hostname, StopGracePeriod: 1e9 },
      });
      const address = alloc.allocateAddress(net.ID ?? '', `task:${t0.ID}`);
      return { ...t0, NetworksAttachments: [{ Network: net, Addresses: [address] }] };
    };
    const sleep = ['sleep', '3600'];
    const web1 = task(n1, 'web', 1, front, httpd, 'web-one');
    const web2 = task(n2, 'web', 2, front, httpd, 'web-two');
    const client = task(n1, 'client', 1, front, sleep, 'client-one');
    const iso = task(n2, 'iso', 1, back, sleep, 'iso-one');
    const vip = alloc.allocateAddress(front.ID ?? '', 'vip:svcweb');
    const nodeOf = new Map([web1, web2, client, iso].map((x) => [x.ID, x.NodeID === n1.id ? n1 : n2]));

    const endpoint = (x: Task, running: boolean) => {
      const n = nodeOf.get(x.ID)!;
      return {
        ID: x.ID,
        NodeID: n.id,
        NodeAddr: n.vtep,
        Address: x.NetworksAttachments?.[0]?.Addresses?.[0],
        ServiceID: x.ServiceID,
        ServiceName: x.ServiceName,
        Slot: x.Slot,
        Aliases: [x.Spec?.ContainerSpec?.Hostname ?? ''],
        Running: running,
      };
    };
    const frontState = (running: Set<Task>): NetworkState => ({
      Network: front,
      Endpoints: [web1, web2, client].map((x) => endpoint(x, running.has(x))),
      Services: [
        { ServiceID: 'svcweb', ServiceName: 'web', Mode: 'vip', VIP: vip, Aliases: ['www'] },
        { ServiceID: 'svcclient', ServiceName: 'client', Mode: 'dnsrr' },
      ],
    });
    const backState = (running: boolean): NetworkState => ({
      Network: back,
      Endpoints: [endpoint(iso, running)],
      Services: [{ ServiceID: 'svciso', ServiceName: 'iso', Mode: 'dnsrr' }],
    });

    const none = new Set<Task>();
    n1.assign('complete', [update({ Network: frontState(none) }), update({ Task: web1 }), update({ Task: client })]);
    n2.assign('complete', [
      update({ Network: frontState(none) }),
      update({ Network: backState(false) }),
      update({ Task: web2 }),
      update({ Task: iso }),
    ]);
    for (const x of [web1, web2, client, iso]) {
      const n = nodeOf.get(x.ID)!;
      await until(
        () => (n.state(x) === 'running' ? true : undefined),
        `${x.Name} running (${JSON.stringify(n.last(x))})`,
      );
    }
    // the dispatcher tells every node which endpoints run
    const all = new Set([web1, web2, client]);
    n1.assign('incremental', [update({ Network: frontState(all) })]);
    n2.assign('incremental', [update({ Network: frontState(all) }), update({ Network: backState(true) })]);

    const ipOf = (x: Task): string => (x.NetworksAttachments?.[0]?.Addresses?.[0] ?? '').split('/')[0] ?? '';
    // DNS by name, answered only from the asking container's networks
    const vipIp = vip.split('/')[0] ?? '';
    await until(async () => ((await lookup(n1, client, 'web')).join() === vipIp ? true : undefined), 'web -> VIP');
    assert.deepEqual(await lookup(n1, client, 'www'), [vipIp], 'a service alias resolves to the VIP');
    assert.deepEqual(await lookup(n1, client, 'tasks.web'), [ipOf(web1), ipOf(web2)].sort());
    assert.deepEqual(await lookup(n1, client, 'web-two'), [ipOf(web2)], 'a task hostname resolves');
    assert.deepEqual(await lookup(n1, client, 'client'), [ipOf(client)], 'dnsrr: the task addresses');
    assert.deepEqual(await lookup(n1, client, 'iso'), [], 'iso is on a network client is not on');
    assert.deepEqual(await lookup(n2, iso, 'iso'), [ipOf(iso)], 'DNS works on an internal network');
    assert.deepEqual(await lookup(n2, iso, 'web'), [], 'and answers only for its networks');

    // over the overlay, across hosts, to the address DNS gave
    const [web2Ip] = await lookup(n1, client, 'web-two');
    assert.equal(await fetchText(n1, client, web2Ip ?? ''), 'web-two');
    // the VIP spreads over both hosts' tasks
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) seen.add(await fetchText(n1, client, vipIp));
    assert.deepEqual([...seen].sort(), ['web-one', 'web-two']);

    // a state change takes web2 out of the VIP (and of DNS)
    n1.assign('incremental', [update({ Network: frontState(new Set([web1, client])) })]);
    await until(
      async () => ((await lookup(n1, client, 'tasks.web')).join() === ipOf(web1) ? true : undefined),
      'tasks.web without web2',
    );
    const after1 = new Set<string>();
    for (let i = 0; i < 8; i++) after1.add(await fetchText(n1, client, vipIp));
    assert.deepEqual([...after1], ['web-one'], 'no connection goes to a task the state says is not running');
    // the VIP updates went through the node's nft helper (no process per update), which holds
    // the client's namespace
    const helper1 = nftHelperOf(n1);
    assert.ok(helper1 !== undefined, 'node 1 applies VIP tables through its nft helper');
    assert.notDeepEqual(socketsBeyondStdio(helper1), [], 'the helper keeps a socket in the sandbox');

    // egress: the lab registry is outside the overlays; the internal network has no way there
    const [regHost = '', regPort = ''] = s.registry.addr.split(':');
    assert.doesNotMatch(
      await fetchText(n1, client, regHost, Number(regPort)),
      /^error/,
      'egress through the gateway bridge',
    );
    assert.match(await fetchText(n2, iso, regHost, Number(regPort)), /^error/, 'an internal network has no egress');
    assert.match(await fetchText(n2, iso, ipOf(web2)), /^error/, 'nor a way to another network');

    // an encrypted overlay is refused with the kernel's reason, nothing made
    const enc = task(n1, 'enc', 1, secret, sleep, 'enc-one');
    nodeOf.set(enc.ID, n1);
    const before = netnsNames()
      .filter((x) => x.includes(`-w${tag}`))
      .sort();
    n1.assign('incremental', [update({ Task: enc })]);
    await until(() => (n1.state(enc) === 'failed' ? true : undefined), 'encrypted task failed');
    assert.match(n1.last(enc)?.Status?.Err ?? '', /encrypt|ESP|IPsec|AEAD/i);
    assert.deepEqual(
      netnsNames()
        .filter((x) => x.includes(`-w${tag}`))
        .sort(),
      before,
    );

    // an overlay overlapping the node's gateway bridge is refused, nothing made
    const clashing = task(n1, 'clash', 1, clash, sleep, 'clash-one');
    nodeOf.set(clashing.ID, n1);
    n1.assign('incremental', [update({ Task: clashing })]);
    await until(() => (n1.state(clashing) === 'failed' ? true : undefined), 'clashing task failed');
    assert.match(
      n1.last(clashing)?.Status?.Err ?? '',
      /overlaps this node's gateway bridge subnet 198\.19\.255\.0\/24/,
    );
    assert.deepEqual(
      netnsNames()
        .filter((x) => x.includes(`-w${tag}`))
        .sort(),
      before,
    );

    // the tasks end: nothing is left on either host
    n1.assign('complete', []);
    n2.assign('complete', []);
    // (sandboxes() answers once the node's queued network changes are done)
    await until(
      async () => ((await n1.sandboxes()).length + (await n2.sandboxes()).length === 0 ? true : undefined),
      'sandboxes removed',
    );
    await Promise.all([n1.sandboxes(), n2.sandboxes()]);
    await until(() => (netnsNames().some((x) => x.includes(`-w${tag}`)) ? undefined : true), 'no namespaces left');
    for (const h of [h1, h2]) {
      const ns = `/run/netns/${h.netns}`;
      const links = await run('nsenter', [`--net=${ns}`, '--', 'ip', '-o', 'link', 'show']);
      assert.doesNotMatch(
        links.stdout,
        /shoal_gwbridge|vxlan|gw[0-9a-f]{11}|vo[0-9a-f]{11}|shoal_ing/,
        `links left on ${h.name}`,
      );
      const tables = await run('nsenter', [`--net=${ns}`, '--', 'nft', 'list', 'tables']);
      assert.doesNotMatch(tables.stdout, /shoal_/, `nft tables left on ${h.name}`);
    }
    // the helper let the removed sandboxes' namespaces go, and it ends with the agent
    assert.deepEqual(socketsBeyondStdio(helper1), [], 'the nft helper holds no namespace of a removed sandbox');
    await n1.stop();
    assert.ok(!isProcessAlive(helper1), 'the nft helper ended with the agent');
  },
);
