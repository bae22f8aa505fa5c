/**
 * `npm run bench:raft`: Shoal's replicated KV (3 processes on loopback, fsync on) against etcd 3.4
 * (3 members, Debian etcd-server), driven by the same client loop at 1, 16, 64 and 256 concurrent
 * writers with 256-byte values; then leader failover (kill -9 of the leader to the first
 * committed write, median of 10). The last line is one JSON object of named figures.
 * `--soak` runs the sustained-load benchmark instead (see soak.ts).
 * Env: SHOAL_BENCH_SCALE (default 1) scales the op counts; SHOAL_BENCH_SKIP_ETCD=1 / SHOAL_BENCH_SKIP_SHOAL=1
 * skip one side (for development only).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { KvProcessCluster } from '../kv/process-cluster.js';
import { KvClient } from '../kv/client.js';
import { EtcdCluster } from './etcd-cluster.js';
import type { Etcd3 as Etcd3Class } from 'etcd3';

// `--soak`: the sustained-load benchmark with a large state (bench/soak.ts) instead.
if (process.argv.includes('--soak')) {
  const { runSoak } = await import('./soak.js');
  await runSoak(process.argv.slice(2));
  process.exit(0);
}

type PutFn = (key: string, value: Buffer) => Promise<unknown>;

interface Figures {
  putsPerSec: number;
  p50: number;
  p99: number;
}

const SCALE = Number(process.env['SHOAL_BENCH_SCALE'] ?? 1);
const LEVELS: [number, number][] = [
  [1, 2000],
  [16, 10000],
  [64, 20000],
  [256, 40000],
];
const VALUE = Buffer.alloc(256, 'x');

/** The one client loop both systems are measured with. */
async function drive(put: PutFn, conc: number, total: number): Promise<Figures> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        await put(`k${i % 1000}`, VALUE);
        lat.push(performance.now() - s);
      }
    }),
  );
  const dt = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { putsPerSec: total / dt, p50: lat[lat.length >> 1]!, p99: lat[Math.floor(lat.length * 0.99)]! };
}

function line(name: string, conc: number, f: Figures): void {
  process.stdout.write(
    `${name.padEnd(6)} w=${String(conc).padEnd(4)} ${f.putsPerSec.toFixed(0).padStart(7)} puts/s  p50 ${f.p50.toFixed(2).padStart(7)} ms  p99 ${f.p99.toFixed(2).padStart(7)} ms\n`,
  );
}

async function benchShoal(results: Map<number, Figures>, failovers: number[]): Promise<void> {
  const cluster = new KvProcessCluster({ size: 3, tickMs: 100, electionTicks: 6 });
  try {
    await cluster.start();
    await sleep(2000); // let the members finish preallocating their next WAL segment
    const client = new KvClient({ endpoints: cluster.clientAddrs, timeoutMs: 30000 });
    await client.put('warmup', VALUE);
    await drive((k, v) => client.put(k, v), 16, Math.round(2000 * SCALE));
    await drive((k, v) => client.put(k, v), 1, Math.round(300 * SCALE));
    for (const [conc, total] of LEVELS) {
      const f = await drive((k, v) => client.put(k, v), conc, Math.round(total * SCALE));
      results.set(conc, f);
      line('shoal', conc, f);
    }
    client.close();
    // Failover: kill -9 the leader, time until the first write commits.
    for (let round = 0; round < 10; round++) {
      let leader = -1;
      for (let tries = 0; leader < 0 && tries < 100; tries++) {
        leader = await cluster.leader();
        if (leader < 0) await sleep(50);
      }
      if (leader < 0) throw new Error('no leader before a failover round');
      const c = new KvClient({ endpoints: cluster.clientAddrs, timeoutMs: 30000 });
      await c.put('fo', VALUE); // connected to the leader
      const t0 = performance.now();
      await cluster.kill(leader);
      await c.put('fo', VALUE);
      const ms = performance.now() - t0;
      failovers.push(ms);
      c.close();
      process.stdout.write(`shoal  failover round ${round + 1}: ${ms.toFixed(0)} ms\n`);
      await cluster.launch(leader);
      await sleep(1000 + Math.random() * 500);
    }
  } finally {
    await cluster.stop();
  }
}

/** Index of the etcd member that reports itself leader, or -1. */
/** etcd3's RPC failures (member down, not ready, deadline, open circuit breaker): set once etcd3 is loaded. */
let etcdDown: ((err: unknown) => boolean) | undefined;

/** A status call failed because the member is down or not ready yet (anything else is a bug). */
function isEtcdUnavailable(err: unknown): boolean {
  return etcdDown?.(err) ?? false;
}

async function etcdLeader(etcd: EtcdCluster, Etcd3: typeof Etcd3Class, skip = -1): Promise<number> {
  for (let i = 0; i < etcd.clientUrls.length; i++) {
    if (i === skip) continue;
    const c = new Etcd3({ hosts: [etcd.clientUrls[i]!] });
    try {
      const st = await c.maintenance.status();
      if (st.leader !== '0' && st.leader === st.header.member_id) return i;
    } catch (err) {
      if (!isEtcdUnavailable(err)) throw err; // down or not ready
    } finally {
      c.close();
    }
  }
  return -1;
}

/** etcd failover with the same method: kill -9 the leader, time to the first committed put. */
async function etcdFailover(etcd: EtcdCluster, Etcd3: typeof Etcd3Class, rounds: number): Promise<number[]> {
  const out: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let leader = -1;
    for (let tries = 0; leader < 0 && tries < 100; tries++) {
      leader = await etcdLeader(etcd, Etcd3);
      if (leader < 0) await sleep(100);
    }
    if (leader < 0) throw new Error('etcd has no leader before a failover round');
    const client = new Etcd3({ hosts: etcd.clientUrls.filter((_, i) => i !== leader) });
    try {
      await client.put('fo').value(VALUE).exec();
      const t0 = performance.now();
      await etcd.kill(leader);
      // A proposal caught in the election may wait for etcd's server-side timeout (~7 s), so a
      // fresh put is started every 50 ms and the first one to commit counts.
      await new Promise<void>((resolve, reject) => {
        let done = false;
        const fire = (): void => {
          if (done) return;
          if (performance.now() - t0 > 30000) {
            done = true;
            reject(new Error('etcd failover took over 30 s'));
            return;
          }
          client
            .put('fo')
            .value(VALUE)
            .exec()
            .then(
              () => {
                if (!done) {
                  done = true;
                  resolve();
                }
              },
              () => undefined,
            );
          setTimeout(fire, 50);
        };
        fire();
      });
      const ms = performance.now() - t0;
      out.push(ms);
      process.stdout.write(`etcd   failover round ${round + 1}: ${ms.toFixed(0)} ms\n`);
    } finally {
      client.close();
    }
    etcd.launch(leader);
    await sleep(2500);
  }
  return out;
}

async function benchEtcd(results: Map<number, Figures>, failovers: number[]): Promise<void> {
  const etcd = new EtcdCluster();
  const { Etcd3, GRPCGenericError, isRecoverableError } = await import('etcd3');
  etcdDown = (err) =>
    err instanceof GRPCGenericError ||
    (err instanceof Error && (isRecoverableError(err) || err.name === 'BrokenCircuitError'));
  try {
    await etcd.start();
    // Wait for the cluster, then point the client at the leader (best case for etcd).
    let leaderUrl = '';
    for (let tries = 0; leaderUrl === '' && tries < 200; tries++) {
      for (const url of etcd.clientUrls) {
        const c = new Etcd3({ hosts: [url] });
        try {
          const st = await c.maintenance.status();
          if (st.leader !== '0' && st.leader === st.header.member_id) leaderUrl = url;
        } catch (err) {
          if (!isEtcdUnavailable(err)) throw err; // not up yet
        } finally {
          c.close();
        }
      }
      if (leaderUrl === '') await sleep(100);
    }
    if (leaderUrl === '') throw new Error('etcd cluster did not elect a leader');
    const client = new Etcd3({ hosts: [leaderUrl] });
    try {
      const put: PutFn = (k, v) => client.put(k).value(v).exec();
      await drive(put, 16, Math.round(2000 * SCALE));
      await drive(put, 1, Math.round(300 * SCALE));
      for (const [conc, total] of LEVELS) {
        const f = await drive(put, conc, Math.round(total * SCALE));
        results.set(conc, f);
        line('etcd', conc, f);
      }
    } finally {
      client.close();
    }
    try {
      failovers.push(...(await etcdFailover(etcd, Etcd3, 10)));
    } catch (err) {
      process.stdout.write(`etcd   failover not measured: ${(err as Error).message}\n`);
    }
  } finally {
    await etcd.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const ours = new Map<number, Figures>();
const theirs = new Map<number, Figures>();
const failovers: number[] = [];
const etcdFailovers: number[] = [];
process.stdout.write(`raft KV benchmark: 3 members on loopback, fsync on, 256-byte values, scale ${SCALE}\n`);
if (process.env['SHOAL_BENCH_SKIP_SHOAL'] !== '1') await benchShoal(ours, failovers);
if (process.env['SHOAL_BENCH_SKIP_ETCD'] !== '1') await benchEtcd(theirs, etcdFailovers);

const out: Record<string, number | null> = {};
for (const [conc] of LEVELS) {
  const a = ours.get(conc) ?? { putsPerSec: NaN, p50: NaN, p99: NaN };
  const b = theirs.get(conc);
  out[`w${conc}_shoal_puts_per_s`] = Math.round(a.putsPerSec);
  out[`w${conc}_shoal_p50_ms`] = +a.p50.toFixed(2);
  out[`w${conc}_shoal_p99_ms`] = +a.p99.toFixed(2);
  out[`w${conc}_etcd_puts_per_s`] = b ? Math.round(b.putsPerSec) : null;
  out[`w${conc}_etcd_p50_ms`] = b ? +b.p50.toFixed(2) : null;
  out[`w${conc}_etcd_p99_ms`] = b ? +b.p99.toFixed(2) : null;
  out[`w${conc}_throughput_ratio`] = b ? +(a.putsPerSec / b.putsPerSec).toFixed(2) : null;
  out[`w${conc}_p50_ratio`] = b ? +(a.p50 / b.p50).toFixed(2) : null;
  out[`w${conc}_p99_ratio`] = b ? +(a.p99 / b.p99).toFixed(2) : null;
  if (b) {
    process.stdout.write(
      `w=${conc}: throughput ours/etcd ${(a.putsPerSec / b.putsPerSec).toFixed(2)}x, p50 ratio ${(a.p50 / b.p50).toFixed(2)}, p99 ratio ${(a.p99 / b.p99).toFixed(2)}\n`,
    );
  }
}
out['failover_median_ms'] = Math.round(median(failovers));
out['failover_max_ms'] = Math.round(Math.max(...failovers));
out['election_timeout_ms'] = 600;
out['etcd_failover_median_ms'] = etcdFailovers.length > 0 ? Math.round(median(etcdFailovers)) : null;
if (etcdFailovers.length > 0) {
  process.stdout.write(
    `etcd failover (same method, its default 1000 ms election timeout), median of ${etcdFailovers.length}: ${out['etcd_failover_median_ms']} ms\n`,
  );
}
process.stdout.write(
  `failover (kill -9 leader -> first committed write), median of ${failovers.length}: ${out['failover_median_ms']} ms\n`,
);
process.stdout.write(JSON.stringify(out) + '\n');
