/**
 * `npm run test:raft-sim -- --seeds N [--from S] [--nodes 3|5] [--workers W] [--windows K] [--verbose]`
 *
 * Runs seeds S..S+N-1 of the deterministic simulator on worker threads, prints progress, every
 * failing seed with a trimmed trace (re-run one alone with `--from SEED --seeds 1`), and a final
 * summary line. Without --nodes, odd seeds run 3 nodes and even seeds 5. Exits 1 on any failure.
 */
import os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runSeed, type SimOptions, type SimResult } from './simulator.js';

export interface CliArgs {
  seeds: number;
  from: number;
  nodes: 3 | 5 | undefined;
  workers: number;
  windows: number;
  verbose: boolean;
}

export function parseArgs(argv: readonly string[]): CliArgs {
  const a: CliArgs = {
    seeds: 100,
    from: 1,
    nodes: undefined,
    workers: Math.max(1, os.availableParallelism()),
    windows: 3,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${f} needs a non-negative integer, got ${argv[i]}`);
      return v;
    };
    switch (f as string) {
      case '--seeds':
        a.seeds = num();
        break;
      case '--from':
        a.from = num();
        break;
      case '--nodes': {
        const n = num();
        if (n !== 3 && n !== 5) throw new Error(`--nodes must be 3 or 5, got ${n}`);
        a.nodes = n;
        break;
      }
      case '--workers':
        a.workers = Math.max(1, num());
        break;
      case '--windows':
        a.windows = Math.max(1, num());
        break;
      case '--verbose':
        a.verbose = true;
        break;
      default:
        throw new Error(`unknown argument ${f} (usage: --seeds N [--from S] [--nodes 3|5] [--workers W] [--verbose])`);
    }
  }
  return a;
}

/** Node count of a seed when --nodes is not given. */
export function nodesForSeed(seed: number, nodes: 3 | 5 | undefined): 3 | 5 {
  return nodes ?? (seed % 2 === 0 ? 5 : 3);
}

export function simOptions(seed: number, a: Pick<CliArgs, 'nodes' | 'windows' | 'verbose'>): Partial<SimOptions> {
  return { nodes: nodesForSeed(seed, a.nodes), windows: a.windows, verbose: a.verbose };
}

/** A seed's result without its history (what workers send back). */
export type Summary = Omit<SimResult, 'history'>;

function summarize(r: SimResult): Summary {
  const { history: _h, ...rest } = r;
  return rest;
}

interface Job {
  seeds: number[];
  args: CliArgs;
}

if (!isMainThread && parentPort !== null) {
  const job = workerData as Job;
  const port = parentPort;
  for (const seed of job.seeds) {
    const r = await runSeed(seed, simOptions(seed, job.args));
    port.postMessage(summarize(r));
  }
}

/** Runs `seeds` on `args.workers` worker threads (in-process for one), reporting each result. */
export async function runSeeds(
  seeds: readonly number[],
  args: Pick<CliArgs, 'nodes' | 'windows' | 'verbose' | 'workers'>,
  report: (r: Summary) => void,
): Promise<void> {
  const workers = Math.min(args.workers, seeds.length);
  if (workers <= 1) {
    for (const seed of seeds) report(summarize(await runSeed(seed, simOptions(seed, args))));
    return;
  }
  // Interleave seeds so each worker gets a similar mix.
  const parts: number[][] = Array.from({ length: workers }, () => []);
  seeds.forEach((s, k) => parts[k % workers]!.push(s));
  const jobArgs = { ...parseArgs([]), ...args };
  await Promise.all(
    parts.map(
      (part) =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { seeds: part, args: jobArgs } satisfies Job });
          w.on('message', (r: Summary) => report(r));
          w.on('error', reject);
          w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
        }),
    ),
  );
}

function printFailure(r: Summary, args: CliArgs): void {
  const out = process.stdout;
  out.write(`\nFAIL seed ${r.seed} (${r.nodes} nodes): ${r.error}\n`);
  out.write(
    `  re-run: npm run test:raft-sim -- --from ${r.seed} --seeds 1${args.nodes ? ` --nodes ${args.nodes}` : ''} --verbose\n`,
  );
  out.write(`  ${r.stats}\n  trace (last ${r.trace.length} lines):\n`);
  for (const l of r.trace) out.write(`    ${l}\n`);
}

async function main(): Promise<number> {
  // `| head` closes stdout early: stop quietly.
  process.stdout.on('error', () => process.exit(0));
  const args = parseArgs(process.argv.slice(2));
  const seeds: number[] = [];
  for (let s = args.from; s < args.from + args.seeds; s++) seeds.push(s);
  const started = Date.now();
  const failures: Summary[] = [];
  let done = 0;
  let events = 0;
  const report = (r: Summary): void => {
    done++;
    events += r.events;
    if (!r.ok) {
      failures.push(r);
      printFailure(r, args);
    } else if (args.verbose || seeds.length === 1) {
      process.stdout.write(`ok seed ${r.seed} (${r.nodes} nodes) ${r.stats}\n`);
    }
    if (done % 500 === 0 && seeds.length > 500) {
      const secs = (Date.now() - started) / 1000;
      process.stdout.write(`progress ${done}/${seeds.length} seeds, ${failures.length} failed, ${secs.toFixed(0)}s\n`);
    }
  };
  await runSeeds(seeds, args, report);
  const secs = (Date.now() - started) / 1000;
  const failed = failures.map((f) => f.seed).sort((x, y) => x - y);
  process.stdout.write(
    `raft-sim: ${seeds.length} seeds from ${args.from}, ${failed.length} failed${failed.length > 0 ? ` [${failed.join(' ')}]` : ''}, ${events} events, ${secs.toFixed(1)}s\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

if (isMainThread && process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`raft-sim: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
