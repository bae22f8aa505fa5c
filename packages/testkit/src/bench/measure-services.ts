/**
 * The measuring routine of `npm run bench -- services`, run on Shoal and on Docker Swarm through
 * their drivers (cluster-driver.ts), on a cluster formed as the cluster benchmark forms it:
 * - `deploy_ms`: `service create` of `replicas` replicas of the busybox test image (pulled from
 *   the side's registry) running `sleep 3600`, until the leader lists that many tasks with desired
 *   and observed state `running` (polled every 100 ms);
 * - `manager_rss_mb`: RSS of the leader's daemon(s) `settleMs` after that;
 * - `scale_ms`: `service scale` to twice as many, until they all run;
 * - `worker_loss_ms`: kill -9 of the last worker's daemon(s) until all the replicas run on other
 *   nodes (`worker_down_ms`: until the leader shows the node down); the worker is then restarted
 *   and waited Ready;
 * - `link_cut_ms`: the other worker's underlay link set down, until all the replicas run on
 *   other nodes (`link_down_ms` likewise); the link is then healed.
 * The service is removed at the end (its containers stop); the driver's down() does the rest.
 */
import { performance } from 'node:perf_hooks';
import { sleep } from '@shoal/common';
import type { BenchHost, BenchTask, ClusterDriver } from './cluster-driver.js';
import { findLeader, formCluster } from './measure-cluster.js';

export interface ServiceOptions {
  replicas: number;
  /** Dispatcher.HeartbeatPeriod set on the cluster; undefined leaves the default (5 s on both). */
  heartbeatMs: number | undefined;
  settleMs: number;
  /** false skips the worker-loss and link-cut phases (their figures are then NaN). */
  faults?: boolean;
  progress: (msg: string) => void;
}

export interface ServiceSideFigures {
  deploy_ms: number;
  scale_ms: number;
  worker_loss_ms: number;
  worker_down_ms: number;
  link_cut_ms: number;
  link_down_ms: number;
  manager_rss_mb: number;
  manager_rss_what: string;
  /** The image reference of the service's spec after create (Swarm pins the digest it resolved). */
  service_image: string;
  image_digest: string;
  /** Running replicas per host after the deploy. */
  spread: Record<string, number>;
}

const LIMIT_MS = 300_000;

const runningOff = (ts: readonly BenchTask[], off: string | undefined): BenchTask[] =>
  ts.filter((t) => t.desired === 'running' && t.state === 'running' && t.nodeId !== off);

export async function measureServices(d: ClusterDriver, o: ServiceOptions): Promise<ServiceSideFigures> {
  const say = (msg: string): void => o.progress(`${d.system}: ${msg}`);
  const { ids, idOf } = await formCluster(d, say);
  const leader = await findLeader(d, ids);
  if (o.heartbeatMs !== undefined) {
    await d.setHeartbeat(leader, o.heartbeatMs);
    say(`Dispatcher.HeartbeatPeriod set to ${o.heartbeatMs} ms`);
  }
  const image = await d.pushImage();
  say(`pushed ${image.ref} (${image.digest}); leader ${leader.name}`);
  const name = (h: BenchHost): string => h.name;
  const hostOf = (nodeId: string): string => {
    const h = ids.get(nodeId);
    return h ? name(h) : nodeId;
  };

  /** Until `want` replicas run off node `off`, as the leader lists them; ms since `t0`. */
  const until = async (
    what: string,
    serviceId: string,
    want: number,
    t0: number,
    off?: string,
    onPoll?: () => Promise<void>,
  ): Promise<{ ms: number; tasks: BenchTask[] }> => {
    let lastSay = performance.now();
    let seen = 0;
    let states = '';
    for (;;) {
      const ts = await d.tasks(leader, serviceId, 5000);
      if (ts) {
        const run = runningOff(ts, off);
        seen = run.length;
        const by: Record<string, number> = {};
        for (const t of ts) if (t.desired === 'running') by[t.state] = (by[t.state] ?? 0) + 1;
        states = JSON.stringify(by);
        if (run.length >= want) return { ms: performance.now() - t0, tasks: run };
      }
      await onPoll?.();
      const now = performance.now();
      if (now - t0 > LIMIT_MS)
        throw new Error(`${d.system}: ${what}: only ${seen} of ${want} running after ${LIMIT_MS} ms`);
      if (now - lastSay > 3000) {
        say(`${what}: ${seen}/${want} running after ${Math.round(now - t0)} ms (desired running: ${states})`);
        lastSay = now;
      }
      await sleep(100);
    }
  };

  const n = o.replicas;
  let t0 = performance.now();
  const serviceId = await d.createService(leader, 'bench', image.ref, ['sleep', '3600'], n);
  try {
    const deploy = await until('deploy', serviceId, n, t0);
    const spread: Record<string, number> = {};
    for (const t of deploy.tasks) spread[hostOf(t.nodeId)] = (spread[hostOf(t.nodeId)] ?? 0) + 1;
    const serviceImage = await d.serviceImage(leader, serviceId);
    say(
      `deploy of ${n}: all running after ${Math.round(deploy.ms)} ms, spread ${JSON.stringify(spread)}; image ${serviceImage}`,
    );

    await sleep(o.settleMs);
    const rss = d.rss(leader);
    say(`leader ${leader.name} RSS at ${n} replicas: ${rss.what} ${rss.mb.toFixed(1)} MB`);

    t0 = performance.now();
    await d.scaleService(leader, serviceId, 2 * n);
    const scale = await until(`scale ${n} -> ${2 * n}`, serviceId, 2 * n, t0);
    say(`scale ${n} -> ${2 * n}: all running after ${Math.round(scale.ms)} ms`);

    /** A fault on a worker until its replicas run elsewhere; then `recover`. */
    const fault = async (
      what: string,
      victim: BenchHost,
      inject: () => Promise<void>,
      recover: () => Promise<void>,
    ): Promise<{ ms: number; downMs: number }> => {
      const id = idOf.get(victim) ?? '';
      const before = runningOff((await d.tasks(leader, serviceId, 30_000)) ?? [], undefined);
      const onIt = before.filter((t) => t.nodeId === id).length;
      if (onIt === 0) throw new Error(`${d.system}: ${what}: ${victim.name} runs no replica`);
      let downMs = NaN;
      const start = performance.now();
      await inject();
      const r = await until(`${what} of ${victim.name}`, serviceId, 2 * n, start, id, async () => {
        if (Number.isNaN(downMs) && (await d.nodeState(leader, id, 3000)) === 'down')
          downMs = performance.now() - start;
      });
      if (Number.isNaN(downMs) && (await d.nodeState(leader, id, 3000)) === 'down') downMs = performance.now() - start;
      say(
        `${what} of ${victim.name} (${onIt} replicas): node down after ${Math.round(downMs)} ms, all ${2 * n} running elsewhere after ${Math.round(r.ms)} ms`,
      );
      const tr = performance.now();
      await recover();
      for (;;) {
        if ((await d.nodeState(leader, id, 3000)) === 'ready') break;
        if (performance.now() - tr > LIMIT_MS) throw new Error(`${d.system}: ${victim.name} not Ready after ${what}`);
        await sleep(200);
      }
      say(`${victim.name} back Ready after ${Math.round(performance.now() - tr)} ms`);
      return { ms: r.ms, downMs };
    };

    if (o.faults === false) {
      say('faults skipped (--no-faults)');
      return {
        deploy_ms: deploy.ms,
        scale_ms: scale.ms,
        worker_loss_ms: NaN,
        worker_down_ms: NaN,
        link_cut_ms: NaN,
        link_down_ms: NaN,
        manager_rss_mb: rss.mb,
        manager_rss_what: rss.what,
        service_image: serviceImage,
        image_digest: image.digest,
        spread,
      };
    }
    const workers = d.hosts.filter((h) => h.role === 'worker');
    const killed = workers[workers.length - 1];
    const cut = workers[0];
    if (!killed || !cut) throw new Error('the services benchmark needs a worker');
    const loss = await fault(
      'kill -9',
      killed,
      () => Promise.resolve(d.kill(killed)),
      async () => {
        await d.waitGone(killed);
        await d.restart(killed);
      },
    );
    const link = await fault(
      'link cut',
      cut,
      () => d.cut(cut),
      () => d.heal(cut),
    );

    return {
      deploy_ms: deploy.ms,
      scale_ms: scale.ms,
      worker_loss_ms: loss.ms,
      worker_down_ms: loss.downMs,
      link_cut_ms: link.ms,
      link_down_ms: link.downMs,
      manager_rss_mb: rss.mb,
      manager_rss_what: rss.what,
      service_image: serviceImage,
      image_digest: image.digest,
      spread,
    };
  } finally {
    await removeAndWait(d, leader, serviceId, say);
  }
}

/** Removes the service and waits (up to 20 s) until it has no task left; failures only reported. */
async function removeAndWait(
  d: ClusterDriver,
  via: BenchHost,
  serviceId: string,
  say: (msg: string) => void,
): Promise<void> {
  const t0 = performance.now();
  try {
    await d.removeService(via, serviceId);
  } catch (err) {
    say(`service rm: ${(err as Error).message} (the clean-up removes its containers)`);
    return;
  }
  while (performance.now() - t0 < 20_000) {
    const ts = await d.tasks(via, serviceId, 5000);
    // Swarm answers an error for the tasks of a service it no longer has
    if (!ts || ts.every((t) => t.state !== 'running')) {
      say(`service removed, no task running after ${Math.round(performance.now() - t0)} ms`);
      return;
    }
    await sleep(500);
  }
  say('service removed; tasks still running after 20 s (the clean-up removes their containers)');
}
