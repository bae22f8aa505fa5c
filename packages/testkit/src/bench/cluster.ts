/**
 * `npm run bench:cluster` (= `npm run bench -- cluster [flags]`): Shoal's control plane next to
 * Docker Swarm 20.10 on the same layout, 3 managers and 2 workers, each host in its own network
 * namespace. Swarm runs first (swarm-hosts.ts), is taken down, then Shoal (a lab with shoald on
 * every host), so the two never share the machine's CPU or an address pool. Both sides are
 * measured by the same routine (measure-cluster.ts). Progress goes to stderr; stdout gets one
 * JSON line, each figure with Swarm's figure and the ratio (Shoal / Swarm) beside it.
 *
 * Flags: --rounds N (failovers, default 10), --no-swarm (Shoal only), --no-shoal (Swarm only),
 * --clients N (64), --write-seconds S (10), --settle-seconds S (idle time before memory, 10),
 * --probe-ms MS (failover probe step, 50), --managers M (3), --workers W (2), --lab NAME.
 * Everything made is removed at the end, also on a failure, SIGINT or SIGTERM.
 */
import { parseArgs } from 'node:util';
import type { ClusterDriver } from './cluster-driver.js';
import { measureCluster, type SideFigures } from './measure-cluster.js';
import { ShoalDriver } from './shoal-driver.js';
import { SwarmDriver } from './swarm-driver.js';
import { ratio, round } from './stats.js';

const GOALS = { leader_failover_ms: 1500, manager_rss_mb: 100, worker_rss_mb: 65 };

function usage(msg: string): never {
  process.stderr.write(`bench cluster: ${msg}\n`);
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
      rounds: { type: 'string', default: '10' },
      'no-swarm': { type: 'boolean', default: false },
      'no-shoal': { type: 'boolean', default: false },
      clients: { type: 'string', default: '64' },
      'write-seconds': { type: 'string', default: '10' },
      'settle-seconds': { type: 'string', default: '10' },
      'probe-ms': { type: 'string', default: '50' },
      managers: { type: 'string', default: '3' },
      workers: { type: 'string', default: '2' },
      lab: { type: 'string', default: 'benchcl' },
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
const rounds = int('rounds', v.rounds, 1, 100);
const clients = int('clients', v.clients, 1, 1024);
const managers = int('managers', v.managers, 3, 7);
const workers = int('workers', v.workers, 1, 9 - managers);
const opts = {
  rounds,
  clients,
  writeMs: int('write-seconds', v['write-seconds'], 1, 600) * 1000,
  settleMs: int('settle-seconds', v['settle-seconds'], 0, 600) * 1000,
  probeMs: int('probe-ms', v['probe-ms'], 10, 1000),
  progress: (msg: string) => process.stderr.write(`[bench cluster ${new Date().toISOString().slice(11, 19)}] ${msg}\n`),
};
if (v['no-swarm'] && v['no-shoal']) usage('--no-swarm and --no-shoal leave nothing to measure');
if (process.getuid?.() !== 0) usage('must run as root (namespaces, bridges, daemons)');

let current: ClusterDriver | undefined;
let stopping = false;
async function cleanUp(d: ClusterDriver): Promise<void> {
  opts.progress(`${d.system}: taking everything down`);
  const left = await d.down();
  if (left.length > 0) throw new Error(`${d.system}: left behind: ${left.join('; ')}`);
  opts.progress(`${d.system}: down, nothing left`);
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    opts.progress(`${sig}: stopping`);
    const d = current;
    void (d ? cleanUp(d) : Promise.resolve()).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

/** After SIGINT/SIGTERM the handler cleans up and exits: the measuring code only waits for that. */
const untilExit = (): Promise<never> => new Promise<never>(() => undefined);

async function side(d: ClusterDriver): Promise<SideFigures> {
  if (stopping) return untilExit();
  current = d;
  let figures: SideFigures;
  try {
    figures = await measureCluster(d, opts);
  } catch (err) {
    if (stopping) return untilExit(); // failures caused by the clean-up under way
    await cleanUp(d).catch((e: unknown) => opts.progress(`${d.system}: ${(e as Error).message}`));
    throw err;
  }
  if (stopping) return untilExit();
  await cleanUp(d);
  current = undefined;
  return figures;
}

const swarm = v['no-swarm'] ? undefined : await side(new SwarmDriver(managers, workers, opts.progress));
const shoal = v['no-shoal'] ? undefined : await side(new ShoalDriver(v.lab, managers, workers));

/** Decimals of each figure. */
const pick = {
  join_ms: 0,
  leader_failover_ms: 0,
  manager_rss_mb: 1,
  worker_rss_mb: 1,
  control_writes_per_s: 0,
  manager_pss_mb: 1,
  worker_pss_mb: 1,
};
const fig = (s: SideFigures | undefined, k: keyof typeof pick): number | null => (s ? round(s[k], pick[k]) : null);
const out: Record<string, unknown> = { bench: 'cluster', managers, workers, rounds, clients };
for (const [k, name] of [
  ['join_ms', 'join'],
  ['leader_failover_ms', 'leader_failover'],
  ['manager_rss_mb', 'manager_rss'],
  ['worker_rss_mb', 'worker_rss'],
  ['control_writes_per_s', 'control_writes'],
  ['manager_pss_mb', 'manager_pss'],
  ['worker_pss_mb', 'worker_pss'],
] as const) {
  out[k] = fig(shoal, k);
  out[`swarm_${k}`] = fig(swarm, k);
  out[`${name}_ratio`] = ratio(fig(shoal, k), fig(swarm, k));
}
if (shoal) {
  out['goals'] = GOALS;
  out['goals_met'] = {
    leader_failover_ms: shoal.leader_failover_ms < GOALS.leader_failover_ms,
    manager_rss_mb: shoal.manager_rss_mb <= GOALS.manager_rss_mb,
    worker_rss_mb: shoal.worker_rss_mb <= GOALS.worker_rss_mb,
  };
}
const detail = (s: SideFigures | undefined) =>
  s && {
    joins_ms: s.joins_ms,
    failovers_ms: s.failovers_ms,
    rss_mb: s.rss,
    write_errors: s.write_errors,
  };
out['shoal'] = detail(shoal);
out['swarm'] = detail(swarm);
process.stdout.write(JSON.stringify(out) + '\n');
