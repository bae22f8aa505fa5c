/**
 * `npm run bench:network`: the data plane's figures (packages/network's benchmark, run as a child
 * process) plus one that needs the whole system:
 *
 * - connect_after_running_ms: on a lab of 2 with real shoalds, a new service's task starts on h2
 *   while a prober in the sandbox of a client task on h1 (its network namespace, so its
 *   127.0.0.11 is the embedded DNS server) asks for the service's name every 2 ms and opens a
 *   TCP connection to each answer, never waiting for an earlier query or connection; the figure is the time from the task's RUNNING (its status timestamp,
 *   written by h2's worker) to the first connection that succeeds (median of the samples; same
 *   machine, same clock). The service is in VIP mode (the default).
 * - connect_after_running_dnsrr_ms: the same with `--endpoint-mode dnsrr` (the mode Swarm was
 *   measured in: its VIPs need IPVS).
 * - connect_step_<step>_ms (VIP mode, medians, ms after RUNNING): `committed` (the leader on h1 saw
 *   RUNNING committed), `received` (h1's agent got the network state saying so), `sync` (its
 *   network sync started), `vip` (the client's VIP table applied), from the daemons' `task start
 *   trace` and `network sync trace` log lines; each sample's steps go to stderr.
 *
 * `BENCH_CONNECT_SAMPLES` (5) sets the samples; `--no-dataplane` skips the data-plane part.
 * Progress on stderr; one JSON line on stdout. Everything made is removed at the end, also on a
 * failure, SIGINT or SIGTERM. Needs root.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { ControlClient, unary } from '@shoal/api';
import { run } from '@shoal/common';
import { TestImages } from '../images/build-test-images.js';
import { pushTestImages } from '../images/push-test-images.js';
import { labDown } from '../lab/lab-down.js';
import { hostSocketUrl, labCluster, shoaldPaths } from '../lab/lab-shoald.js';
import { readLabState } from '../lab/lab-state.js';
import { labUp } from '../lab/lab-up.js';
import { round } from './stats.js';

const SAMPLES = Number(process.env['BENCH_CONNECT_SAMPLES'] ?? 5);
const cliMain = fileURLToPath(new URL('../../../cli/dist/main.js', import.meta.url));
const dataPlane = fileURLToPath(new URL('../../../network/dist/bench/network.js', import.meta.url));
const lab = `bnc${randomBytes(2).toString('hex')}`;
const log = (msg: string): void => void process.stderr.write(`bench network: ${msg}\n`);

/**
 * The prober, in the client task's sandbox: every 2 ms it asks 127.0.0.11 for the name (raw UDP,
 * a new id each time, never waiting on an unanswered one) and, for each answer, opens a TCP
 * connection to the address (at most 16 at once, none waited for before the next), so neither a
 * lost query nor a connection that hangs holds it up. Prints the time of the first connection
 * that succeeds.
 */
const PROBER = `
const dgram = require('node:dgram');
const net = require('node:net');
const name = process.env.NAME;
const s = dgram.createSocket('udp4');
let id = 0;
let connecting = 0;
const query = () => {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(++id & 0xffff, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
};
const win = () => { console.log(Date.now()); process.exit(0); };
s.on('message', (m) => {
  if (m.readUInt16BE(6) === 0 || m.length < 4 || connecting >= 16) return;
  const ip = [...m.subarray(m.length - 4)].join('.');
  connecting++;
  const c = net.connect({ host: ip, port: 80 }, win);
  const fail = () => { c.destroy(); connecting--; };
  c.setTimeout(1000, fail);
  c.on('error', fail);
});
s.bind(0, () => setInterval(() => s.send(query(), 53, '127.0.0.11'), 2));
setTimeout(() => { console.log('gave up'); process.exit(1); }, 120000);
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function cli(host: string, args: string[]): Promise<string> {
  const r = await run(process.execPath, [cliMain, 'lab', 'exec', lab, host, '--', process.execPath, cliMain, ...args], {
    check: false,
  });
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function dataPlaneFigures(): Promise<Record<string, unknown>> {
  if (process.argv.includes('--no-dataplane')) return {};
  const child = spawn(process.execPath, [dataPlane], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the data-plane benchmark failed (${code})`);
  const last = out.trim().split('\n').at(-1) ?? '{}';
  return JSON.parse(last) as Record<string, unknown>;
}

async function runningTask(socket: string, service: string): Promise<{ id: string; at: number } | undefined> {
  const c = new ControlClient(socket, credentials.createInsecure());
  try {
    const tasks = (await unary(c.listTasks.bind(c), { Filters: {} }, { deadline: Date.now() + 10_000 })).Tasks ?? [];
    const t = tasks.find((x) => x.ServiceName === service && x.Status?.State === 'running');
    return t?.Status?.Timestamp ? { id: t.ID ?? '', at: Date.parse(t.Status.Timestamp) } : undefined;
  } finally {
    c.close();
  }
}

async function runningTimestamp(socket: string, service: string): Promise<number | undefined> {
  return (await runningTask(socket, service))?.at;
}

/** The JSON lines of a shoald log with this message. */
function logLines(path: string, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o['msg'] === msg) out.push(o);
    } catch (err) {
      if (err instanceof SyntaxError) continue; // a line being written
      throw err;
    }
  }
  return out;
}

/**
 * Where one sample's time went, in ms from the task's RUNNING timestamp (h2's worker): `committed`
 * (the leader, on h1, saw RUNNING committed), `received` (h1's agent got the network state that
 * says so), `dns` / `vip` (h1's sync had the DNS thread updated / the client's VIP table applied),
 * `reached` (the prober's first connection). From the daemons' `task start trace` and
 * `network sync trace` lines.
 */
type Step = 'committed' | 'received' | 'sync' | 'dns' | 'vip' | 'reached';
const STEPS: readonly Step[] = ['committed', 'received', 'sync', 'dns', 'vip', 'reached'];
type Mode = 'vip' | 'dnsrr';

function breakdown(
  logH1: string,
  taskId: string,
  running: number,
  reached: number,
  mode: Mode,
): Partial<Record<Step, number>> {
  const out: Partial<Record<Step, number>> = { reached: reached - running };
  const m = logLines(logH1, 'task start trace').find((o) => o['task'] === taskId);
  const steps = m?.['steps'] as Record<string, number> | undefined;
  const committedAt = m && steps?.['running'] !== undefined ? Number(m['at']) + steps['running'] : undefined;
  if (committedAt !== undefined) out.committed = committedAt - running;
  // the first sync on h1 after the commit (VIP mode: that applied a VIP table, the client's)
  const sync = logLines(logH1, 'network sync trace').find(
    (o) => Number(o['received']) >= (committedAt ?? running) && (mode === 'dnsrr' || Number(o['vipTables']) > 0),
  );
  if (sync) {
    out.received = Number(sync['received']) - running;
    out.sync = Number(sync['start']) - running;
    if (sync['dns'] !== undefined) out.dns = Number(sync['dns']) - running;
    if (sync['vip'] !== undefined && mode === 'vip') out.vip = Number(sync['vip']) - running;
  }
  return out;
}

interface Samples {
  samples: number[];
  steps: Partial<Record<Step, number>>[];
}

async function connectAfterRunning(): Promise<Record<Mode, Samples>> {
  log(`lab ${lab} of 2`);
  await labUp({ name: lab, hosts: 2 });
  await labCluster({ name: lab, managers: 1 });
  const state = await readLabState(lab);
  if (!state?.registry || !state.hosts[0]) throw new Error('the lab has no registry');
  const socket = hostSocketUrl(state.hosts[0]);
  const image = (await pushTestImages(state.registry.url, { only: [TestImages.busybox] }))[0]?.remoteRef ?? '';
  await cli('h1', ['network', 'create', '-d', 'overlay', 'benchnet']);
  const on = (h: string): string[] => ['--constraint', `node.hostname==${h}`];
  await cli('h1', [
    'service',
    'create',
    '-d',
    '--name',
    'client',
    '--network',
    'benchnet',
    ...on('h1'),
    image,
    'sleep',
    '3600',
  ]);
  let clientId = '';
  for (let i = 0; i < 600 && !clientId; i++) {
    const out = await cli('h1', ['service', 'ps', '-q', '--no-trunc', '--filter', 'desired-state=running', 'client']);
    const running = await runningTimestamp(socket, 'client');
    if (running !== undefined) clientId = out.trim().split('\n')[0] ?? '';
    else await new Promise((r) => setTimeout(r, 200));
  }
  const suffix = `-${clientId.slice(0, 16).toLowerCase()}`;
  const sandbox = readdirSync('/run/netns').find((n) => n.startsWith('shoal-t-') && n.endsWith(suffix));
  if (!sandbox) throw new Error(`no sandbox of the client task ${clientId}`);
  const httpd = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];
  const logH1 = shoaldPaths(state.hosts[0]).log;
  const result = {} as Record<Mode, Samples>;
  for (const mode of ['vip', 'dnsrr'] as const) result[mode] = await sampleMode(mode);
  return result;

  async function sampleMode(mode: Mode): Promise<Samples> {
    const samples: number[] = [];
    const steps: Partial<Record<Step, number>>[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const name = `${mode === 'vip' ? 'tgt' : 'rr'}${i}`;
      const prober = spawn('nsenter', [`--net=/run/netns/${sandbox}`, '--', process.execPath, '-e', PROBER], {
        env: { ...process.env, NAME: name },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      prober.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const done = new Promise<void>((resolve) => prober.once('exit', () => resolve()));
      const endpoint = ['--endpoint-mode', mode];
      await cli('h1', [
        'service',
        'create',
        '-d',
        '--name',
        name,
        '--network',
        'benchnet',
        ...endpoint,
        ...on('h2'),
        image,
        ...httpd,
      ]);
      await done;
      const reached = Number(out.trim());
      const task = await runningTask(socket, name);
      if (!Number.isFinite(reached) || task === undefined) throw new Error(`sample ${i}: ${out.trim()}`);
      const running = task.at;
      samples.push(reached - running);
      const b = breakdown(logH1, task.id, running, reached, mode);
      steps.push(b);
      log(`${mode} sample ${i}: ${reached - running} ms (${STEPS.map((k) => `${k} ${b[k] ?? '?'}`).join(', ')})`);
      await cli('h1', ['service', 'rm', name]);
    }
    return { samples, steps };
  }
}

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await labDown(lab).catch((err: unknown) => log(`lab down: ${String(err)}`));
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void cleanup().then(() => process.exit(130));
  });

try {
  const figures = await dataPlaneFigures();
  const { vip, dnsrr } = await connectAfterRunning();
  const perStep = Object.fromEntries(
    STEPS.filter((k) => k !== 'reached' && k !== 'dns').map((k) => {
      const xs = vip.steps.map((s) => s[k]).filter((x): x is number => x !== undefined);
      return [`connect_step_${k}_ms`, xs.length > 0 ? round(median(xs)) : null];
    }),
  );
  const { samples } = vip;
  console.log(
    JSON.stringify({
      ...figures,
      connect_after_running_ms: round(median(samples)),
      connect_after_running_max_ms: round(Math.max(...samples)),
      ...perStep,
      connect_after_running_dnsrr_ms: round(median(dnsrr.samples)),
      connect_after_running_dnsrr_max_ms: round(Math.max(...dnsrr.samples)),
    }),
  );
} finally {
  await cleanup();
}
