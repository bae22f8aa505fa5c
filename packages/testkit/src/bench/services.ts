/**
 * `npm run bench:services` (= `npm run bench -- services [flags]`): Shoal's services next to
 * Docker Swarm 20.10 on the cluster benchmark's layout (3 managers, 2 workers, each host in its
 * own network namespace; cluster-driver.ts and its two drivers), each side pulling the same
 * busybox test image (the same bytes: one build, pushed to each side's registry). Swarm runs
 * first and is taken down, then Shoal; then the in-process scheduler benchmark
 * (`npm run bench -- scheduler`) runs as a child process. Progress on stderr; stdout gets one JSON
 * line, each figure with Swarm's figure and the ratio (Shoal / Swarm) beside it.
 *
 * Flags: --replicas N (50; the scale goes to 2N), --heartbeat-ms MS (Dispatcher.HeartbeatPeriod
 * set on both clusters; default: left at both systems' default of 5 s), --settle-seconds S (before
 * the memory reading, 3), --no-swarm, --no-shoal, --no-scheduler, --keep-logs DIR (each shoald's log copied
 * there before the lab goes down), --no-faults (deploy and scale only: no worker-loss or
 * link-cut phase, their figures null), --lab NAME (benchsv).
 * Everything made is removed at the end, also on a failure, SIGINT or SIGTERM.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ClusterDriver } from './cluster-driver.js';
import { measureServices, type ServiceSideFigures } from './measure-services.js';
import { ShoalDriver } from './shoal-driver.js';
import { SwarmDriver } from './swarm-driver.js';
import { ratio, round } from './stats.js';

const GOALS = { deploy50_ms: 2700, worker_loss_ms: 6000, link_cut_ms: 8000, scheduler_100k_on_1k_ms: 1000 };
const DEFAULT_HEARTBEAT_MS = 5000;

function usage(msg: string): never {
  process.stderr.write(`bench services: ${msg}\n`);
  process.exit(2);
}

function int(name: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) usage(`--${name} ${v}: must be an integer from ${min} to ${max}`);
  return n;
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      replicas: { type: 'string', default: '50' },
      'heartbeat-ms': { type: 'string' },
      'settle-seconds': { type: 'string', default: '3' },
      'no-swarm': { type: 'boolean', default: false },
      'no-shoal': { type: 'boolean', default: false },
      'no-scheduler': { type: 'boolean', default: false },
      'no-faults': { type: 'boolean', default: false },
      'keep-logs': { type: 'string' },
      lab: { type: 'string', default: 'benchsv' },
    },
    strict: true,
  });
}
try {
  args = parse();
} catch (err) {
  usage((err as Error).message);
}
const v = args.values;
const replicas = int('replicas', v.replicas, 1, 200);
const heartbeatMs = v['heartbeat-ms'] === undefined ? undefined : int('heartbeat-ms', v['heartbeat-ms'], 100, 60_000);
const progress = (msg: string): void =>
  void process.stderr.write(`[bench services ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const opts = {
  replicas,
  heartbeatMs,
  settleMs: int('settle-seconds', v['settle-seconds'], 0, 600) * 1000,
  faults: !v['no-faults'],
  progress,
};
if (v['no-swarm'] && v['no-shoal'] && v['no-scheduler']) usage('nothing left to measure');
if (!(v['no-swarm'] && v['no-shoal']) && process.getuid?.() !== 0)
  usage('must run as root (namespaces, bridges, daemons)');

let current: ClusterDriver | undefined;
let stopping = false;
async function cleanUp(d: ClusterDriver): Promise<void> {
  const keep = v['keep-logs'];
  if (keep && d instanceof ShoalDriver) progress(`shoal: logs kept in ${await d.keepLogs(keep)}`);
  progress(`${d.system}: taking everything down`);
  const left = await d.down();
  if (left.length > 0) throw new Error(`${d.system}: left behind: ${left.join('; ')}`);
  progress(`${d.system}: down, nothing left`);
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    progress(`${sig}: stopping`);
    const d = current;
    void (d ? cleanUp(d) : Promise.resolve()).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

/** After SIGINT/SIGTERM the handler cleans up and exits: the measuring code only waits for that. */
const untilExit = (): Promise<never> => new Promise<never>(() => undefined);

async function side(d: ClusterDriver): Promise<ServiceSideFigures> {
  if (stopping) return untilExit();
  current = d;
  let figures: ServiceSideFigures;
  try {
    figures = await measureServices(d, opts);
  } catch (err) {
    if (stopping) return untilExit(); // failures caused by the clean-up under way
    await cleanUp(d).catch((e: unknown) => progress(`${d.system}: ${(e as Error).message}`));
    throw err;
  }
  if (stopping) return untilExit();
  await cleanUp(d);
  current = undefined;
  return figures;
}

/** `npm run bench -- scheduler` in a child process: its JSON line. */
async function scheduler(): Promise<Record<string, number>> {
  const file = fileURLToPath(new URL('../../../manager/dist/bench/scheduler.js', import.meta.url));
  progress(`scheduler: ${file}`);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const line = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`scheduler benchmark failed (exit ${code}): ${out.trim()}`);
  return JSON.parse(line) as Record<string, number>;
}

const swarm = v['no-swarm'] ? undefined : await side(new SwarmDriver(3, 2, progress, true));
const shoal = v['no-shoal'] ? undefined : await side(new ShoalDriver(v.lab, 3, 2, true));
const sched = v['no-scheduler'] || stopping ? undefined : await scheduler();

const fig = (s: ServiceSideFigures | undefined, k: keyof ServiceSideFigures, d = 0): number | null =>
  s && typeof s[k] === 'number' ? round(s[k], d) : null;
const n = replicas;
const out: Record<string, unknown> = {
  bench: 'services',
  managers: 3,
  workers: 2,
  replicas: n,
  heartbeat_period_ms: heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
};
for (const [name, k, d] of [
  [`deploy${n}_ms`, 'deploy_ms', 0],
  [`scale_${n}_${2 * n}_ms`, 'scale_ms', 0],
  ['worker_loss_ms', 'worker_loss_ms', 0],
  ['link_cut_ms', 'link_cut_ms', 0],
  ['manager_rss_mb', 'manager_rss_mb', 1],
  ['worker_down_ms', 'worker_down_ms', 0],
  ['link_down_ms', 'link_down_ms', 0],
] as const) {
  out[name] = fig(shoal, k, d);
  out[`swarm_${name}`] = fig(swarm, k, d);
  out[`${name.replace(/_(ms|mb)$/, '')}_ratio`] = ratio(fig(shoal, k, d), fig(swarm, k, d));
}
const s100k = sched?.['scheduler_100k_on_1k_ms'];
out['scheduler_100k_on_1k_ms'] = s100k ?? null;
// Swarm's scheduler cannot be run in-process here: no figure beside it.
out['swarm_scheduler_100k_on_1k_ms'] = null;
out['scheduler_100k_on_1k_ratio'] = null;
out['goals'] = GOALS;
if (shoal)
  out['goals_met'] = {
    ...(n === 50 ? { deploy50_ms: shoal.deploy_ms < GOALS.deploy50_ms } : {}),
    ...(v['no-faults']
      ? {}
      : {
          worker_loss_ms: shoal.worker_loss_ms < GOALS.worker_loss_ms,
          link_cut_ms: shoal.link_cut_ms < GOALS.link_cut_ms,
        }),
    ...(s100k === undefined ? {} : { scheduler_100k_on_1k_ms: s100k < GOALS.scheduler_100k_on_1k_ms }),
  };
const detail = (s: ServiceSideFigures | undefined) =>
  s && {
    image: s.service_image,
    image_digest: s.image_digest,
    spread: s.spread,
    manager_rss: s.manager_rss_what,
  };
out['shoal'] = detail(shoal);
out['swarm'] = detail(swarm);
out['scheduler'] = sched;
process.stdout.write(JSON.stringify(out) + '\n');
