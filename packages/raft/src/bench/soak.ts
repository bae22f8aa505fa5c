/**
 * `npm run bench:raft -- --soak [--state-mb 1024] [--value-kb 64] [--writers 64] [--soak-s 60]
 * [--snapshot-mib N]`: Raft under sustained load with a large state.
 *
 * 3 KV processes on loopback (fsync on, 100 ms ticks, election timeout 600-1200 ms). Fill: write
 * `state-mb` of distinct keys (`value-kb` values) with `writers` concurrent clients. Soak: keep
 * overwriting random keys for `soak-s` seconds, so that the log grows by many snapshot triggers
 * (every `snapshot-mib` of log, default 64 as in raft:kv) and each member snapshots the full
 * state repeatedly while writes go on. Then kill -9 a follower and restart it.
 *
 * Figures: `soak_max_write_gap_ms` (longest time between two acknowledged writes during the soak,
 * snapshots included; goal: below the 600 ms election timeout), `soak_snapshots` (snapshot files
 * written by the members during the soak), `soak_leader_changes` (seen by polling every ~200 ms), `soak_rss_per_state` (highest RSS of any member, sampled
 * every 250 ms during fill and soak, over the live state bytes; goal <= 3), `restart_ms` (kill -9 of
 * a follower to its READY: state restored from its snapshot and WAL replayed), and throughput.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { KvProcessCluster } from '../kv/process-cluster.js';
import { KvClient } from '../kv/client.js';

function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0; // the member just exited
    throw err;
  }
}

function snapFiles(dir: string): string[] {
  try {
    return readdirSync(join(dir, 'snap')).filter((n) => n.endsWith('.snap'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Asks every member for a MEM line (memory usage) on stderr. */
async function memReport(cluster: KvProcessCluster): Promise<void> {
  for (let i = 0; i < cluster.ids.length; i++) {
    const pid = cluster.pid(i);
    if (pid !== undefined) process.kill(pid, 'SIGUSR2');
  }
  await sleep(300);
}

export async function runSoak(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      soak: { type: 'boolean' },
      'state-mb': { type: 'string', default: '1024' },
      'value-kb': { type: 'string', default: '64' },
      writers: { type: 'string', default: '64' },
      'soak-s': { type: 'string', default: '60' },
      'snapshot-mib': { type: 'string' },
    },
  });
  const stateMb = Number(values['state-mb']);
  const valueBytes = Number(values['value-kb']) * 1024;
  const writers = Number(values.writers);
  const soakMs = Number(values['soak-s']) * 1000;
  const keys = Math.max(1, Math.round((stateMb * 1024 * 1024) / valueBytes));
  const snapshotMiB = Number(values['snapshot-mib'] ?? 64);
  const electionTimeoutMs = 600;
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  say(
    `raft soak: 3 members, ${keys} keys x ${valueBytes / 1024} KiB = ${stateMb} MiB state, ${writers} writers, ` +
      `snapshot every ${snapshotMiB} MiB of log, soak ${soakMs / 1000} s`,
  );

  const cluster = new KvProcessCluster({
    size: 3,
    tickMs: 100,
    electionTicks: 6,
    snapshotEntries: 1_000_000_000,
    snapshotMiB,
    ...(process.env['SHOAL_SOAK_NODE_OPTIONS']
      ? { env: { NODE_OPTIONS: process.env['SHOAL_SOAK_NODE_OPTIONS'] } }
      : {}),
  });
  let maxRss = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (let i = 0; i < 3; i++) maxRss = Math.max(maxRss, rssBytes(cluster.pid(i)));
      await sleep(250);
    }
  })();
  const value = Buffer.alloc(valueBytes, 'v');
  try {
    await cluster.start();
    await sleep(1000);
    const client = new KvClient({ endpoints: cluster.clientAddrs, timeoutMs: 60_000 });
    // Fill.
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: writers }, async () => {
        for (;;) {
          const i = next++;
          if (i >= keys) return;
          const v = Buffer.from(value);
          v.writeUInt32LE(i, 0);
          await client.put(`key-${i}`, v);
        }
      }),
    );
    const fillS = (performance.now() - t0) / 1000;
    say(`fill: ${keys} puts in ${fillS.toFixed(1)} s (${((keys * valueBytes) / 1048576 / fillS).toFixed(1)} MiB/s)`);
    const fillRss = maxRss;
    await memReport(cluster);

    // Soak: overwrite random keys; record the gaps between acknowledgements.
    const before = cluster.ids.map((_, i) => new Set(snapFiles(cluster.dataDir(i))));
    const seen = cluster.ids.map(() => new Set<string>());
    let lastAck = performance.now();
    let maxGap = 0;
    let acked = 0;
    let errors = 0;
    const start = performance.now();
    let leaderChanges = 0;
    let lastLeader = await cluster.leader();
    const watcher = (async () => {
      while (performance.now() - start < soakMs) {
        for (let i = 0; i < 3; i++) {
          for (const f of snapFiles(cluster.dataDir(i))) if (!before[i]!.has(f)) seen[i]!.add(f);
        }
        const l = await cluster.leader(1000);
        if (l >= 0 && l !== lastLeader) {
          leaderChanges++;
          say(`leader changed: member ${cluster.ids[l]} (was ${lastLeader >= 0 ? cluster.ids[lastLeader] : 'none'})`);
          lastLeader = l;
        }
        await sleep(200);
      }
    })();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        let n = 0;
        while (performance.now() - start < soakMs) {
          const i = Math.floor(Math.random() * keys);
          const v = Buffer.from(value);
          v.writeUInt32LE(i, 0);
          v.writeUInt32LE(w * 1_000_000 + n++, 4);
          try {
            await client.put(`key-${i}`, v);
          } catch (err) {
            errors++;
            say(`soak write error: ${(err as Error).message}`);
            continue;
          }
          const now = performance.now();
          maxGap = Math.max(maxGap, now - lastAck);
          lastAck = now;
          acked++;
        }
      }),
    );
    await watcher;
    const soakS = (performance.now() - start) / 1000;
    const snapshots = seen.reduce((a, s) => a + s.size, 0);
    say(
      `soak: ${acked} puts in ${soakS.toFixed(1)} s (${(acked / soakS).toFixed(0)}/s, ` +
        `${((acked * valueBytes) / 1048576 / soakS).toFixed(1)} MiB/s), ${errors} errors, ` +
        `${snapshots} snapshots written, ${leaderChanges} leader changes, longest gap between acks ${maxGap.toFixed(0)} ms`,
    );
    client.close();
    await memReport(cluster);

    // Restart a follower with the full state.
    const leader = await cluster.leader();
    const victim = leader === 0 ? 1 : 0;
    await cluster.kill(victim);
    const r0 = performance.now();
    await cluster.launch(victim);
    const restartMs = performance.now() - r0;
    say(`restart of member ${cluster.ids[victim]} (kill -9 -> READY): ${restartMs.toFixed(0)} ms`);
    say(`  ${cluster.readyLines[victim] ?? ''}`);
    sampling = false;
    await sampler;
    const stateBytes = keys * valueBytes;
    say(
      `max RSS of a member: ${(maxRss / 1048576).toFixed(0)} MiB (after fill ${(fillRss / 1048576).toFixed(0)} MiB) ` +
        `for ${(stateBytes / 1048576).toFixed(0)} MiB of live state`,
    );
    process.stdout.write(
      JSON.stringify({
        state_mb: stateMb,
        value_kb: valueBytes / 1024,
        writers,
        election_timeout_ms: electionTimeoutMs,
        fill_mib_per_s: +((keys * valueBytes) / 1048576 / fillS).toFixed(1),
        soak_puts_per_s: Math.round(acked / soakS),
        soak_errors: errors,
        soak_snapshots: snapshots,
        soak_leader_changes: leaderChanges,
        soak_max_write_gap_ms: Math.round(maxGap),
        soak_rss_mb_max: Math.round(maxRss / 1048576),
        soak_rss_per_state: +(maxRss / stateBytes).toFixed(2),
        restart_ms: Math.round(restartMs),
      }) + '\n',
    );
  } finally {
    sampling = false;
    await sampler;
    await cluster.stop();
  }
}
