/**
 * The one measuring routine of `npm run bench -- cluster`, run on Shoal and on Docker Swarm
 * through their drivers:
 * - join: `swarm init` on h1, then each other host joins (managers first) one at a time; a
 *   join's time runs from the join call until the leader shows that node Ready;
 * - idle memory: after the cluster is healthy and has idled `settleMs`, the RSS (and PSS) of
 *   each host's daemon(s), averaged over managers and over workers;
 * - control writes: `clients` concurrent clients, each with its own connection to the leader's
 *   API endpoint, each creating a config of its own (`config create`, a name no other client
 *   uses) and removing it again (`config rm`), in a loop for `writeMs`; acknowledged writes
 *   (creates and removes) per second. The writes touch disjoint objects, so none conflicts;
 *   each is ordered through Raft and acknowledged after its commit;
 * - leader failover, `rounds` times: kill -9 of the leader's daemon(s); from then on a probe
 *   (a label write through a surviving manager, alternating, each limited to 3 s) starts every
 *   `probeMs`; the time from the kill to the first acknowledged probe. The killed host is then
 *   restarted and the cluster waited healthy again before the next round.
 */
import { performance } from 'node:perf_hooks';
import { sleep } from '@shoal/common';
import type { BenchHost, ClusterDriver } from './cluster-driver.js';
import { mean, median } from './stats.js';

export interface MeasureOptions {
  rounds: number;
  clients: number;
  writeMs: number;
  settleMs: number;
  probeMs: number;
  progress: (msg: string) => void;
}

export interface SideFigures {
  join_ms: number;
  joins_ms: number[];
  leader_failover_ms: number;
  failovers_ms: number[];
  manager_rss_mb: number;
  worker_rss_mb: number;
  manager_pss_mb: number;
  worker_pss_mb: number;
  rss: Record<string, number>;
  control_writes_per_s: number;
  write_errors: number;
}

const PROBE_TIMEOUT_MS = 3000;

/** Until every node is ready and every manager reachable with one leader, as some live manager sees it. */
export async function waitHealthy(
  d: ClusterDriver,
  alive: (h: BenchHost) => boolean,
  limitMs: number,
): Promise<number> {
  const t0 = performance.now();
  const managers = d.hosts.filter((h) => h.role === 'manager');
  for (;;) {
    for (const m of managers.filter(alive)) {
      const ns = await d.nodes(m, 3000);
      if (
        ns &&
        ns.length === d.hosts.length &&
        ns.every((n) => n.state === 'ready') &&
        ns.filter((n) => n.manager && n.reachable).length === managers.length &&
        ns.filter((n) => n.leader).length === 1
      )
        return performance.now() - t0;
      if (ns) break;
    }
    if (performance.now() - t0 > limitMs) throw new Error(`${d.system}: cluster not healthy after ${limitMs} ms`);
    await sleep(100);
  }
}

/** The host whose node leads, as a live manager sees it. */
export async function findLeader(d: ClusterDriver, ids: Map<string, BenchHost>): Promise<BenchHost> {
  for (let i = 0; i < 300; i++) {
    for (const m of d.hosts.filter((h) => h.role === 'manager')) {
      const lead = (await d.nodes(m, 3000))?.find((n) => n.leader);
      const h = lead && ids.get(lead.id);
      if (h) return h;
    }
    await sleep(100);
  }
  throw new Error(`${d.system}: no leader found`);
}

/** The cluster as formed: node IDs both ways and each join's time. */
export interface FormedCluster {
  ids: Map<string, BenchHost>;
  idOf: Map<BenchHost, string>;
  joins: number[];
}

/**
 * Hosts up, `swarm init` on the first, the others joined one at a time (each until the leader
 * shows it Ready), then until the whole cluster is healthy.
 */
export async function formCluster(d: ClusterDriver, say: (msg: string) => void): Promise<FormedCluster> {
  const [first, ...rest] = d.hosts;
  if (!first) throw new Error('no hosts');
  const ids = new Map<string, BenchHost>();
  const idOf = new Map<BenchHost, string>();

  let t = performance.now();
  await d.up();
  say(`${d.hosts.length} hosts up in ${Math.round(performance.now() - t)} ms`);
  t = performance.now();
  const firstId = await d.init(first);
  ids.set(firstId, first);
  idOf.set(first, firstId);
  say(`swarm init on ${first.name} in ${Math.round(performance.now() - t)} ms`);

  // join until Ready, one at a time, managers first (hosts are in that order)
  const joins: number[] = [];
  for (const h of rest) {
    const t0 = performance.now();
    const id = await d.join(h, first);
    for (;;) {
      if ((await d.nodeState(first, id, 3000)) === 'ready') break;
      if (performance.now() - t0 > 120_000) throw new Error(`${d.system}: ${h.name} not Ready 120 s after its join`);
      await sleep(10);
    }
    const ms = performance.now() - t0;
    joins.push(ms);
    ids.set(id, h);
    idOf.set(h, id);
    say(`${h.name} joined as ${h.role}, Ready after ${Math.round(ms)} ms`);
  }
  const healthyMs = await waitHealthy(d, () => true, 120_000);
  say(`all ${d.hosts.length} nodes Ready, managers reachable (${Math.round(healthyMs)} ms after the last join)`);
  return { ids, idOf, joins };
}

export async function measureCluster(d: ClusterDriver, o: MeasureOptions): Promise<SideFigures> {
  const say = (msg: string): void => o.progress(`${d.system}: ${msg}`);
  const first = d.hosts[0];
  if (!first) throw new Error('no hosts');
  const down = new Set<BenchHost>();
  const alive = (h: BenchHost): boolean => !down.has(h);
  const { ids, idOf, joins } = await formCluster(d, say);

  // idle memory
  say(`idling ${o.settleMs} ms before reading memory`);
  await sleep(o.settleMs);
  const rss: Record<string, number> = {};
  const mgr: number[] = [];
  const wrk: number[] = [];
  const mgrPss: number[] = [];
  const wrkPss: number[] = [];
  for (const h of d.hosts) {
    const r = d.rss(h);
    rss[h.name] = Number(r.mb.toFixed(1));
    (h.role === 'manager' ? mgr : wrk).push(r.mb);
    (h.role === 'manager' ? mgrPss : wrkPss).push(r.pss);
    say(`idle RSS ${h.name} (${h.role}): ${r.what} ${r.mb.toFixed(1)} MB (PSS ${r.pss.toFixed(1)} MB)`);
  }

  // control writes from concurrent clients through the leader
  const leader = await findLeader(d, ids);
  say(`${o.clients} clients creating and removing configs through the leader ${leader.name} for ${o.writeMs} ms`);
  const writers = Array.from({ length: o.clients }, () => d.writer(leader));
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  const tw = performance.now();
  const until = tw + o.writeMs;
  await Promise.all(
    writers.map(async (w, c) => {
      let made: string | undefined; // this client's config, while it exists
      for (let k = 0; performance.now() < until; k++) {
        try {
          if (made === undefined) made = await w.createConfig(`bench-c${c}-${k}`, `client ${c} write ${k}\n`);
          else {
            await w.removeConfig(made);
            made = undefined;
          }
          ok++;
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
          await sleep(10);
        }
      }
    }),
  );
  const writeS = (performance.now() - tw) / 1000;
  for (const w of writers) w.close();
  const writesPerS = ok / writeS;
  say(
    `${ok} writes acknowledged in ${writeS.toFixed(1)} s: ${writesPerS.toFixed(0)}/s (${errors} errors${firstError ? `, first: ${firstError}` : ''})`,
  );

  // leader failover
  const failovers: number[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    const L = await findLeader(d, ids);
    const survivors = d.hosts.filter((h) => h.role === 'manager' && h !== L);
    const target = idOf.get(d.hosts.find((h) => h.role === 'worker') ?? first) ?? '';
    const inflight: Promise<void>[] = [];
    let acked: number | undefined;
    let by = '';
    let lastError = '';
    const t0 = performance.now();
    d.kill(L);
    down.add(L);
    for (let tick = 0; acked === undefined; tick++) {
      if (performance.now() - t0 > 120_000) break;
      const via = survivors[tick % survivors.length];
      if (!via) break;
      inflight.push(
        d.labelAdd(via, target, 'bench-failover', `${r}.${tick}`, PROBE_TIMEOUT_MS).then(
          () => {
            const at = performance.now() - t0;
            if (acked === undefined || at < acked) {
              acked = at;
              by = via.name;
            }
          },
          (err: unknown) => {
            // no leader yet, or a conflict with another probe: the next probe tries again
            lastError = (err as Error).message;
          },
        ),
      );
      await sleep(o.probeMs);
    }
    await Promise.all(inflight);
    if (acked === undefined)
      throw new Error(`${d.system}: no write acknowledged within 120 s of killing ${L.name} (last: ${lastError})`);
    failovers.push(acked);
    await d.waitGone(L);
    const tr = performance.now();
    await d.restart(L);
    down.delete(L);
    const back = await waitHealthy(d, alive, 180_000);
    say(
      `failover ${r}/${o.rounds}: killed leader ${L.name}, first write acknowledged via ${by} after ${Math.round(acked)} ms; ${L.name} restarted and back Reachable after ${Math.round(performance.now() - tr)} ms (${Math.round(back)} ms of it waiting)`,
    );
  }

  return {
    join_ms: median(joins),
    joins_ms: joins.map(Math.round),
    leader_failover_ms: median(failovers),
    failovers_ms: failovers.map(Math.round),
    manager_rss_mb: mean(mgr),
    worker_rss_mb: mean(wrk),
    manager_pss_mb: mean(mgrPss),
    worker_pss_mb: mean(wrkPss),
    rss,
    control_writes_per_s: writesPerS,
    write_errors: errors,
  };
}
