/**
 * `npm run bench:stack` (= `npm run bench -- stack [flags]`): `stack deploy` and `stack rm` of
 * examples/shop10 (ten services, two replicas each, on one overlay network, the gateway
 * published on port 8000) with Shoal's CLI next to Docker Swarm 20.10 with Debian docker.io's CLI,
 * on the cluster benchmark's layout (3 managers, 2 workers, each host in its own network
 * namespace; cluster-driver.ts and its two drivers; measure-stack.ts says what is timed). Swarm
 * runs first and is taken down, then Shoal; then the compose benchmark (`npm run bench --
 * compose`: load, validate and convert a 200-service file in-process) runs as a child process.
 * Progress on stderr; stdout gets one JSON line, each cluster figure with Swarm's figure and the
 * ratio (Shoal / Swarm) beside it, and the load average at the start and the end.
 *
 * Flags: --file PATH (examples/shop10/docker-stack.yml), --stack NAME (shop10), --runs N (1: deploy
 * then rm, N times; figures are medians), --no-swarm, --no-shoal, --no-compose, --lab NAME (benchst),
 * --keep-logs DIR (each shoald's log copied there before the lab goes; `node scripts/start-trace.mjs
 * DIR` sums up the task start traces in them).
 * Everything made is removed at the end, also on a failure, SIGINT or SIGTERM.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LAB_OVERLAY_POOL } from '../lab/lab-names.js';
import type { ClusterDriver } from './cluster-driver.js';
import { measureStack, type StackSideFigures } from './measure-stack.js';
import { ShoalDriver } from './shoal-driver.js';
import { DOCKER_IO_CLI } from './stack-cli.js';
import { ratio, round } from './stats.js';
import { SwarmDriver } from './swarm-driver.js';

const GOALS = { stack_deploy_ratio: 0.2, stack_rm_ratio: 0.2, compose_load_ms: 100 };
const root = fileURLToPath(new URL('../../../../', import.meta.url));

function usage(msg: string): never {
  process.stderr.write(`bench stack: ${msg}\n`);
  process.exit(2);
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      file: { type: 'string', default: 'examples/shop10/docker-stack.yml' },
      stack: { type: 'string', default: 'shop10' },
      runs: { type: 'string', default: '1' },
      'no-swarm': { type: 'boolean', default: false },
      'no-shoal': { type: 'boolean', default: false },
      'no-compose': { type: 'boolean', default: false },
      lab: { type: 'string', default: 'benchst' },
      'keep-logs': { type: 'string' },
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
const runs = Number(v.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 20) usage(`--runs ${v.runs}: must be an integer from 1 to 20`);
const file = resolve(root, v.file);
if (!existsSync(file)) usage(`--file ${v.file}: ${file} does not exist`);
if (!/^[a-z0-9][a-z0-9_-]{0,29}$/.test(v.stack)) usage(`--stack ${v.stack}: use lower-case letters, digits, _ and -`);
if (v['no-swarm'] && v['no-shoal'] && v['no-compose']) usage('nothing left to measure');
if (!(v['no-swarm'] && v['no-shoal']) && process.getuid?.() !== 0)
  usage('must run as root (namespaces, bridges, daemons)');
if (!v['no-swarm'] && !existsSync(DOCKER_IO_CLI)) usage(`${DOCKER_IO_CLI} not found (Debian's docker.io)`);

const progress = (msg: string): void =>
  void process.stderr.write(`[bench stack ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const load = (): number[] => os.loadavg().map((x) => Number(x.toFixed(2)));
const loadStart = load();

let current: ClusterDriver | undefined;
let stopping = false;
async function cleanUp(d: ClusterDriver): Promise<void> {
  const keep = v['keep-logs'];
  if (keep && d instanceof ShoalDriver) progress(`${d.system}: logs kept in ${await d.keepLogs(keep)}`);
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

async function side(d: ClusterDriver): Promise<StackSideFigures> {
  if (stopping) return untilExit();
  current = d;
  let figures: StackSideFigures;
  try {
    figures = await measureStack(d, { file, stack: v.stack, runs, progress });
  } catch (err) {
    if (stopping) return untilExit(); // failures caused by the clean-up under way
    await cleanUp(d).catch((e: unknown) => progress(`${d.system}: ${(e as Error).message}`));
    throw err;
  }
  if (stopping) return untilExit();
  const keep = v['keep-logs'];
  if (keep && d instanceof ShoalDriver) progress(`shoal: logs kept in ${await d.keepLogs(keep)}`);
  await cleanUp(d);
  current = undefined;
  return figures;
}

/** `npm run bench -- compose` in a child process: its JSON line (its other output goes to stderr). */
async function compose(): Promise<Record<string, number>> {
  const js = fileURLToPath(new URL('../../../compose/dist/bench/compose.js', import.meta.url));
  progress(`compose: ${js}`);
  const child = spawn(process.execPath, [js], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', res);
  });
  const lines = out.trim().split('\n');
  const line = lines.pop() ?? '';
  for (const l of lines) progress(`compose: ${l}`);
  if (code !== 0 || !line.startsWith('{')) throw new Error(`compose benchmark failed (exit ${code}): ${out.trim()}`);
  return JSON.parse(line) as Record<string, number>;
}

// Swarm's overlays (ingress and the stack's network) from the labs' overlay pool in /24s, as Shoal's
// lab clusters get them; only ever inside the Swarm hosts' namespaces.
const swarmOverlay = { pool: LAB_OVERLAY_POOL, mask: 24 };
const swarm = v['no-swarm'] ? undefined : await side(new SwarmDriver(3, 2, progress, true, swarmOverlay));
const shoal = v['no-shoal'] ? undefined : await side(new ShoalDriver(v.lab, 3, 2, true));
const comp = v['no-compose'] || stopping ? undefined : await compose();

const fig = (s: StackSideFigures | undefined, k: 'deploy_ms' | 'rm_ms'): number | null => (s ? round(s[k]) : null);
const out: Record<string, unknown> = {
  bench: 'stack',
  managers: 3,
  workers: 2,
  file: v.file,
  stack: v.stack,
  runs,
  services: shoal?.services ?? swarm?.services ?? null,
  tasks: shoal?.tasks ?? swarm?.tasks ?? null,
};
for (const [name, k] of [
  ['stack_deploy_ms', 'deploy_ms'],
  ['stack_rm_ms', 'rm_ms'],
] as const) {
  out[name] = fig(shoal, k);
  out[`swarm_${name}`] = fig(swarm, k);
  out[name.replace(/_ms$/, '_ratio')] = ratio(fig(shoal, k), fig(swarm, k));
}
out['compose_load_ms'] = comp?.['compose_load_ms'] ?? null;
// CPU time of the same work: less disturbed by a busy machine than the wall-clock median
out['compose_load_cpu_ms'] = comp?.['compose_load_cpu_ms'] ?? null;
out['load_average_start'] = loadStart;
out['load_average_end'] = load();
out['goals'] = GOALS;
const met: Record<string, boolean> = {};
if (typeof out['stack_deploy_ratio'] === 'number') met['stack_deploy_ratio'] = out['stack_deploy_ratio'] <= 0.2;
if (typeof out['stack_rm_ratio'] === 'number') met['stack_rm_ratio'] = out['stack_rm_ratio'] <= 0.2;
if (comp) met['compose_load_ms'] = (comp['compose_load_ms'] ?? Infinity) < GOALS.compose_load_ms;
out['goals_met'] = met;
const detail = (s: StackSideFigures | undefined) =>
  s && {
    deploy_runs_ms: s.deploy_runs_ms,
    rm_runs_ms: s.rm_runs_ms,
    rm_extra_cli_runs: s.rm_retries,
    spread: s.spread,
    registry: s.registry,
  };
out['shoal'] = detail(shoal);
out['swarm'] = detail(swarm);
out['compose'] = comp;
process.stdout.write(JSON.stringify(out) + '\n');
