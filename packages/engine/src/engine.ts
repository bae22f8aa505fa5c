/**
 * The engine facade: containers from images, run by runc under one `shoal-shim` monitor each.
 *
 * State lives in files (see container/store.ts), so several processes may open the same data root
 * (shoald and a daemonless `shoal container ...`); read-modify-write of a record happens under an
 * flock. The shim owns the container's output and exit status, so containers keep running and
 * logging while no engine runs; `Engine.open` adopts them again. With `background: true` (shoald,
 * tests) the engine also collects exits as they happen and runs health checks.
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
import { mkdirSync, watch } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@shoal/common';
import { ContainerStateError } from './errors.js';
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
import { ContainerMonitor, removeBundle } from './monitor/container-monitor.js';
import { readLogs, type LogEntry, type ReadLogsOptions } from './logs/reader.js';
import { defaultShimPath, readExitFile, spawnShim, type ShimHandle } from './monitor/shim.js';
import type { BundleBuilder } from './runtime/bundle.js';
import { ociBundleBuilder } from './runtime/oci-bundle.js';
import { Runc, type RuncExecOptions, type RuncExecResult } from './runtime/runc.js';

/** Where images come from: the image service (or anything with the same `resolve`). */
export interface ImageResolver {
  resolve(ref: string): Promise<ResolvedImage>;
  /** Keeps images from removal between resolve() and the container record being written. */
  lease?(): Promise<{ release(): void }>;
}

export interface EngineOptions {
  /** Persistent state: container records and logs. */
  dataRoot: string;
  /** Runtime state on tmpfs: bundles and the runc root. Default /run/shoal/engine. */
  runRoot?: string;
  /** Default: the image service (`ImageService`) on the same data root. */
  images?: ImageResolver;
  bundles?: BundleBuilder;
  runcPath?: string;
  shimPath?: string;
  /** cgroup parent of every container, default `/shoal`. */
  cgroupParent?: string;
  /** Collect exits as they happen and run health checks (a long-lived engine). Default true. */
  background?: boolean;
  logger?: Logger;
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
  private readonly bundles: BundleBuilder;
  private readonly shimPath: string;
  private readonly log: Logger;
  private readonly monitor: ContainerMonitor;

  private constructor(private readonly opts: EngineOptions) {
    this.store = new ContainerStore(opts.dataRoot);
    this.runRoot = opts.runRoot ?? '/run/shoal/engine';
    this.runc = new Runc(opts.runcPath ?? '/usr/sbin/runc', join(this.runRoot, 'runc'));
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
      runRoot: this.runRoot,
      background: opts.background ?? true,
    });
  }

  /** Opens the engine on its data root and adopts the containers found there. */
  static async open(opts: EngineOptions): Promise<Engine> {
    const e = new Engine(opts);
    await e.store.init();
    await mkdir(join(e.runRoot, 'bundles'), { recursive: true });
    await mkdir(e.runc.root, { recursive: true });
    await e.monitor.adopt();
    e.monitor.start();
    return e;
  }

  /** Stops watching and health checks. Containers keep running. */
  close(): Promise<void> {
    this.monitor.close();
    return Promise.resolve();
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
  create(options: ContainerCreateOptions): Promise<string> {
    return this.make(options, 'create');
  }

  /** Creates and starts a container in one runc call; resolves once it runs. */
  run(options: ContainerCreateOptions): Promise<string> {
    return this.make(options, 'run');
  }

  private async make(options: ContainerCreateOptions, mode: 'run' | 'create'): Promise<string> {
    validateCreate(options);
    // `shoal image rm`/gc in another process must not delete the image before our record names it
    const lease = await this.images().lease?.();
    try {
      return await this.makeLeased(options, mode, () => lease?.release());
    } finally {
      lease?.release();
    }
  }

  private async makeLeased(
    options: ContainerCreateOptions,
    mode: 'run' | 'create',
    recorded: () => void,
  ): Promise<string> {
    const image = await this.images().resolve(options.image);
    const id = randomBytes(32).toString('hex');
    const hostname = defaultHostname(id, options.hostname, options.network);
    const proc = mergeProcess(options, image.config, hostname);
    const healthcheck = mergeHealthcheck(options.healthcheck, image.config.Healthcheck);
    const stopSignal = normaliseSignal(options.stopSignal ?? image.config.StopSignal ?? 'SIGTERM', 'stop-signal');
    const name = options.name ?? `shoal-${id.slice(0, 12)}`;
    const dir = this.store.dir(id);
    const bundle = join(this.runRoot, 'bundles', id);
    const rec: ContainerRecord = {
      id,
      name,
      image: image.ref,
      imageId: image.id,
      created: new Date().toISOString(),
      process: proc,
      labels: { ...(image.config.Labels ?? {}), ...(options.labels ?? {}) },
      status: 'created',
      stopSignal,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      autoRemove: options.autoRemove ?? false,
      ...(healthcheck ? { healthcheck } : {}),
      limits: { memoryBytes: options.memoryBytes, cpus: options.cpus, pidsLimit: options.pidsLimit },
      readOnly: options.readOnly ?? false,
      binds: options.binds ?? [],
      tmpfs: options.tmpfs ?? [],
      network: recordNetwork(options, hostname),
      bundle,
      rootfs: join(bundle, 'rootfs'),
      cgroupsPath: `${this.opts.cgroupParent ?? '/shoal'}/${id}`,
      logPath: join(dir, 'container.log'),
      logMaxBytes: options.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
      logMaxFiles: options.logMaxFiles ?? DEFAULT_LOG_MAX_FILES,
    };
    await this.store.reserveName(name, id);
    let prepared = false;
    let shim: ShimHandle | undefined;
    try {
      mkdirSync(dir);
      await this.store.write(rec); // before the bundle exists: adopt() treats bundles without state as debris
      recorded();
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
      });
      prepared = true;
      shim.go();
      const started = await shim.ready;
      rec.pid = started.pid;
      rec.shimPid = started.shimPid;
      rec.shimStart = started.shimStart;
      if (mode === 'run') {
        rec.status = 'running';
        rec.startedAt = new Date().toISOString();
        if (healthcheck) rec.health = { status: 'starting', failingStreak: 0, log: [] };
      }
      await this.store.write(rec);
    } catch (err) {
      // nothing may be left behind: monitor, runc state, mounts, bundle, state dir, name
      shim?.abort();
      await this.runc.delete(id, true).catch(() => undefined);
      if (prepared) await this.bundles.release(rec).catch(() => undefined);
      await removeBundle(bundle).catch((e: unknown) => this.log.warn({ err: e, id }, 'cleanup after a failed create'));
      await this.store.destroy(rec);
      throw err;
    }
    this.log.debug({ id, name, mode }, 'container created');
    if (mode === 'run') this.monitor.track(rec);
    return id;
  }

  /** Starts a created container. */
  async start(ref: string): Promise<void> {
    const id = await this.store.resolve(ref);
    const rec = await this.monitor.refresh(await this.store.read(id));
    if (rec.status !== 'created')
      throw new ContainerStateError(id, rec.status, 'only a created container can be started');
    await this.runc.start(id);
    const next = await this.store.update(id, (r) => {
      r.status = 'running';
      r.startedAt = new Date().toISOString();
      if (r.healthcheck) r.health = { status: 'starting', failingStreak: 0, log: [] };
    });
    this.monitor.track(next);
  }

  /** Sends the stop signal, waits the grace period, then SIGKILL; resolves once it exited. */
  async stop(ref: string, opts: StopOptions = {}): Promise<ExitStatus | undefined> {
    const id = await this.store.resolve(ref);
    const rec = await this.monitor.refresh(await this.store.read(id));
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
    const id = await this.store.resolve(ref);
    const rec = await this.monitor.refresh(await this.store.read(id));
    if (rec.status !== 'running')
      throw new ContainerStateError(id, rec.status, 'cannot signal a container that is not running');
    await this.runc.kill(id, normaliseSignal(signal));
  }

  /** Removes a container (state, logs, rootfs); a running one only with `force` (it is killed). */
  async remove(ref: string, opts: { force?: boolean } = {}): Promise<void> {
    const id = await this.store.resolve(ref);
    let rec = await this.monitor.refresh(await this.store.read(id));
    if (rec.status === 'running') {
      if (!opts.force) throw new ContainerStateError(id, 'running', 'stop it first or remove with force');
      await this.runc.kill(id, 'SIGKILL');
      await this.wait(id);
    } else if (rec.status === 'created') {
      await this.runc.delete(id, true);
      await this.wait(id);
    }
    rec = await this.store.read(id).catch(() => rec);
    await this.monitor.destroy(rec);
  }

  /** Resolves when the container has exited (at once if it has). */
  async wait(ref: string, opts: { signal?: AbortSignal } = {}): Promise<ExitStatus> {
    const id = await this.store.resolve(ref);
    const dir = this.store.dir(id);
    for (;;) {
      let rec: ContainerRecord;
      try {
        rec = await this.monitor.refresh(await this.store.read(id));
      } catch (err) {
        // removed meanwhile (auto-remove): report what the shim recorded, if we saw it
        const exit = await readExitFile(dir);
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
          w = watch(dir, (_ev, file) => {
            if (file === 'exit.json') finish();
          });
        } catch {
          w = undefined;
        }
        opts.signal?.addEventListener('abort', finish, { once: true });
      });
    }
  }

  private exitOf(rec: ContainerRecord): ExitStatus {
    return { exitCode: rec.exitCode ?? 255, oomKilled: rec.oomKilled ?? false, signal: rec.signal ?? 0 };
  }

  // ---- observing -------------------------------------------------------------------------

  /** The container's full record, brought up to date. */
  async inspect(ref: string): Promise<ContainerRecord> {
    const id = await this.store.resolve(ref);
    return this.monitor.refresh(await this.store.read(id));
  }

  /** Every container (running ones only unless `all`). */
  async list(opts: { all?: boolean } = {}): Promise<ContainerSummary[]> {
    const out: ContainerSummary[] = [];
    for (const r of await this.store.all()) {
      const rec = await this.monitor.refresh(r).catch(() => r);
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
    const id = await this.store.resolve(ref);
    const rec = await this.monitor.refresh(await this.store.read(id));
    if (rec.status !== 'running') throw new ContainerStateError(id, rec.status, 'exec needs a running container');
    return this.runc.exec(id, argv, opts);
  }

  /** CPU and memory from the container's cgroup. */
  async stats(ref: string): Promise<ContainerStats> {
    const id = await this.store.resolve(ref);
    const rec = await this.monitor.refresh(await this.store.read(id));
    if (rec.status !== 'running') throw new ContainerStateError(id, rec.status, 'no stats for a stopped container');
    return this.bundles.stats(rec);
  }
}
