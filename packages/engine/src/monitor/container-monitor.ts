/**
 * The monitor side of the engine: it brings container records up to date with what their shims
 * recorded, collects exits exactly once across processes, watches running containers (inotify on
 * `exit.json` plus a 1 s sweep) and runs their health checks, and adopts containers when an engine
 * opens a data root.
 */
import { existsSync, watch } from 'node:fs';
import { access, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@shoal/common';
import type { ContainerStore } from '../container/store.js';
import type { ContainerRecord, HealthState } from '../container/types.js';
import { MonitorError } from '../errors.js';
import { HealthRunner } from '../health/runner.js';
import type { BundleBuilder } from '../runtime/bundle.js';
import type { Runc } from '../runtime/runc.js';
import { cleanupStaleSecretMounts } from '../secrets/secrets.js';
import { processStartTime, readExitFile, shimAlive, type ExitRecord } from './shim.js';

export interface ContainerMonitorDeps {
  store: ContainerStore;
  runc: Runc;
  bundles: BundleBuilder;
  log: Logger;
  dataRoot: string;
  runRoot: string;
  /** Watch exits and run health checks (a long-lived engine). */
  background: boolean;
}

export class ContainerMonitor {
  private readonly store: ContainerStore;
  private readonly runc: Runc;
  private readonly bundles: BundleBuilder;
  private readonly log: Logger;
  private readonly background: boolean;
  private readonly runRoot: string;
  private readonly watchers = new Map<string, { close(): void }>();
  private readonly health = new Map<string, HealthRunner>();
  private readonly collecting = new Map<string, Promise<ContainerRecord>>();
  private sweep: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: ContainerMonitorDeps) {
    this.store = deps.store;
    this.runc = deps.runc;
    this.bundles = deps.bundles;
    this.log = deps.log;
    this.background = deps.background;
    this.runRoot = deps.runRoot;
  }

  /** Starts the periodic sweep (background engines only). */
  start(): void {
    if (!this.background) return;
    this.sweep = setInterval(() => void this.sweepOnce(), 1000);
    this.sweep.unref();
  }

  /** Stops watching and health checks. Containers keep running. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweep);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const h of this.health.values()) h.stop();
    this.health.clear();
  }

  /** Removes a container for good: monitor, runc state, mounts, bundle, state dir, name. */
  async destroy(rec: ContainerRecord): Promise<void> {
    this.untrack(rec.id);
    await this.runc.delete(rec.id, true).catch(() => undefined);
    await this.bundles.release(rec);
    await removeBundle(rec.bundle);
    await this.store.destroy(rec);
  }

  /**
   * Brings a record up to date with what its shim recorded: an exited container is collected
   * (OOM read, runc delete, rootfs released) exactly once, whichever process sees it first.
   */
  async refresh(rec: ContainerRecord): Promise<ContainerRecord> {
    if (rec.status === 'exited') return rec;
    const dir = this.store.dir(rec.id);
    let exit = await readExitFile(dir);
    if (!exit) {
      if (shimAlive(rec.shimPid, rec.shimStart)) return rec;
      exit = await readExitFile(dir); // the shim may have finished just now
      if (!exit) {
        const st = await this.runc.state(rec.id).catch(() => undefined);
        if (st && (st.status === 'running' || st.status === 'created')) {
          if (!rec.monitorLost) {
            this.log.warn({ id: rec.id }, 'monitor lost: the container runs without its shim');
            return this.store.update(rec.id, (r) => void (r.monitorLost = true));
          }
          return rec;
        }
        exit = { exitCode: 255, signal: 0, exitedAt: new Date().toISOString() };
      }
    }
    const inflight = this.collecting.get(rec.id);
    if (inflight) return inflight;
    const p = this.collectExit(rec, exit).finally(() => this.collecting.delete(rec.id));
    this.collecting.set(rec.id, p);
    return p;
  }

  /**
   * Collects an exit in three steps so that a record reads `exited` only once everything is
   * cleaned up: claim it under the lock (one collector among all processes on the data root),
   * then read the OOM counter, runc delete and release the rootfs, secrets and cgroup, then mark
   * it exited under the lock.
   */
  private async collectExit(rec: ContainerRecord, exit: ExitRecord): Promise<ContainerRecord> {
    const me = `${process.pid}:${processStartTime(process.pid) ?? 0}`;
    const claimed = await this.store.update(rec.id, (r) => {
      if (r.status === 'exited') return false;
      if (r.collector && r.collector !== me && collectorAlive(r.collector)) return false;
      r.collector = me;
    });
    if (claimed.status === 'exited' || claimed.collector !== me) return claimed; // done, or another process is at it
    this.untrack(rec.id);
    const oomKilled = await this.bundles.oomKilled(claimed).catch(() => false);
    await this.runc.delete(rec.id, true).catch((err: unknown) => this.log.warn({ err, id: rec.id }, 'runc delete'));
    await this.bundles
      .release(claimed)
      .then(() => removeBundle(claimed.bundle))
      .catch((err: unknown) => this.log.warn({ err, id: rec.id }, 'release'));
    const next = await this.store.update(rec.id, (r) => {
      r.status = 'exited';
      r.exitCode = exit.exitCode;
      r.signal = exit.signal;
      r.oomKilled = oomKilled;
      r.finishedAt = exit.exitedAt;
      delete r.collector;
    });
    this.log.debug({ id: rec.id, exit }, 'container exited');
    if (next.autoRemove) await this.destroy(next);
    return next;
  }

  /** Watches a running container (exit collection, health checks) in a background engine. */
  track(rec: ContainerRecord): void {
    if (!this.background || this.closed || rec.status !== 'running') return;
    if (!this.watchers.has(rec.id)) {
      try {
        const w = watch(this.store.dir(rec.id), (_ev, file) => {
          if (file === 'exit.json') void this.collect(rec.id);
        });
        w.on('error', () => undefined);
        this.watchers.set(rec.id, w);
      } catch {
        // the sweep collects it
      }
    }
    if (rec.healthcheck && !this.health.has(rec.id)) {
      const runner = new HealthRunner(
        rec.id,
        rec.healthcheck,
        {
          exec: (argv, timeoutMs, signal) =>
            this.runc.exec(rec.id, argv, {
              timeoutMs,
              signal,
              maxOutput: 4096,
              pidFile: join(this.runRoot, 'bundles', rec.id, `health-${Date.now()}.pid`),
            }),
          // probes that fail because the container is exiting do not count
          save: async (state: HealthState) => {
            // (a dying init has no namespaces left while the kernel tears its pid namespace down)
            const initGone = !rec.pid || !existsSync(`/proc/${rec.pid}/ns/ipc`);
            if (initGone || (await readExitFile(this.store.dir(rec.id)))) return this.collect(rec.id);
            await this.store.update(rec.id, (r) => {
              if (r.status !== 'running') return false;
              r.health = state;
            });
          },
          log: this.log,
        },
        rec.startedAt ?? new Date().toISOString(),
        rec.health,
      );
      this.health.set(rec.id, runner);
      runner.start();
    }
  }

  private untrack(id: string): void {
    this.watchers.get(id)?.close();
    this.watchers.delete(id);
    this.health.get(id)?.stop();
    this.health.delete(id);
  }

  private async collect(id: string): Promise<void> {
    try {
      await this.refresh(await this.store.read(id));
    } catch (err) {
      this.log.debug({ err, id }, 'collect');
    }
  }

  private async sweepOnce(): Promise<void> {
    for (const id of [...this.watchers.keys()]) await this.collect(id);
  }

  /** On open: collect what exited while no engine ran, track what still runs, drop leftovers. */
  async adopt(): Promise<void> {
    const records = await this.store.all();
    const known = new Set(records.map((r) => r.id));
    for (const r of records) {
      const rec = await this.refresh(r).catch((err: unknown) => {
        this.log.warn({ err, id: r.id }, 'cannot adopt');
        return r;
      });
      this.track(rec);
    }
    // secrets tmpfs of containers that are not running any more (crash leftovers)
    const live = new Set(records.filter((r) => r.status !== 'exited').map((r) => r.id));
    await cleanupStaleSecretMounts(this.deps.dataRoot, (id) => live.has(id)).catch((err: unknown) =>
      this.log.warn({ err }, 'stale secrets cleanup'),
    );
    // bundles whose container record is gone (a crash between steps): unmount and delete
    for (const id of await readdir(join(this.runRoot, 'bundles')).catch(() => [] as string[])) {
      if (known.has(id) || (await this.store.exists(id))) continue;
      const bundle = join(this.runRoot, 'bundles', id);
      const stale = { id, bundle, rootfs: join(bundle, 'rootfs') } as ContainerRecord;
      if (
        await access(join(bundle, 'config.json')).then(
          () => true,
          () => false,
        )
      ) {
        await this.runc.delete(id, true).catch(() => undefined);
      }
      await this.bundles.release(stale).catch(() => undefined);
      await removeBundle(bundle).catch((err: unknown) => this.log.warn({ err, bundle }, 'stale bundle'));
    }
  }
}

/**
 * Deletes a bundle dir (config.json and the rootfs mount point), refusing while anything is still
 * mounted below it: a recursive delete through a mounted rootfs would delete the container's
 * files, or a bind-mounted host dir.
 */
export async function removeBundle(bundle: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const prefix = bundle.endsWith('/') ? bundle : `${bundle}/`;
  const busy = info.split('\n').some((l) => {
    const mp = l.split(' ')[4];
    return mp !== undefined && (mp === bundle || mp.startsWith(prefix));
  });
  if (busy) throw new MonitorError(`bundle ${bundle} still has mounts; not removing it`);
  await rm(bundle, { recursive: true, force: true });
}

/** True while the process named `pid:starttime` (a collector claim) still runs. */
function collectorAlive(claim: string): boolean {
  const [pid, start] = claim.split(':').map(Number);
  return !!pid && processStartTime(pid) === start;
}
