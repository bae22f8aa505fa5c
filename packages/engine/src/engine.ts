/**
 * The engine facade: containers from images, run by runc under one `shoal-shim` monitor each.
 *
 * State lives in files (see container/store.ts), so several processes may open the same data root
 * (shoald and a daemonless `shoal container ...`); read-modify-write of a record happens under an
 * flock. The shim owns the container's output and exit status, so containers keep running and
 * logging while no engine runs. Observing (`inspect`, `list`) writes nothing; opening the engine
 * recovers what crashed processes left (only what is provably dead or abandoned: see
 * monitor/verdict.ts). A multi-step change of a container (create, start, remove) holds a lease
 * in its record (pid and start time of this process), so that no other process touches it
 * meanwhile. With `collector: true` (shoald) the engine also takes the collector role of the data
 * root: it collects exits as they happen and runs health checks.
 *
 * ```ts
 * const engine = await Engine.open({ dataRoot: '/var/lib/shoal/engine', images });
 * const id = await engine.run({ image: 'busybox', cmd: ['echo', 'hi'] });
 * const { exitCode } = await engine.wait(id);
 * for await (const e of engine.logs(id)) process.stdout.write(e.line);
 * await engine.remove(id);
 * ```
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, watch } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, errorMessage, silentLogger, type Logger } from '@shoal/common';
import {
  ContainerNotFoundError,
  ContainerStateError,
  NameInUseError,
  NetnsGoneError,
  RuncFailedError,
  VolumeInUseError,
} from './errors.js';
import { ImageService } from './image/image-service.js';
import type { ResolvedImage } from './image/types.js';
import { mergeHealthcheck, mergeProcess, normaliseSignal, recordNetwork, validateCreate } from './container/config.js';
import { defaultHostname } from './spec/build-spec.js';
import { ContainerStore } from './container/store.js';
import type {
  ContainerCreateOptions,
  ContainerRecord,
  ContainerStats,
  ContainerSummary,
  ExitStatus,
} from './container/types.js';
import { ContainerMonitor, leaseMine, newLease, removeBundle } from './monitor/container-monitor.js';
import { leaseLive } from './monitor/verdict.js';
import { selfIdentity } from './monitor/proc.js';
import { readLogs, type LogEntry, type ReadLogsOptions } from './logs/reader.js';
import { defaultShimPath, readExitFile, spawnShim, type ShimHandle } from './monitor/shim.js';
import type { BundleBuilder, BundleRequest } from './runtime/bundle.js';
import { RestartSupervisor } from './container/supervisor.js';
import { ANONYMOUS_LABEL, VolumeStore } from './volume/volume-store.js';
import { ociBundleBuilder } from './runtime/oci-bundle.js';
import { Runc, type RuncExecOptions, type RuncExecResult } from './runtime/runc.js';
import { runtimeDirs, type RuntimeDirs } from './runtime/runtime-dir.js';

/** Where images come from: the image service (or anything with the same `resolve`). */
export interface ImageResolver {
  resolve(ref: string): Promise<ResolvedImage>;
  /** Keeps images from removal between resolve() and the container record being written. */
  lease?(): Promise<{ release(): void }>;
}

export interface EngineOptions {
  /** Persistent state: container records and logs. */
  dataRoot: string;
  /**
   * Runtime state on tmpfs, default /run/shoal/engine. Each data root gets its own dir below it
   * (`<runRoot>/<key>/{bundles,runc}`), so data roots sharing a run root never touch each other.
   */
  runRoot?: string;
  /** Default: the image service (`ImageService`) on the same data root. */
  images?: ImageResolver;
  bundles?: BundleBuilder;
  runcPath?: string;
  shimPath?: string;
  /** cgroup parent of every container, default `/shoal`. */
  cgroupParent?: string;
  /**
   * Take the collector role of the data root (shoald sets it): collect exits as they happen and
   * run health checks. One process holds the role at a time; another waits on standby. Default
   * false: the daemonless CLI collects only what it touches and what is provably dead.
   */
  collector?: boolean;
  /**
   * Carry out the containers' restart policies while this engine holds the collector role
   * (shoald sets it; see container/supervisor.ts). Without it nothing is restarted, as with
   * Docker when dockerd is not running.
   */
  supervise?: boolean;
  /**
   * For a restart by policy (`supervise`) of a container whose network namespace is gone (a
   * swarm network attachment given back when a user stopped it, then shoald restarted: Docker
   * starts `always` containers at daemon start): attaches it again and says where it starts
   * (shoald sets it; it may wait for the node's session with a manager). Without it such a
   * restart is refused with a log line and the container stays stopped.
   */
  rejoin?: (rec: ContainerRecord) => Promise<StartOptions>;
  /** @deprecated the former name of `collector`. */
  background?: boolean;
  /**
   * Recover at open (default true): settle every record, i.e. collect what is provably dead and
   * finish or undo what a killed engine process left. False opens for observing only.
   */
  recover?: boolean;
  logger?: Logger;
}

/** Optional callbacks of one create or run (not stored: the record keeps the options only). */
export interface MakeHooks {
  /**
   * Awaited after the bundle (rootfs, mounts, /etc files) is ready and before runc runs: a caller
   * finishes what the container needs at start (e.g. its network namespace's interfaces) meanwhile.
   * A rejection fails the create and removes everything made.
   */
  beforeRuntime?: () => Promise<void>;
  /** Told when a step ends: `bundle` (rootfs mounted, config written), `runtime` (runc ran). */
  phase?: (name: 'bundle' | 'runtime') => void;
  /**
   * With `autoRemove`: this process will `wait(id, {removed: true})` for the container, which
   * then removes it itself. Registered in the record before the container starts, so no other
   * process (shoald's collector) removes it first and takes its exit status along.
   */
  waiter?: boolean;
}

/** What a start may change of an exited container before it runs again. */
export interface StartOptions {
  /**
   * Another network namespace (and its DNS and /etc/hosts entries) for an exited container
   * (refused for a created one, which runc made in its namespace already): its earlier one is
   * gone, e.g. a swarm network attachment given back when it stopped. The keys given replace
   * the kept create options, for this start and later ones.
   */
  rejoin?: Pick<ContainerCreateOptions, 'network' | 'dns' | 'dnsSearch' | 'dnsOptions' | 'extraHosts'>;
  /** Labels to set (or replace) with `rejoin`, e.g. the new attachment's ID. */
  labels?: Record<string, string>;
}

export interface StopOptions {
  /** Grace period before SIGKILL; default the container's stop timeout (10 s). */
  timeoutMs?: number;
  /** Signal to send first; default the container's stop signal. */
  signal?: string;
}

const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
const DEFAULT_LOG_MAX_FILES = 3;

export class Engine {
  readonly store: ContainerStore;
  readonly runc: Runc;
  readonly runRoot: string;
  /** This data root's own runtime dirs below the run root. */
  readonly runtime: RuntimeDirs;
  private readonly bundles: BundleBuilder;
  private readonly shimPath: string;
  private readonly log: Logger;
  private readonly monitor: ContainerMonitor;
  /** Named local volumes on this data root (Docker's local driver). */
  readonly volumes: VolumeStore;
  private supervisor: RestartSupervisor | undefined;

  private constructor(
    private readonly opts: EngineOptions,
    runtime: RuntimeDirs,
    store: ContainerStore,
  ) {
    this.store = store;
    this.runRoot = opts.runRoot ?? '/run/shoal/engine';
    this.runtime = runtime;
    this.runc = new Runc(opts.runcPath ?? '/usr/sbin/runc', runtime.runcRoot);
    this.bundles =
      opts.bundles ??
      ociBundleBuilder({ dataRoot: opts.dataRoot, cgroupParent: opts.cgroupParent ?? '/shoal', logger: opts.logger });
    this.shimPath = opts.shimPath ?? defaultShimPath();
    this.log = opts.logger ?? silentLogger();
    this.monitor = new ContainerMonitor({
      store: this.store,
      runc: this.runc,
      bundles: this.bundles,
      log: this.log,
      dataRoot: opts.dataRoot,
      runtimeDir: runtime.dir,
      onExit: (rec) => this.supervisor?.exited(rec),
      removeVolumes: (rec) => this.removeAnonymousVolumes(rec),
    });
    this.volumes = new VolumeStore(opts.dataRoot, async () => {
      const used = new Map<string, string[]>();
      for (const r of await this.store.all()) {
        for (const v of r.volumes ?? []) used.set(v.name, [...(used.get(v.name) ?? []), r.id]);
      }
      return used;
    });
  }

  /** Opens the engine on its data root; recovers what crashed processes left; takes the collector role if asked. */
  static async open(opts: EngineOptions): Promise<Engine> {
    const store = new ContainerStore(opts.dataRoot);
    await store.init();
    const runtime = await runtimeDirs(opts.runRoot ?? '/run/shoal/engine', opts.dataRoot);
    const e = new Engine(opts, runtime, store);
    if (opts.recover !== false) await e.monitor.recover();
    if (opts.collector ?? opts.background ?? false) {
      if (opts.supervise) {
        e.supervisor = new RestartSupervisor({
          store: e.store,
          collecting: () => e.collecting,
          restart: (id, reset) => e.restartSupervised(id, reset),
          log: e.log,
        });
      }
      await e.monitor.startCollector();
      e.supervisor?.start();
    }
    return e;
  }

  /** Stops watching and health checks and gives the collector role up. Containers keep running. */
  close(): Promise<void> {
    this.supervisor?.close();
    this.monitor.close();
    return Promise.resolve();
  }

  /** True while this engine holds the collector role of its data root. */
  get collecting(): boolean {
    return this.monitor.collecting;
  }

  private imageService: ImageService | undefined;

  /** The images containers are made from: the given resolver, else the image service on the data root. */
  images(): ImageResolver {
    if (this.opts.images) return this.opts.images;
    return this.localImages();
  }

  /** The image service on this data root (pull, load, list); it asks us which images are in use. */
  localImages(): ImageService {
    if (!this.imageService) {
      this.imageService = new ImageService({ root: this.opts.dataRoot, logger: this.log });
      this.imageService.setInUseHook(async () => {
        const used = new Map<string, string[]>();
        for (const r of await this.store.all()) used.set(r.imageId, [...(used.get(r.imageId) ?? []), r.name]);
        return used;
      });
    }
    return this.imageService;
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Creates a container (runc create under its monitor); its init waits for `start`. */
  create(options: ContainerCreateOptions, hooks?: MakeHooks): Promise<string> {
    return this.make(options, 'create', hooks);
  }

  /** Creates and starts a container in one runc call; resolves once it runs. */
  run(options: ContainerCreateOptions, hooks?: MakeHooks): Promise<string> {
    return this.make(options, 'run', hooks);
  }

  private async make(options: ContainerCreateOptions, mode: 'run' | 'create', hooks?: MakeHooks): Promise<string> {
    validateCreate(options);
    // `shoal image rm`/gc in another process must not delete the image before our record names it
    const lease = await this.images().lease?.();
    try {
      return await this.makeLeased(options, mode, () => lease?.release(), hooks);
    } finally {
      lease?.release();
    }
  }

  /**
   * The create path. The record is written first, whole, with a `create` lease of this process;
   * then the name is reserved, the shim spawned and its pid recorded (before runc runs), the
   * bundle prepared, runc run, and the lease dropped. If this process dies at any point, the
   * record tells recovery what to do: adopt the container if its shim lives, else remove every
   * trace. Nothing here takes a lock shared with other containers, so concurrent creates in one
   * process overlap completely.
   */
  private async makeLeased(
    options: ContainerCreateOptions,
    mode: 'run' | 'create',
    recorded: () => void,
    hooks: MakeHooks = {},
  ): Promise<string> {
    const image = await this.images().resolve(options.image);
    const id = randomBytes(32).toString('hex');
    const hostname = defaultHostname(id, options.hostname, options.network);
    const proc = mergeProcess(options, image.config, hostname);
    const healthcheck = mergeHealthcheck(options.healthcheck, image.config.Healthcheck);
    const stopSignal = normaliseSignal(options.stopSignal ?? image.config.StopSignal ?? 'SIGTERM', 'stop-signal');
    const name = options.name ?? `shoal-${id.slice(0, 12)}`;
    const dir = this.store.dir(id);
    const bundle = join(this.runtime.bundles, id);
    const volumes = (options.volumes ?? []).map((v) => ({
      name: v.source ?? randomBytes(32).toString('hex'),
      target: v.target,
      ...(v.readOnly ? { readOnly: true } : {}),
      ...(v.source === undefined ? { anonymous: true } : {}),
    }));
    const { secrets, ...kept } = options;
    const rec: ContainerRecord = {
      id,
      name,
      image: image.ref,
      imageId: image.id,
      created: new Date().toISOString(),
      process: proc,
      labels: { ...(image.config.Labels ?? {}), ...(options.labels ?? {}) },
      status: 'created',
      lease: newLease('create', mode),
      stopSignal,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      autoRemove: options.autoRemove ?? false,
      ...(hooks.waiter && options.autoRemove
        ? { waiter: { pid: selfIdentity().pid, start: selfIdentity().start } }
        : {}),
      ...(healthcheck ? { healthcheck } : {}),
      limits: { memoryBytes: options.memoryBytes, cpus: options.cpus, pidsLimit: options.pidsLimit },
      readOnly: options.readOnly ?? false,
      binds: options.binds ?? [],
      tmpfs: options.tmpfs ?? [],
      ...(volumes.length ? { volumes } : {}),
      ...(options.restartPolicy && options.restartPolicy.name !== 'no'
        ? { restartPolicy: options.restartPolicy, restartCount: 0 }
        : {}),
      // kept to start it again after it exited; not when its secrets (never stored) would be missing
      ...(secrets?.length ? {} : { createOptions: kept }),
      network: recordNetwork(options, hostname),
      bundle,
      rootfs: join(bundle, 'rootfs'),
      cgroupsPath: `${this.opts.cgroupParent ?? '/shoal'}/${id}`,
      logPath: join(dir, 'container.log'),
      logMaxBytes: options.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
      logMaxFiles: options.logMaxFiles ?? DEFAULT_LOG_MAX_FILES,
    };
    this.store.create(rec);
    recorded();
    let shim: ShimHandle | undefined;
    try {
      await this.reserveName(name, id);
      mkdirSync(bundle, { recursive: true });
      // the monitor starts while the rootfs is mounted; it runs runc once told to go
      shim = spawnShim({
        shimPath: this.shimPath,
        runcPath: this.runc.binary,
        runcRoot: this.runc.root,
        id,
        bundle,
        dir,
        mode,
        logMaxBytes: rec.logMaxBytes,
        logMaxFiles: rec.logMaxFiles,
      });
      rec.shimPid = shim.shimPid;
      rec.shimStart = shim.shimStart;
      this.store.write(rec); // before runc runs: recovery must be able to find the shim
      await this.bundles.prepare({
        id,
        bundle,
        stateDir: dir,
        layerDirs: image.layerDirs,
        imageConfig: image.config,
        process: proc,
        options,
        hostname,
        cgroupsPath: rec.cgroupsPath,
        volumes: await this.mountVolumes(rec, options),
      });
      hooks.phase?.('bundle');
      if (hooks.beforeRuntime) await hooks.beforeRuntime();
      shim.go();
      const started = await shim.ready;
      hooks.phase?.('runtime');
      rec.pid = started.pid;
      if (mode === 'run') {
        rec.status = 'running';
        rec.startedAt = new Date().toISOString();
        if (healthcheck) rec.health = { status: 'starting', failingStreak: 0, log: [] };
      }
      delete rec.lease;
      this.store.write(rec);
    } catch (err) {
      // nothing may be left behind: monitor, runc state, mounts, cgroup, bundle, state dir, name
      shim?.abort();
      await this.monitor
        .remove(rec)
        .catch((e: unknown) => this.log.warn({ err: e, id }, 'cleanup after a failed create'));
      throw err;
    }
    this.log.debug({ id, name, mode }, 'container created');
    this.monitor.track(rec);
    return id;
  }

  /** Reserves the name; a holder that a killed engine left half made is settled (and so freed) first. */
  private async reserveName(name: string, id: string): Promise<void> {
    try {
      await this.store.reserveName(name, id);
    } catch (err) {
      if (!(err instanceof NameInUseError)) throw err;
      const holder = await this.store.nameHolder(name);
      if (!holder) throw err;
      try {
        await this.monitor.settle(await this.store.read(holder));
      } catch (e) {
        if (!(e instanceof ContainerNotFoundError)) throw e;
        await this.store.reserveName(name, id); // the holder was removed: the name is free
        return;
      }
      throw err;
    }
  }

  /** The record, settled if it is provably dead or abandoned; throws if another process is changing it. */
  private async settled(ref: string, what: string): Promise<ContainerRecord> {
    const id = await this.store.resolve(ref);
    const rec = await this.monitor.settle(await this.store.read(id));
    if (rec.lease && leaseLive(rec.lease) && !leaseMine(rec.lease)) {
      throw new ContainerStateError(id, 'busy', `process ${rec.lease.pid} is doing ${rec.lease.op}; cannot ${what}`);
    }
    return rec;
  }

  /**
   * Starts a created container, or one that exited (as `docker start`: the same container, its
   * filesystem and volumes, under a new monitor). A user's start forgets an earlier stop and
   * the restart count, as Docker's. `opts.rejoin`: see StartOptions.
   */
  async start(ref: string, opts: StartOptions = {}): Promise<void> {
    const rec = await this.settled(ref, 'start');
    if (rec.status === 'exited') {
      await this.restartExited(rec.id, { reset: true, ...opts });
      return;
    }
    if (opts.rejoin || opts.labels)
      throw new ContainerStateError(rec.id, rec.status, 'only an exited container can change its network at start');
    if (rec.status !== 'created')
      throw new ContainerStateError(rec.id, rec.status, 'only a created container can be started');
    const lease = newLease('start');
    const held = await this.store.update(rec.id, (r) => {
      if (r.status !== 'created' || r.lease) return false;
      r.lease = lease;
    });
    if (held.lease !== undefined && held.lease.since !== lease.since) {
      throw new ContainerStateError(rec.id, 'busy', `process ${held.lease.pid} is doing ${held.lease.op}`);
    }
    if (held.status !== 'created')
      throw new ContainerStateError(rec.id, held.status, 'only a created container can be started');
    try {
      await this.runc.start(rec.id);
    } catch (err) {
      await this.store.update(rec.id, (r) => {
        if (!leaseMine(r.lease)) return false;
        delete r.lease;
      });
      throw err;
    }
    const next = await this.store.update(rec.id, (r) => {
      r.status = 'running';
      r.startedAt = new Date().toISOString();
      if (r.healthcheck) r.health = { status: 'starting', failingStreak: 0, log: [] };
      delete r.lease;
    });
    this.monitor.track(next);
  }

  /**
   * Sends the stop signal, waits the grace period, then SIGKILL; resolves once it exited. An
   * auto-remove container may be removed by the collector (shoald) as soon as it exited, before
   * this call sees the exit: that is a stop as asked too (undefined: its status went with it).
   */
  async stop(ref: string, opts: StopOptions = {}): Promise<ExitStatus | undefined> {
    const rec = await this.settled(ref, 'stop');
    try {
      return await this.stopSettled(rec, opts);
    } catch (err) {
      if (!(err instanceof ContainerNotFoundError || err instanceof RuncFailedError)) throw err;
      // removed meanwhile, or signalled after another process collected its exit (runc forgot it)
      const now = await this.store.read(rec.id).catch(notFound);
      if (now === undefined && rec.autoRemove) {
        this.log.debug({ id: rec.id }, 'stopped, and removed meanwhile (auto-remove)');
        return undefined;
      }
      if (now?.status === 'exited') return this.exitOf(now);
      throw err;
    }
  }

  private async stopSettled(settled: ContainerRecord, opts: StopOptions): Promise<ExitStatus | undefined> {
    let rec = settled;
    const id = rec.id;
    // a user's stop: no restart policy brings it back while the supervisor runs (Docker's rule)
    if (!rec.manuallyStopped) {
      rec = await this.store.update(id, (r) => {
        r.manuallyStopped = true;
      });
    }
    if (rec.status === 'exited') return this.exitOf(rec);
    if (rec.status === 'created') {
      await this.runc.delete(id, true);
      return this.wait(id);
    }
    const signal = normaliseSignal(opts.signal ?? rec.stopSignal);
    const grace = opts.timeoutMs ?? rec.stopTimeoutMs;
    if (grace > 0) {
      await this.runc.kill(id, signal);
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), grace);
      try {
        return await this.wait(id, { signal: ac.signal });
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      } finally {
        clearTimeout(timer);
      }
      this.log.info({ id, grace }, 'grace period over: SIGKILL');
    }
    await this.runc.kill(id, 'SIGKILL');
    return this.wait(id);
  }

  /** Sends a signal to the container's init. */
  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const rec = await this.settled(ref, 'kill');
    if (rec.status !== 'running')
      throw new ContainerStateError(rec.id, rec.status, 'cannot signal a container that is not running');
    await this.runc.kill(rec.id, normaliseSignal(signal));
  }

  /**
   * Removes a container (state, logs, rootfs); a running one only with `force` (it is killed).
   * Holds a `remove` lease: if this process dies meanwhile, the next engine finishes the removal.
   */
  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const id = await this.store.resolve(ref);
    let rec: ContainerRecord;
    try {
      rec = await this.settled(id, 'remove');
    } catch (err) {
      if (err instanceof ContainerNotFoundError) return; // settling removed it (--rm, an abandoned removal)
      throw err;
    }
    if (rec.status === 'running' && !opts.force)
      throw new ContainerStateError(id, 'running', 'stop it first or remove with force');
    const lease = newLease('remove');
    const held = await this.store.update(id, (r) => {
      if (leaseLive(r.lease)) return false;
      if (r.status === 'running' && !opts.force) return false;
      r.lease = lease;
    });
    if (held.lease?.since !== lease.since || !leaseMine(held.lease)) {
      if (held.status === 'running' && !opts.force)
        throw new ContainerStateError(id, 'running', 'stop it first or remove with force');
      throw new ContainerStateError(id, 'busy', `process ${held.lease?.pid ?? '?'} is doing ${held.lease?.op ?? '?'}`);
    }
    await this.monitor.remove(held, { volumes: opts.volumes ?? false });
  }

  /**
   * Resolves when the container has exited (at once if it has). With `removed` (Docker's wait
   * condition "removed"), an auto-remove container is also removed before it resolves: by this
   * call when this process registered as its waiter at create (`MakeHooks.waiter`), so the exit
   * status is never lost to another process's removal; else by whoever removes it.
   */
  async wait(ref: string, opts: { signal?: AbortSignal; removed?: boolean } = {}): Promise<ExitStatus> {
    const id = await this.store.resolve(ref);
    const exit = await this.waitExit(id, opts);
    if (opts.removed) await this.removeAfterWait(id);
    return exit;
  }

  /** The auto-remove of `wait(id, {removed: true})`: done here, or by another process meanwhile. */
  private async removeAfterWait(id: string): Promise<void> {
    for (;;) {
      let rec: ContainerRecord;
      try {
        rec = await this.store.read(id);
      } catch (err) {
        if (err instanceof ContainerNotFoundError) return;
        throw err;
      }
      if (!rec.autoRemove) return;
      if (!leaseLive(rec.lease)) {
        try {
          await this.remove(id, { volumes: true });
          return;
        } catch (err) {
          if (err instanceof ContainerNotFoundError) return;
          if (!(err instanceof ContainerStateError && err.state === 'busy')) throw err;
        }
      }
      // another process is removing it (a user's rm -f): done when the record is gone
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async waitExit(id: string, opts: { signal?: AbortSignal }): Promise<ExitStatus> {
    const dir = this.store.dir(id);
    for (;;) {
      let rec: ContainerRecord;
      try {
        rec = await this.monitor.settle(await this.store.read(id));
      } catch (err) {
        if (!(err instanceof ContainerNotFoundError)) throw err;
        // removed meanwhile (auto-remove): report what the shim recorded, if we saw it
        const exit = await readExitFile(dir).catch((e: unknown) => {
          if (errnoCode(e) === 'ENOTDIR') return undefined;
          throw e;
        });
        if (exit) return { exitCode: exit.exitCode, signal: exit.signal, oomKilled: false };
        throw err;
      }
      if (rec.status === 'exited') return this.exitOf(rec);
      opts.signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        let w: { close(): void } | undefined;
        const finish = (): void => {
          clearTimeout(t);
          w?.close();
          opts.signal?.removeEventListener('abort', finish);
          resolve();
        };
        const t = setTimeout(finish, 500);
        try {
          const fw = watch(dir, (_ev, file) => {
            if (file === 'exit.json') finish();
          });
          fw.on('error', finish); // the dir went away: look again at once
          w = fw;
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err; // removed meanwhile: the next read says so
        }
        opts.signal?.addEventListener('abort', finish, { once: true });
      });
    }
  }

  /**
   * Starts an exited container again: the same record, rootfs (upper dir), volumes, logs and
   * cgroup path, with a new shim. Holds a `start` lease from the first write; the record reads
   * `created` until runc ran, so if this process dies meanwhile, settling finds the truth (the
   * new shim's exit, an adoption, or an exit with code 255). `reset`: a user's start, or a start
   * when the supervisor begins (Docker's daemon start): clears the stop mark and the restart
   * count. Else a restart after an exit: refused once a user stopped it, counts one more.
   */
  async restartExited(ref: string, opts: { reset?: boolean } & StartOptions = {}): Promise<void> {
    const id = await this.store.resolve(ref);
    const lease = newLease('start', 'run');
    const held = await this.store.update(id, (r) => {
      if (r.status !== 'exited' || leaseLive(r.lease) || !r.createOptions) return false;
      if (!opts.reset && r.manuallyStopped) return false;
      r.lease = lease;
      r.status = 'created';
      for (const k of [
        'pid',
        'shimPid',
        'shimStart',
        'exitCode',
        'signal',
        'oomKilled',
        'monitorLost',
        'collector',
      ] as const)
        delete r[k];
      delete r.health;
      if (opts.rejoin && r.createOptions) {
        r.createOptions = { ...r.createOptions, ...opts.rejoin };
        const hostname =
          r.network?.hostname ?? defaultHostname(r.id, r.createOptions.hostname, r.createOptions.network);
        r.network = recordNetwork(r.createOptions, hostname);
      }
      if (opts.labels) {
        r.labels = { ...r.labels, ...opts.labels };
        if (r.createOptions) r.createOptions.labels = { ...r.createOptions.labels, ...opts.labels };
      }
      if (opts.reset) {
        r.manuallyStopped = false;
        if (r.restartPolicy) r.restartCount = 0;
      } else {
        r.restartCount = (r.restartCount ?? 0) + 1;
      }
      // the last run's exit record must not be taken for this run's
      rmSync(join(this.store.dir(r.id), 'exit.json'), { force: true });
    });
    if (held.lease?.since !== lease.since || !leaseMine(held.lease)) {
      if (held.status === 'exited' && held.manuallyStopped && !opts.reset && held.createOptions)
        throw new ContainerStateError(id, 'exited', 'stopped by a user: not restarted');
      if (held.status !== 'exited')
        throw new ContainerStateError(id, held.status, 'only a created or exited container can be started');
      if (!held.createOptions)
        throw new ContainerStateError(
          id,
          'exited',
          'its create options were not kept (made by an older engine, or with secrets): create it again',
        );
      throw new ContainerStateError(id, 'busy', `process ${held.lease?.pid ?? '?'} is doing ${held.lease?.op ?? '?'}`);
    }
    const options = held.createOptions as ContainerCreateOptions;
    const dir = this.store.dir(id);
    let shim: ShimHandle | undefined;
    let rec = held;
    try {
      const image = await this.images().resolve(held.imageId);
      mkdirSync(held.bundle, { recursive: true });
      shim = spawnShim({
        shimPath: this.shimPath,
        runcPath: this.runc.binary,
        runcRoot: this.runc.root,
        id,
        bundle: held.bundle,
        dir,
        mode: 'run',
        logMaxBytes: held.logMaxBytes,
        logMaxFiles: held.logMaxFiles,
      });
      const s = shim;
      rec = await this.store.update(id, (r) => {
        r.shimPid = s.shimPid;
        r.shimStart = s.shimStart;
      });
      await this.bundles.prepare({
        id,
        bundle: held.bundle,
        stateDir: dir,
        layerDirs: image.layerDirs,
        imageConfig: image.config,
        process: held.process,
        options,
        hostname: held.network?.hostname ?? defaultHostname(id, options.hostname, options.network),
        cgroupsPath: held.cgroupsPath,
        volumes: await this.mountVolumes(held, options),
      });
      shim.go();
      const started = await shim.ready;
      rec = await this.store.update(id, (r) => {
        r.pid = started.pid;
        r.status = 'running';
        r.startedAt = new Date().toISOString();
        delete r.finishedAt;
        if (r.healthcheck) r.health = { status: 'starting', failingStreak: 0, log: [] };
        delete r.lease;
      });
    } catch (err) {
      shim?.abort();
      // back to exited, with everything this attempt made undone
      await this.runc
        .delete(id, true)
        .catch((e: unknown) => this.log.warn({ err: e, id }, 'runc delete after a failed start'));
      await this.bundles
        .release(rec)
        .then(() => removeBundle(rec.bundle))
        .catch((e: unknown) => this.log.warn({ err: e, id }, 'cleanup after a failed start'));
      await this.store.update(id, (r) => {
        r.status = 'exited';
        r.exitCode = 128;
        r.finishedAt = new Date().toISOString();
        delete r.lease;
      });
      throw err;
    }
    this.log.info({ id, restartCount: rec.restartCount, reset: opts.reset ?? false }, 'container started again');
    this.monitor.track(rec);
  }

  /**
   * A restart by the supervisor. A container whose network namespace (`ns:PATH`) is gone cannot
   * start there: with the `rejoin` option it is attached again first, in the background (the
   * supervisor goes on with the others; a failure is logged and the container stays stopped),
   * without it the restart is refused (NetnsGoneError, logged) and the record is unchanged.
   */
  private async restartSupervised(id: string, reset: boolean): Promise<void> {
    const rec = await this.store.read(id);
    const mode = rec.createOptions?.network;
    const path = typeof mode === 'object' ? mode.path : undefined;
    if (path === undefined || existsSync(path)) return this.restartExited(id, { reset });
    const rejoin = this.opts.rejoin;
    if (rejoin === undefined) {
      const err = new NetnsGoneError(id, path);
      this.log.warn({ id, netns: path }, `not restarted: ${err.message}`);
      throw err;
    }
    this.log.info({ id, netns: path }, 'its network namespace is gone: attaching it again before the restart');
    void rejoin(rec)
      .then((opts) => this.restartExited(id, { reset, ...opts }))
      .then(() => this.log.info({ id }, 'restarted on its networks again'))
      .catch((err: unknown) =>
        this.log.warn({ id, err: errorMessage(err) }, 'not restarted: cannot attach it to its networks again'),
      );
  }

  /**
   * Sets (a string) or removes (undefined) labels of a container in any state, in its record and
   * its kept create options (so a later start keeps them). For what the container is part of
   * elsewhere, e.g. the swarm networks shoald connected it to (`network connect`), which
   * `container start` attaches again. Runtime settings do not change.
   */
  async setLabels(ref: string, labels: Record<string, string | undefined>): Promise<void> {
    const id = await this.store.resolve(ref);
    const apply = (to: Record<string, string>): Record<string, string> => {
      const out = { ...to };
      for (const [k, v] of Object.entries(labels)) {
        if (v === undefined) delete out[k];
        else out[k] = v;
      }
      return out;
    };
    await this.store.update(id, (r) => {
      r.labels = apply(r.labels);
      if (r.createOptions) r.createOptions.labels = apply(r.createOptions.labels ?? {});
    });
  }

  /**
   * A named local volume, created with `opts` when it does not exist (the worker calls this
   * for a task's volume mounts). Returns the volume and whether it was created now.
   */
  ensureVolume(name: string, opts: { labels?: Record<string, string>; driverOpts?: Record<string, string> } = {}) {
    return this.volumes.ensure(name, opts);
  }

  /** After a removal with `volumes` (or auto-remove): its anonymous volumes go too, unless another container uses them. */
  private async removeAnonymousVolumes(rec: ContainerRecord): Promise<void> {
    for (const v of rec.volumes ?? []) {
      if (!v.anonymous) continue;
      await this.volumes.remove(v.name, { force: true }).catch((err: unknown) => {
        if (!(err instanceof VolumeInUseError)) throw err;
      });
    }
  }

  /** Ensures the record's volumes exist (and their devices are mounted); the dirs to bind. */
  private async mountVolumes(
    rec: ContainerRecord,
    options: ContainerCreateOptions,
  ): Promise<NonNullable<BundleRequest['volumes']>> {
    const out: NonNullable<BundleRequest['volumes']> = [];
    for (const [i, v] of (rec.volumes ?? []).entries()) {
      const asked = options.volumes?.[i];
      const labels = { ...(asked?.labels ?? {}), ...(v.anonymous ? { [ANONYMOUS_LABEL]: '' } : {}) };
      await this.volumes.ensure(v.name, { labels, ...(asked?.driverOpts ? { driverOpts: asked.driverOpts } : {}) });
      const dir = await this.volumes.mountpoint(v.name);
      out.push({ dir, target: v.target, readOnly: v.readOnly, copyUp: !asked?.noCopy });
    }
    return out;
  }

  private exitOf(rec: ContainerRecord): ExitStatus {
    return { exitCode: rec.exitCode ?? 255, oomKilled: rec.oomKilled ?? false, signal: rec.signal ?? 0 };
  }

  // ---- observing: no side effects ---------------------------------------------------------

  /** The container's full record as it truly is now (see monitor/verdict.ts); writes nothing. */
  async inspect(ref: string): Promise<ContainerRecord> {
    const id = await this.store.resolve(ref);
    return this.monitor.observe(await this.store.read(id));
  }

  /** Every container (running ones only unless `all`); writes nothing. */
  async list(opts: { all?: boolean } = {}): Promise<ContainerSummary[]> {
    const out: ContainerSummary[] = [];
    for (const r of await this.store.all()) {
      const rec = await this.monitor.observe(r);
      if (!opts.all && rec.status !== 'running') continue;
      out.push({
        id: rec.id,
        name: rec.name,
        image: rec.image,
        status: rec.status,
        created: rec.created,
        startedAt: rec.startedAt,
        finishedAt: rec.finishedAt,
        exitCode: rec.exitCode,
        health: rec.health?.status,
        command: rec.process.args.join(' '),
      });
    }
    return out.sort((a, b) => b.created.localeCompare(a.created));
  }

  /** The container's output; with `follow`, until it exits (or the signal aborts). */
  async *logs(ref: string, opts: Omit<ReadLogsOptions, 'doneFile'> = {}): AsyncGenerator<LogEntry> {
    const id = await this.store.resolve(ref);
    const rec = await this.store.read(id);
    yield* readLogs(rec.logPath, { ...opts, doneFile: join(this.store.dir(id), 'exit.json') });
  }

  /** Runs a command inside a running container. */
  async exec(ref: string, argv: string[], opts: RuncExecOptions = {}): Promise<RuncExecResult> {
    const rec = await this.inspect(ref);
    if (rec.status !== 'running') throw new ContainerStateError(rec.id, rec.status, 'exec needs a running container');
    return this.runc.exec(rec.id, argv, opts);
  }

  /** CPU and memory from the container's cgroup. */
  async stats(ref: string): Promise<ContainerStats> {
    const rec = await this.inspect(ref);
    if (rec.status !== 'running') throw new ContainerStateError(rec.id, rec.status, 'no stats for a stopped container');
    return this.bundles.stats(rec);
  }
}

/** Undefined for a record that is gone; any other error is thrown on. */
function notFound(err: unknown): undefined {
  if (err instanceof ContainerNotFoundError) return undefined;
  throw err;
}
