/**
 * The monitor side of the engine. It separates three things:
 *
 *  - observing (`observe`): what a record truly is, from the verdict table (verdict.ts), without
 *    writing anything: `inspect` and `list` use only this;
 *  - settling (`settle`): acting on a verdict, only for what is provably dead or abandoned:
 *    collecting an exit exactly once across processes, adopting a container whose creator died,
 *    removing a record whose creator died before anything ran, finishing an abandoned removal;
 *  - the collector role (`startCollector`): one process per data root (shoald) watches running
 *    containers, collects their exits as they happen and runs their health checks. The role is an
 *    flock on `<dataRoot>/collector.lock`: a second collector waits on standby and takes over
 *    when the first one exits.
 */
import { existsSync, watch } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, type Logger } from '@shoal/common';
import type { ContainerStore } from '../container/store.js';
import type { ContainerLease, ContainerRecord, HealthState } from '../container/types.js';
import { ContainerNotFoundError, MonitorError } from '../errors.js';
import { HealthRunner } from '../health/runner.js';
import type { BundleBuilder } from '../runtime/bundle.js';
import type { Runc } from '../runtime/runc.js';
import { tryStateLock, type LockHandle } from '../state-lock.js';
import { processAlive, selfIdentity } from './proc.js';
import { readExitFile, type ExitRecord } from './shim.js';
import { autoRemoveDue, judge, leaseLive, view, type Verdict } from './verdict.js';

export interface ContainerMonitorDeps {
  store: ContainerStore;
  runc: Runc;
  bundles: BundleBuilder;
  log: Logger;
  dataRoot: string;
  /** This data root's own dir below the run root: `bundles/` and the runc root live here. */
  runtimeDir: string;
  /** Told of every exit this process collects (the restart supervisor listens). */
  onExit?: (rec: ContainerRecord) => void;
  /** Removes a removed container's anonymous volumes (auto-remove, `rm -v`). */
  removeVolumes?: (rec: ContainerRecord) => Promise<void>;
}

/** How long a removal waits for a killed container's shim to finish its log and exit. */
const SHIM_EXIT_WAIT_MS = 10_000;

/** A new lease held by this process. */
export function newLease(op: ContainerLease['op'], mode?: ContainerLease['mode']): ContainerLease {
  const me = selfIdentity();
  return { pid: me.pid, start: me.start, op, ...(mode ? { mode } : {}), since: new Date().toISOString() };
}

/** True when `lease` is held by this process. */
export function leaseMine(lease: ContainerLease | undefined): boolean {
  const me = selfIdentity();
  return !!lease && lease.pid === me.pid && lease.start === me.start;
}

function sameLease(a: ContainerLease | undefined, b: ContainerLease | undefined): boolean {
  return !!a && !!b && a.pid === b.pid && a.start === b.start && a.op === b.op && a.since === b.since;
}

export class ContainerMonitor {
  private readonly store: ContainerStore;
  private readonly runc: Runc;
  private readonly bundles: BundleBuilder;
  private readonly log: Logger;
  private readonly watchers = new Map<string, { close(): void }>();
  private readonly health = new Map<string, HealthRunner>();
  private readonly settling = new Map<string, Promise<ContainerRecord>>();
  private role: LockHandle | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private closed = false;

  constructor(private readonly deps: ContainerMonitorDeps) {
    this.store = deps.store;
    this.runc = deps.runc;
    this.bundles = deps.bundles;
    this.log = deps.log;
  }

  /** True while this process holds the collector role of the data root. */
  get collecting(): boolean {
    return this.role !== undefined && !this.closed;
  }

  // ---- observing -------------------------------------------------------------------------

  verdict(rec: ContainerRecord): Promise<Verdict> {
    const dir = this.store.dir(rec.id);
    return judge(rec, { exit: () => readExitFile(dir), runcState: () => this.runc.state(rec.id) });
  }

  /** The record as it truly is now; writes nothing and touches no container. */
  async observe(rec: ContainerRecord): Promise<ContainerRecord> {
    const v = await this.verdict(rec);
    const oom = v.kind === 'exited' ? await this.bundles.oomKilled(rec) : false;
    return view(rec, v, oom);
  }

  // ---- settling --------------------------------------------------------------------------

  /**
   * Acts on the record's verdict when it is provably dead or abandoned (see verdict.ts) and
   * returns the record as it is afterwards (or throws ContainerNotFoundError once it is removed).
   * A record busy with a live owner, or one that runs, is returned as is. One settle per
   * container at a time in this process; across processes the record lock and claims decide.
   */
  settle(rec: ContainerRecord): Promise<ContainerRecord> {
    const inflight = this.settling.get(rec.id);
    if (inflight) return inflight;
    const p = this.settleOnce(rec).finally(() => this.settling.delete(rec.id));
    this.settling.set(rec.id, p);
    return p;
  }

  private async settleOnce(rec: ContainerRecord): Promise<ContainerRecord> {
    const v = await this.verdict(rec);
    switch (v.kind) {
      case 'settled':
      case 'busy':
      case 'pending':
        return rec;
      case 'exited':
        return this.collectExit(rec, v.exit);
      case 'adopt': {
        const next = await this.store.update(rec.id, (r) => {
          if (!sameLease(r.lease, rec.lease)) return false; // settled by someone else meanwhile
          r.status = v.status;
          if (v.pid) r.pid = v.pid;
          if (v.status === 'running') {
            r.startedAt ??= new Date().toISOString();
            if (r.healthcheck && !r.health) r.health = { status: 'starting', failingStreak: 0, log: [] };
          }
          if (v.monitorLost) r.monitorLost = true;
          delete r.lease;
        });
        this.log.info({ id: rec.id, status: next.status }, 'adopted a container whose creator is gone');
        this.track(next);
        return next;
      }
      case 'monitor-lost':
        this.log.warn({ id: rec.id }, 'monitor lost: the container runs without its shim');
        return this.store.update(rec.id, (r) => {
          if (r.lease) return false;
          r.monitorLost = true;
        });
      case 'half-made':
      case 'remove':
        return this.takeOverRemoval(rec, v.kind);
    }
  }

  /**
   * Removes a container whose remover (or creator) died, or that exited with auto-remove and
   * has no live waiter (the waiter removes it itself, see `Engine.wait`): takes
   * the dead owner's lease over (one taker among all processes), then removes it. Throws
   * ContainerNotFoundError once it is gone; returns the record if another process took over.
   */
  private async takeOverRemoval(rec: ContainerRecord, why: string): Promise<ContainerRecord> {
    const mine = newLease('remove');
    const taken = await this.store.update(rec.id, (r) => {
      if (r.lease && leaseLive(r.lease)) return false;
      if (r.lease && !sameLease(r.lease, rec.lease)) return false;
      if (!r.lease && !(r.status === 'exited' && autoRemoveDue(r))) return false;
      r.lease = mine;
    });
    if (!sameLease(taken.lease, mine)) return taken;
    this.log.info({ id: rec.id, why }, 'removing a container');
    await this.remove(taken, { volumes: taken.autoRemove });
    throw new ContainerNotFoundError(rec.id);
  }

  /**
   * Collects an exit in three steps so that a record reads `exited` only once everything is
   * cleaned up: claim it under the record lock (one collector among all processes on the data
   * root), then read the OOM counter, runc delete and release the rootfs, secrets and cgroup, then
   * mark it exited under the lock.
   */
  private async collectExit(rec: ContainerRecord, exit: ExitRecord): Promise<ContainerRecord> {
    const me = `${selfIdentity().pid}:${selfIdentity().start}`;
    const claimed = await this.store.update(rec.id, (r) => {
      if (r.status === 'exited') return false;
      if (leaseLive(r.lease) && !leaseMine(r.lease)) return false;
      if (r.collector && r.collector !== me && collectorAlive(r.collector)) return false;
      r.collector = me;
      delete r.lease; // a dead creator's or starter's: the container ran, its exit is what counts
    });
    if (claimed.status === 'exited' || claimed.collector !== me) return claimed; // done, or another process is at it
    this.untrack(rec.id);
    const oomKilled = await this.bundles.oomKilled(claimed);
    await this.runc.delete(rec.id, true);
    await this.bundles.release(claimed);
    await removeBundle(claimed.bundle);
    const next = await this.store.update(rec.id, (r) => {
      r.status = 'exited';
      r.exitCode = exit.exitCode;
      r.signal = exit.signal;
      r.oomKilled = oomKilled;
      r.finishedAt = exit.exitedAt;
      delete r.collector;
    });
    this.log.debug({ id: rec.id, exit }, 'container exited');
    this.deps.onExit?.(next);
    if (autoRemoveDue(next)) {
      await this.takeOverRemoval(next, 'auto-remove').catch((err: unknown) => {
        if (!(err instanceof ContainerNotFoundError)) throw err; // removed: as asked
      });
    }
    return next;
  }

  /**
   * Removes a container for good; the caller holds the record's `remove` lease. Kills it if it
   * runs, waits for its shim to finish, then deletes runc state, mounts, cgroup, bundle, the
   * state dir and the name, in that order: the record goes last, so a crash at any point leaves a
   * record whose dead lease tells the next engine to finish the job.
   */
  async remove(rec: ContainerRecord, opts: { volumes?: boolean } = {}): Promise<void> {
    this.untrack(rec.id);
    const shimUp = processAlive(rec.shimPid, rec.shimStart);
    await this.runc.delete(rec.id, true); // SIGKILL to a running init, then its runc state
    if (shimUp) await waitGone(rec.shimPid, rec.shimStart, SHIM_EXIT_WAIT_MS);
    await this.bundles.release(rec);
    await removeBundle(rec.bundle);
    await this.store.destroy(rec);
    if (opts.volumes) await this.deps.removeVolumes?.(rec);
  }

  // ---- the collector role ----------------------------------------------------------------

  /**
   * Takes the collector role when it is free (else waits on standby, trying every second): from
   * then on this process settles every record each second, watches running containers for their
   * exit and runs their health checks.
   */
  async startCollector(): Promise<void> {
    this.timer = setInterval(() => void this.tick(), 1000);
    this.timer.unref();
    await this.tick();
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      if (!this.role) {
        this.role = await tryStateLock(join(this.deps.dataRoot, 'collector.lock'), 'exclusive');
        if (!this.role) return;
        this.log.info({ dataRoot: this.deps.dataRoot }, 'collector role taken');
      }
      for (const r of await this.store.all()) {
        if (this.closed) return;
        try {
          this.track(await this.settle(r));
        } catch (err) {
          if (!(err instanceof ContainerNotFoundError)) this.log.warn({ err, id: r.id }, 'settle');
        }
      }
    } catch (err) {
      this.log.warn({ err }, 'collector sweep');
    } finally {
      this.ticking = false;
    }
  }

  /** Stops watching and health checks and gives the collector role up. Containers keep running. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const h of this.health.values()) h.stop();
    this.health.clear();
    this.role?.release();
    this.role = undefined;
  }

  /** Watches a running container (exit collection, health checks) while this process is the collector. */
  track(rec: ContainerRecord): void {
    if (!this.collecting || rec.status !== 'running' || rec.lease) return;
    if (!this.watchers.has(rec.id)) {
      try {
        const w = watch(this.store.dir(rec.id), (_ev, file) => {
          if (file === 'exit.json') void this.collect(rec.id);
        });
        // the dir went away (removed by another process): the sweep notices the record is gone
        w.on('error', (err) => this.log.debug({ err, id: rec.id }, 'exit watch'));
        this.watchers.set(rec.id, w);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err; // removed meanwhile
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
              pidFile: join(rec.bundle, `health-${Date.now()}.pid`),
            }),
          // probes that fail because the container is exiting do not count
          save: async (state: HealthState) => {
            // (a dying init has no namespaces left while the kernel tears its pid namespace down)
            const initGone = !rec.pid || !existsSync(`/proc/${rec.pid}/ns/ipc`);
            if (initGone || (await readExitFile(this.store.dir(rec.id)))) return this.collect(rec.id);
            await this.store.update(rec.id, (r) => {
              if (r.status !== 'running' || r.lease) return false;
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

  untrack(id: string): void {
    this.watchers.get(id)?.close();
    this.watchers.delete(id);
    this.health.get(id)?.stop();
    this.health.delete(id);
  }

  private async collect(id: string): Promise<void> {
    try {
      await this.settle(await this.store.read(id));
    } catch (err) {
      if (err instanceof ContainerNotFoundError) this.untrack(id);
      else this.log.warn({ err, id }, 'collect');
    }
  }

  // ---- recovery --------------------------------------------------------------------------

  /**
   * On open: settles every record (collects what exited while no engine ran, adopts or removes
   * what a killed engine left half made, finishes abandoned removals), removes temp files of dead
   * processes, and bundles of this data root that no record and no runc state explain. It never
   * touches a container with a live owner, and never deletes runc state it has no record of.
   */
  async recover(): Promise<void> {
    const debris = await this.store.removeDebris();
    if (debris.length) this.log.info({ debris }, 'removed leftovers of crashed engine processes');
    for (const r of await this.store.all()) {
      await this.settle(r).catch((err: unknown) => {
        if (!(err instanceof ContainerNotFoundError)) this.log.warn({ err, id: r.id }, 'cannot recover');
      });
    }
    const bundles = join(this.deps.runtimeDir, 'bundles');
    for (const id of (await readdir(bundles).catch(ignore('ENOENT'))) ?? []) {
      if (await this.store.exists(id)) continue;
      if (await this.runc.state(id)) {
        this.log.warn({ id }, 'runc knows a container this data root has no record of: leaving it alone');
        continue;
      }
      const bundle = join(bundles, id);
      await this.bundles.release({ id, bundle, rootfs: join(bundle, 'rootfs'), cgroupsPath: '' } as ContainerRecord);
      await removeBundle(bundle);
    }
  }
}

function ignore(...codes: string[]): (err: unknown) => undefined {
  return (err: unknown) => {
    if (codes.includes(errnoCode(err) ?? '')) return undefined;
    throw err;
  };
}

/** Waits (polling) until the process is gone, at most `ms`. */
async function waitGone(pid: number | undefined, start: number | undefined, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (processAlive(pid, start) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
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
  return processAlive(pid, start);
}
