/**
 * The measuring routine of `npm run bench -- stack`, run on Shoal and on Docker Swarm through
 * their drivers (cluster-driver.ts), on a cluster formed as the cluster benchmark forms it, with
 * the busybox test image pushed to the side's registry:
 * - `deploy_ms`: the side's CLI `stack deploy -c FILE STACK` (REGISTRY = the side's registry),
 *   from the CLI's start until the leader lists, for every service of the stack, as many tasks
 *   with desired and observed state `running` as it has replicas (polled every 100 ms);
 * - `rm_ms`: the side's CLI `stack rm STACK`, from its start until nothing of the stack is left:
 *   no container in any state in any host's engine, no network of it on any host, no service or
 *   network of it in the leader's lists (driver.stackLeftovers). Docker 20.10's `stack rm` does
 *   not wait for the tasks and fails on a network its draining tasks still use ("network ... is
 *   in use"); as a user must, the CLI is then run again (once a second) until it succeeds, and
 *   the count of those extra runs is reported.
 * Each run is deploy then rm; with several runs the figures are the medians (the first run also
 * pulls the image on every node).
 */
import { performance } from 'node:perf_hooks';
import { sleep } from '@shoal/common';
import type { BenchStackService, BenchStackTask, ClusterDriver } from './cluster-driver.js';
import { findLeader, formCluster } from './measure-cluster.js';
import { median } from './stats.js';

export interface StackOptions {
  /** The stack file (its images through `${REGISTRY}`). */
  file: string;
  stack: string;
  runs: number;
  progress: (msg: string) => void;
}

export interface StackSideFigures {
  /** Medians over the runs. */
  deploy_ms: number;
  rm_ms: number;
  deploy_runs_ms: number[];
  rm_runs_ms: number[];
  /** Extra `stack rm` runs needed until the CLI succeeded, per run. */
  rm_retries: number[];
  services: number;
  tasks: number;
  /** Running tasks per host after the first deploy. */
  spread: Record<string, number>;
  registry: string;
}

const LIMIT_MS = 300_000;

/** Services whose running tasks fall short of their replicas (global: any task not yet running). */
function shortOf(services: readonly BenchStackService[], tasks: readonly BenchStackTask[]): string[] {
  const out: string[] = [];
  for (const s of services) {
    const mine = tasks.filter((t) => t.serviceId === s.id && t.desired === 'running');
    const running = mine.filter((t) => t.state === 'running').length;
    const want = s.replicas ?? Math.max(1, mine.length);
    if (running < want) out.push(`${s.name} ${running}/${want}`);
  }
  return out;
}

export async function measureStack(d: ClusterDriver, o: StackOptions): Promise<StackSideFigures> {
  const say = (msg: string): void => o.progress(`${d.system}: ${msg}`);
  const { ids } = await formCluster(d, say);
  const leader = await findLeader(d, ids);
  const image = await d.pushImage();
  // `${REGISTRY}/shoal-test/busybox:1`: the registry is the reference's host part
  const registry = image.ref.slice(0, image.ref.indexOf('/'));
  say(`pushed ${image.ref} (${image.digest}); leader ${leader.name}; REGISTRY=${registry}`);
  const hostOf = (nodeId: string): string => ids.get(nodeId)?.name ?? nodeId;

  const deployRuns: number[] = [];
  const rmRuns: number[] = [];
  const retries: number[] = [];
  let spread: Record<string, number> = {};
  let services = 0;
  let tasks = 0;
  for (let run = 1; run <= o.runs; run++) {
    // ---- deploy ----
    let t0 = performance.now();
    await d.deployStack(leader, o.file, o.stack, { REGISTRY: registry });
    const cliMs = performance.now() - t0;
    let lastSay = performance.now();
    let short: string[] = [];
    let running: BenchStackTask[];
    let listed: BenchStackService[];
    for (;;) {
      listed = (await d.stackServices(leader, o.stack, 5000)) ?? [];
      const ts =
        listed.length > 0
          ? await d.stackTasks(
              leader,
              listed.map((s) => s.id),
              5000,
            )
          : undefined;
      if (ts) {
        short = shortOf(listed, ts);
        if (short.length === 0) {
          running = ts.filter((t) => t.desired === 'running' && t.state === 'running');
          break;
        }
      }
      const now = performance.now();
      if (now - t0 > LIMIT_MS)
        throw new Error(`${d.system}: stack deploy: not all running after ${LIMIT_MS} ms: ${short.join(', ')}`);
      if (now - lastSay > 3000) {
        say(`deploy: ${listed.length} services, short: ${short.join(', ') || '(no task list)'}`);
        lastSay = now;
      }
      await sleep(100);
    }
    const deployMs = performance.now() - t0;
    deployRuns.push(deployMs);
    services = listed.length;
    tasks = running.length;
    if (run === 1) {
      spread = {};
      for (const t of running) spread[hostOf(t.nodeId)] = (spread[hostOf(t.nodeId)] ?? 0) + 1;
    }
    say(
      `run ${run}: deploy of ${services} services, ${tasks} tasks: all running after ${Math.round(deployMs)} ms (CLI ${Math.round(cliMs)} ms), spread ${JSON.stringify(spread)}`,
    );

    // ---- rm ----
    const networkIds = (await d.stackNetworks(leader, o.stack, 10_000)).map((n) => n.id);
    t0 = performance.now();
    let cli = await d.removeStack(leader, o.stack);
    const rmCliMs = performance.now() - t0;
    let extra = 0;
    let lastRetry = performance.now();
    let left: string[];
    lastSay = performance.now();
    for (;;) {
      left = await d.stackLeftovers(leader, o.stack, networkIds);
      if (left.length === 0 && cli.ok) break;
      const now = performance.now();
      if (!cli.ok && now - lastRetry >= 1000) {
        if (extra === 0) say(`stack rm failed (${cli.output.split('\n')[0]}): running it again until it succeeds`);
        cli = await d.removeStack(leader, o.stack);
        extra++;
        lastRetry = performance.now();
        continue;
      }
      if (now - t0 > LIMIT_MS)
        throw new Error(`${d.system}: stack rm: still there after ${LIMIT_MS} ms: ${left.join('; ')}`);
      if (now - lastSay > 3000) {
        say(`rm: ${left.length} left: ${left.slice(0, 6).join('; ')}${left.length > 6 ? '; ...' : ''}`);
        lastSay = now;
      }
      await sleep(100);
    }
    const rmMs = performance.now() - t0;
    rmRuns.push(rmMs);
    retries.push(extra);
    say(
      `run ${run}: stack rm: nothing left on any host after ${Math.round(rmMs)} ms (CLI ${Math.round(rmCliMs)} ms, ${extra} extra rm runs)`,
    );
  }
  return {
    deploy_ms: median(deployRuns),
    rm_ms: median(rmRuns),
    deploy_runs_ms: deployRuns.map(Math.round),
    rm_runs_ms: rmRuns.map(Math.round),
    rm_retries: retries,
    services,
    tasks,
    spread,
    registry,
  };
}
