/**
 * `npm run bench:network`: the node data plane's figures, on real kernel objects in namespaces
 * this benchmark makes (two "hosts" whose veths meet on a bridge, as a lab's hosts and the Swarm
 * yardstick's do, underlay 198.18.253.0/24; a "container" on each; an overlay from a
 * 198.19.128.0/17 pool), removed at the end, also on failure.
 *
 * - overlay_tcp_ratio: iperf3 bulk TCP container -> container over VXLAN, divided by host -> host
 *   over the underlay: the median of per-round ratios, each round an underlay run and an overlay
 *   run back to back (their order alternating from round to round), so that both runs of a ratio
 *   see the same load; iperf3's client and server pinned to fixed CPUs, the same for both paths
 *   (BENCH_IPERF_PIN=0: not pinned). Per-round figures and the load on stderr;
 * - attach_ms, peer_add_ms: an overlay attachment, and programming one peer (FDB + neighbour);
 * - vip_update_ms: replacing a container's VIP table (the step between a task change and new
 *   connections following it);
 * - dns_p50_ms, dns_p99_ms: the embedded DNS server answering A queries on loopback, asked by
 *   another process, on its own thread as the agent runs it (the process's priority), while this
 *   thread's loop is kept busy as a loaded agent's is (BENCH_DNS_BUSY_MS slices, 20);
 *   dns_main_loop_p50_ms/p99_ms: the same with the server on that busy loop (where it ran
 *   before), side by side. Two figures of the thread's opt-in `realtime` mode, which the agent
 *   does not use (an ordinary client, as a container is, did worse with it):
 *   dns_realtime_thread_p99_ms (the thread real-time), and dns_rt_client_p99_ms /
 *   dns_rt_client_default_priority_p99_ms (the client real-time too, with the thread real-time or
 *   not, so that what is left is the server's own delay).
 *
 * Ends with one JSON line of named figures. Needs root and iperf3.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { run } from '@shoal/common';
import { NetworkAllocator } from '../allocator.js';
import { encodeQuery, RR_TYPE } from '../dns/dns-message.js';
import { DnsTable } from '../dns/dns-table.js';
import { EmbeddedDnsServer } from '../dns/dns-server.js';
import { ThreadedDnsServer } from '../dns/dns-thread.js';
import { OverlayDataPlane } from '../overlay.js';
import { VipBalancer } from '../vip-balancer.js';
import { VXLAN_ID_OPTION } from '../vni.js';

const SECONDS = Number(process.env['BENCH_IPERF_SECONDS'] ?? 2);
const ROUNDS = Number(process.env['BENCH_IPERF_ROUNDS'] ?? 8);
/**
 * CPUs of iperf3's client and server (the same for the underlay and the overlay run): the sender's
 * CPU also carries the whole path's softirq work (veths deliver on the CPU that sends), the
 * receiver's the copy to user space. Unpinned, the scheduler sometimes puts both on one CPU and a
 * run halves. Off with BENCH_IPERF_PIN=0 or on one CPU.
 */
const PIN: [string, string] | undefined =
  process.env['BENCH_IPERF_PIN'] !== '0' && availableParallelism() >= 2 ? ['0', '1'] : undefined;
/**
 * BENCH_IPERF_RT=1: iperf3 at real-time priority (`chrt -f 50`, both paths alike), so that other
 * load on a shared machine does not take turns with it (steadier rounds; it takes both CPUs from
 * everything else for the length of each run, so not the default).
 */
const RT = process.env['BENCH_IPERF_RT'] === '1';
const DNS_QUERIES = Number(process.env['BENCH_DNS_QUERIES'] ?? 5000);
const DNS_BUSY_MS = Number(process.env['BENCH_DNS_BUSY_MS'] ?? 20);
const tag = randomBytes(3).toString('hex');
const made: string[] = [];
const round = (x: number, d = 3): number => Number(x.toFixed(d));

/** The median (the mean of the middle two for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function netns(name: string): Promise<string> {
  const full = `shoal-nwb-${tag}-${name}`;
  await run('ip', ['netns', 'add', full]);
  made.push(full);
  await run('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
  return full;
}

function inNs(ns: string, cmd: string[], cpu?: string): string[] {
  const pin = cpu === undefined ? [] : ['taskset', '-c', cpu];
  return ['nsenter', `--net=/run/netns/${ns}`, '--', ...pin, ...(RT ? ['chrt', '-f', '50'] : []), ...cmd];
}

function startIperfServer(ns: string): Promise<ChildProcess> {
  // --forceflush: its "Server listening" line arrives at once through the pipe.
  const [file = 'nsenter', ...args] = inNs(ns, ['iperf3', '-s', '-1', '-p', '5201', '--forceflush'], PIN?.[1]);
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`iperf3 server exited before listening (${code})`)));
    child.stdout.once('data', () => resolve(child));
  });
}

/** Bytes per second received in one iperf3 run from `fromNs` to `addr`. */
async function iperf(serverNs: string, fromNs: string, addr: string): Promise<number> {
  const server = await startIperfServer(serverNs);
  try {
    const [file = 'nsenter', ...args] = inNs(
      fromNs,
      ['iperf3', '-c', addr, '-p', '5201', '-t', String(SECONDS), '-O', '1', '-J'],
      PIN?.[0],
    );
    const r = await run(file, args);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 8;
  } finally {
    if (server.exitCode === null) {
      // -1: it exits by itself after the test; killed only when it has not within a second
      const exited = new Promise((resolve) => server.once('exit', resolve));
      const timer = setTimeout(() => server.kill(), 1000);
      await exited;
      clearTimeout(timer);
    }
  }
}

/** The DNS client: another process, asking `n` A queries one after the other; prints the latencies (ms). */
const DNS_CLIENT = `
const { createSocket } = require('node:dgram');
const { performance } = require('node:perf_hooks');
const [port, n] = [Number(process.env.PORT), Number(process.env.N)];
const s = createSocket('udp4');
const out = [];
let t0 = 0;
const ask = (i) => {
  const q = Buffer.from(process.env['Q' + (i % 1000)], 'hex');
  t0 = performance.now();
  s.send(q, port, '127.0.0.1');
};
s.on('message', () => {
  out.push(performance.now() - t0);
  if (out.length === n) {
    s.close();
    console.log(JSON.stringify(out));
  } else ask(out.length);
});
ask(0);
`;

/**
 * Keeps this thread's event loop as busy as a loaded agent's: synchronous work in slices of
 * `busyMs`, yielding between them, until `until` settles.
 */
async function keepBusy(until: Promise<unknown>, busyMs: number): Promise<void> {
  let done = false;
  const stop = (): void => void (done = true);
  until.then(stop, stop); // the caller awaits `until` itself
  while (!done) {
    const end = performance.now() + busyMs;
    while (performance.now() < end) Math.sqrt(end);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Latencies of `n` A queries (1000 names) asked by another process, while this thread's loop is
 * busy (slices of `busyMs`): the server on its own thread, as the agent runs it, or (`'loop'`)
 * on this thread's loop, as it ran before.
 */
async function dnsLatencies(
  n: number,
  where: 'thread' | 'loop',
  busyMs: number,
  o: { realtime?: boolean; realtimeClient?: boolean } = {},
): Promise<number[]> {
  const records = Array.from({ length: 1000 }, (_, i) => ({
    name: `svc${i}`,
    address: `198.19.${128 + (i >> 8)}.${i & 255}`,
  }));
  let port: number;
  let close: () => Promise<void>;
  if (where === 'thread') {
    const server = new ThreadedDnsServer({ realtime: o.realtime ?? false });
    port = (await server.listen()).port;
    if (o.realtime && !server.realtimeSet) throw new Error('the DNS thread could not be made real-time');
    server.setNetwork('n', records);
    server.setScope('127.0.0.1', ['n']);
    await server.settled();
    close = () => {
      // a thread found busy (a flood) is put back to normal priority: say so, the figure is then not real-time's
      if (o.realtime && !server.realtimeSet) console.log('  the DNS thread was busy and went back to normal priority');
      return server.close();
    };
  } else {
    const table = new DnsTable();
    for (const r of records) table.add(r.name, r.address, 'n');
    const server = new EmbeddedDnsServer({ table });
    port = (await server.listen()).port;
    close = () => server.close();
  }
  const queries: Record<string, string> = {};
  for (let i = 0; i < 1000; i++) queries[`Q${i}`] = encodeQuery(i, `svc${i}`, RR_TYPE.A).toString('hex');
  try {
    const [file, ...args] = [...(o.realtimeClient ? ['chrt', '--rr', '1'] : []), process.execPath, '-e', DNS_CLIENT];
    const client = run(file ?? process.execPath, args, {
      env: { ...process.env, ...queries, PORT: String(port), N: String(n) },
    });
    await keepBusy(client, busyMs);
    return JSON.parse((await client).stdout) as number[];
  } finally {
    await close();
  }
}

async function main(): Promise<Record<string, number>> {
  console.log('network bench: making two hosts and their containers');
  const ha = await netns('ha');
  const hb = await netns('hb');
  const ca = await netns('ca');
  const cb = await netns('cb');
  // the underlay as a lab's (and the Swarm yardstick's): each host's veth on one bridge
  const sw = await netns('sw');
  await run('ip', ['-n', sw, 'link', 'add', 'br-ul', 'type', 'bridge']);
  await run('ip', ['-n', sw, 'link', 'set', 'br-ul', 'up']);
  for (const [h, port] of [
    [ha, 'pa'],
    [hb, 'pb'],
  ] as const) {
    await run('ip', ['-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', h]);
    await run('ip', ['-n', sw, 'link', 'set', port, 'master', 'br-ul', 'up']);
  }
  const ua = '198.18.253.1';
  const ub = '198.18.253.2';
  await run('ip', ['-n', ha, 'addr', 'add', `${ua}/24`, 'dev', 'ul0']);
  await run('ip', ['-n', hb, 'addr', 'add', `${ub}/24`, 'dev', 'ul0']);
  for (const h of [ha, hb]) await run('ip', ['-n', h, 'link', 'set', 'ul0', 'up']);

  const alloc = new NetworkAllocator({ defaultAddrPool: ['198.19.128.0/17'] });
  const id = randomBytes(12).toString('hex');
  const n = alloc.allocateNetwork({ ID: id, Spec: { Name: `bench-${tag}` } });
  const spec = {
    id,
    vni: Number(n.DriverState?.Options?.[VXLAN_ID_OPTION]),
    subnet: n.IPAMOptions?.Configs?.[0]?.Subnet ?? '',
    gateway: n.IPAMOptions?.Configs?.[0]?.Gateway ?? '',
  };
  const dpa = new OverlayDataPlane({ hostTag: `b${tag}a`, vtepAddress: ua, hostNetns: `/run/netns/${ha}` });
  const dpb = new OverlayDataPlane({ hostTag: `b${tag}b`, vtepAddress: ub, hostNetns: `/run/netns/${hb}` });
  made.push(dpa.namespaceName(id), dpb.namespaceName(id));
  const addrA = alloc.allocateAddress(id, 'task:a');
  const addrB = alloc.allocateAddress(id, 'task:b');
  const t0 = performance.now();
  await dpa.attach(spec, { endpointId: 'a', containerNetns: ca, address: addrA });
  const firstAttachMs = performance.now() - t0;
  const t1 = performance.now();
  await dpb.attach(spec, { endpointId: 'b', containerNetns: cb, address: addrB });
  const attachMs = (firstAttachMs + performance.now() - t1) / 2;
  await dpa.addPeer(id, { vtep: ub, address: addrB });
  await dpb.addPeer(id, { vtep: ua, address: addrA });

  console.log('network bench: programming peers');
  const peerMs: number[] = [];
  for (let i = 0; i < 50; i++) {
    const addr = alloc.allocateAddress(id, `task:p${i}`);
    const s = performance.now();
    await dpa.addPeer(id, { vtep: ub, address: addr });
    peerMs.push(performance.now() - s);
  }

  console.log('network bench: VIP table updates');
  const lb = new VipBalancer(ca);
  const vip = alloc.allocateAddress(id, 'vip:s');
  const backends = [addrB, alloc.allocateAddress(id, 'task:x'), alloc.allocateAddress(id, 'task:y')];
  const vipMs: number[] = [];
  for (let i = 0; i < 30; i++) {
    const s = performance.now();
    await lb.apply([{ vip, backends: i % 2 ? backends : backends.slice(0, 2) }]);
    vipMs.push(performance.now() - s);
  }

  const pin = (PIN ? `client on CPU ${PIN[0]}, server on CPU ${PIN[1]}` : 'not pinned') + (RT ? ', chrt -f 50' : '');
  console.log(`network bench: iperf3, ${ROUNDS} rounds of an underlay and an overlay run of ${SECONDS} s (${pin})`);
  const load = (): string =>
    loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
  // the machine's default, which every namespace starts with; it moves the figure (see docs/worker.md)
  const cc = (await run('sysctl', ['-n', 'net.ipv4.tcp_congestion_control'], { check: false })).stdout.trim();
  process.stderr.write(`  load before: ${load()}; TCP congestion control: ${cc || '?'}\n`);
  const under: number[] = [];
  const over: number[] = [];
  const ratios: number[] = [];
  const mb = (x: number): number => round(x / 1e6, 1);
  const overAddr = addrB.split('/')[0] ?? '';
  for (let i = 0; i < ROUNDS; i++) {
    // the order alternates, so neither path always runs first (a drift in load evens out)
    let u: number;
    let o: number;
    if (i % 2 === 0) {
      u = await iperf(hb, ha, ub);
      o = await iperf(cb, ca, overAddr);
    } else {
      o = await iperf(cb, ca, overAddr);
      u = await iperf(hb, ha, ub);
    }
    under.push(u);
    over.push(o);
    ratios.push(o / u);
    process.stderr.write(
      `  round ${i + 1}: underlay ${mb(u)} MB/s, overlay ${mb(o)} MB/s, ratio ${round(o / u)} (load ${load()})\n`,
    );
  }
  const sorted = ratios
    .map((r) => round(r, 2))
    .sort((a, b) => a - b)
    .join(' ');
  const ofMedians = round(median(over) / median(under));
  process.stderr.write(`  ratios ${sorted}: median ${round(median(ratios))} (median / median: ${ofMedians})\n`);

  console.log(`network bench: embedded DNS on loopback, this loop busy in slices of ${DNS_BUSY_MS} ms`);
  const dnsLoop = await dnsLatencies(DNS_QUERIES, 'loop', DNS_BUSY_MS);
  const dns = await dnsLatencies(DNS_QUERIES, 'thread', DNS_BUSY_MS);
  const dnsRealtime = await dnsLatencies(DNS_QUERIES, 'thread', DNS_BUSY_MS, { realtime: true });
  const rtDefault = await dnsLatencies(DNS_QUERIES, 'thread', DNS_BUSY_MS, { realtimeClient: true });
  const rt = await dnsLatencies(DNS_QUERIES, 'thread', DNS_BUSY_MS, { realtime: true, realtimeClient: true });
  return {
    overlay_tcp_ratio: round(median(ratios)),
    overlay_mbytes_per_s: round(median(over) / 1e6, 1),
    underlay_mbytes_per_s: round(median(under) / 1e6, 1),
    attach_ms: round(attachMs, 1),
    peer_add_ms: round(median(peerMs), 2),
    vip_update_ms: round(median(vipMs), 2),
    dns_p50_ms: round(quantile(dns, 0.5)),
    dns_p99_ms: round(quantile(dns, 0.99)),
    dns_main_loop_p50_ms: round(quantile(dnsLoop, 0.5)),
    dns_main_loop_p99_ms: round(quantile(dnsLoop, 0.99)),
    dns_realtime_thread_p99_ms: round(quantile(dnsRealtime, 0.99)),
    dns_rt_client_p99_ms: round(quantile(rt, 0.99)),
    dns_rt_client_default_priority_p99_ms: round(quantile(rtDefault, 0.99)),
  };
}

async function cleanup(): Promise<void> {
  for (const ns of made.reverse()) await run('ip', ['netns', 'del', ns], { check: false });
}

for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });

try {
  const figures = await main();
  await cleanup();
  console.log(JSON.stringify(figures));
} catch (err) {
  await cleanup();
  throw err;
}
