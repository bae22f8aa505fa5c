/**
 * One assigned task on this node, reconciled with the engine by a loop of its own: it prepares
 * (pull, create options), runs the container, follows it (exit, health) and stops it when the
 * desired state says so, reporting each state it reaches once and only forward (ACCEPTED,
 * PREPARING, READY, STARTING, RUNNING, then COMPLETE, FAILED or SHUTDOWN). A change of the
 * desired state wakes the loop; a status echo from the manager does not.
 */
import { performance } from 'node:perf_hooks';
import { isTerminalTaskState, taskStateRank, type ContainerStatus, type Task, type TaskStatus } from '@shoal/api';
import { errorMessage, type Logger } from '@shoal/common';
import { ContainerNotFoundError, NameInUseError, type ContainerCreateOptions, type Engine } from '@shoal/engine';
import { LABEL_TASK_ID } from './labels.js';
import type { SandboxPrep } from './network/network-controller.js';
import { hostPortsOf } from './network/network-views.js';
import { StartTrace } from './start-trace.js';
import { containerName } from './template.js';

/** What a runner needs from its agent. */
export interface RunnerContext {
  engine: Engine;
  log: Logger;
  report(taskId: string, status: TaskStatus): void;
  /** Pulls the image (with the service's registry auth); resolves when it is in the local store. */
  pull(image: string, registryAuth: string, signal: AbortSignal): Promise<void>;
  /**
   * Starts making the task's network sandbox, if it needs one (it is made while the image is
   * pulled and the container's bundle prepared; the container starts once it is ready).
   */
  network?(task: Task): SandboxPrep | undefined;
  /** The engine create options for the task (labels, mounts, secrets...; in its sandbox, if any). */
  createOptions(task: Task, net: SandboxPrep | undefined): Promise<ContainerCreateOptions>;
  /**
   * Whether other nodes may still send the task new connections through its service (its VIP or
   * names are still on one of its networks). Absent: assumed so.
   */
  servedThroughService?(task: Task): boolean;
}

/**
 * How long a running task on a network keeps running once it is asked to stop, before its container
 * gets the stop signal. The dispatcher takes it out of every VIP, DNS answer and routing-mesh
 * rule as soon as its desired state leaves running, but each node applies that in its own time:
 * stopping at once lets other nodes still send new connections to it (Docker waits 2 s too).
 * Not waited when its service is gone (`servedThroughService`): no other task is left to take
 * those connections, so the wait would serve no one (Docker waits even then).
 */
export const NETWORK_CONVERGE_MS = 2000;

/** How often a container with a healthcheck is looked at while it runs. */
const HEALTH_POLL_MS = 500;

/** Desired states that mean "not running any more". */
export function wantsStop(desired: string | undefined): boolean {
  return desired === 'shutdown' || desired === 'remove';
}

export class TaskRunner {
  private task: Task;
  /** The furthest state known: ours or the manager's. */
  private state: string;
  private containerId: string | undefined;
  private wake = new AbortController();
  private closed = false;
  private readonly closing = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly trace: StartTrace;

  constructor(
    private readonly ctx: RunnerContext,
    task: Task,
    adoptedContainer?: string,
  ) {
    this.task = task;
    this.state = task.Status?.State ?? 'assigned';
    this.containerId = adoptedContainer;
    this.log = ctx.log.child({ task: task.ID, name: containerName(task) });
    this.trace = new StartTrace(this.log);
  }

  get taskId(): string {
    return this.task.ID ?? '';
  }

  /** The furthest state this runner knows of. */
  get observedState(): string {
    return this.state;
  }

  get container(): string | undefined {
    return this.containerId;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** A new version of the task from the dispatcher. */
  update(task: Task): void {
    const before = this.task.DesiredState;
    this.task = task;
    const st = task.Status?.State;
    if (st && taskStateRank(st) > taskStateRank(this.state)) this.state = st;
    if (task.DesiredState !== before) this.wake.abort();
  }

  /**
   * Ends the loop. With `remove` (the task left the assignments) the container is stopped
   * within its grace period and removed; without (the agent stops) it keeps running.
   */
  async close(opts: { remove: boolean }): Promise<void> {
    this.closed = true;
    this.closing.abort();
    this.wake.abort();
    await this.loop;
    if (opts.remove && this.containerId) await this.removeContainer(this.containerId);
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const wake = (this.wake = new AbortController());
      try {
        await this.step(wake.signal);
      } catch (err) {
        if (!wake.signal.aborted) this.fail(err);
        else this.log.debug({ err: errorMessage(err) }, 'interrupted by a change: looking again');
      }
      if (this.closed) break;
      if (!wake.signal.aborted) {
        await new Promise<void>((resolve) => wake.signal.addEventListener('abort', () => resolve(), { once: true }));
      }
    }
  }

  /** One pass: do what the desired state asks; returns when nothing more is to be done until a change. */
  private async step(signal: AbortSignal): Promise<void> {
    if (wantsStop(this.task.DesiredState)) return this.shutdown();
    if (isTerminalTaskState(this.state)) return this.stopIfRunning();
    if (!this.containerId && taskStateRank(this.state) >= taskStateRank('starting')) {
      // The manager saw it start, but its container is gone (removed while shoald was down):
      // running it again here would be a second run of the slot behind the manager's back.
      this.advance('failed', 'lost', undefined, 'task: its container is gone from this node');
      return;
    }
    // DesiredState READY (SwarmKit): prepare and create, start only once it becomes RUNNING.
    const startNow = this.task.DesiredState !== 'ready';
    if (!this.containerId) await this.prepareAndRun(signal, startNow);
    if (!startNow) return;
    await this.follow(signal);
  }

  private async prepareAndRun(signal: AbortSignal, start: boolean): Promise<void> {
    const t = this.task;
    const spec = t.Spec?.ContainerSpec ?? {};
    this.advance('accepted', 'accepted');
    this.advance('preparing', 'preparing');
    const net = this.ctx.network?.(t);
    await this.ctx.pull(spec.Image ?? '', spec.PullOptions?.RegistryAuth ?? '', signal);
    this.trace.mark('pulled');
    signal.throwIfAborted();
    const opts = await this.ctx.createOptions(t, net);
    this.trace.mark('options');
    this.advance('ready', 'prepared');
    signal.throwIfAborted();
    const hooks = {
      phase: (p: 'bundle' | 'runtime') => this.trace.mark(p),
      ...(net
        ? {
            beforeRuntime: async () => {
              await net.ready;
              this.trace.mark('sandbox');
            },
          }
        : {}),
    };
    try {
      this.containerId = start ? await this.ctx.engine.run(opts, hooks) : await this.ctx.engine.create(opts, hooks);
    } catch (err) {
      if (!(err instanceof NameInUseError)) throw err;
      // A container of this very task (made by an earlier agent) holds the name: follow it.
      const rec = await this.ctx.engine.inspect(opts.name ?? '');
      if (rec.labels[LABEL_TASK_ID] !== t.ID) throw err;
      this.containerId = rec.id;
    }
    this.log.info({ container: this.containerId, started: start }, 'task container made');
  }

  /** Follows the running container until it exits (or turns unhealthy), reporting RUNNING on the way. */
  private async follow(signal: AbortSignal): Promise<void> {
    const engine = this.ctx.engine;
    const id = this.containerId!;
    for (;;) {
      let rec;
      try {
        rec = await engine.inspect(id);
      } catch (err) {
        if (!(err instanceof ContainerNotFoundError)) throw err;
        this.containerId = undefined;
        this.advance('failed', 'removed', { ContainerID: id }, `task: container ${id.slice(0, 12)} was removed`);
        return;
      }
      const cs: ContainerStatus = { ContainerID: id, PID: rec.pid ?? 0 };
      if (rec.status === 'exited') {
        const exit = await engine.wait(id);
        const done = { ...cs, PID: 0, ExitCode: exit.exitCode };
        if (exit.exitCode === 0) this.advance('complete', 'finished', done);
        else this.advance('failed', 'started', done, `task: non-zero exit (${exit.exitCode})`);
        return;
      }
      if (rec.status === 'created') {
        await engine.start(id);
        continue;
      }
      const health = rec.healthcheck ? (rec.health?.status ?? 'starting') : undefined;
      if (health === 'unhealthy') {
        this.advance('failed', 'unhealthy', cs, 'task: unhealthy container');
        await this.stopContainer(id);
        return;
      }
      this.advance('starting', 'starting', cs);
      if (health === undefined || health === 'healthy') this.advance('running', 'started', cs);
      const poll = rec.healthcheck ? AbortSignal.timeout(HEALTH_POLL_MS) : undefined;
      try {
        await engine.wait(id, { signal: poll ? AbortSignal.any([signal, poll]) : signal });
      } catch (err) {
        if (signal.aborted || !poll?.aborted) throw err;
      }
    }
  }

  /**
   * Desired SHUTDOWN/REMOVE: stop within the grace period (the container's stop signal), report
   * SHUTDOWN. A task that was running on a network first waits `NETWORK_CONVERGE_MS`, for every node
   * to have taken it out of its VIPs (the wait ends early if the loop is closed), unless its
   * service is gone. With REMOVE the container is removed right after (the manager deletes the task
   * once it knows it stopped, and nothing reads a removed task's container).
   */
  private async shutdown(): Promise<void> {
    let cs: ContainerStatus | undefined;
    if (
      this.containerId &&
      this.state === 'running' &&
      (this.task.NetworksAttachments ?? []).length > 0 &&
      (this.ctx.servedThroughService?.(this.task) ?? true)
    ) {
      this.log.info({ waitMs: NETWORK_CONVERGE_MS }, 'leaving the VIPs before the container stops');
      await this.pause(NETWORK_CONVERGE_MS);
    }
    if (this.containerId) {
      const exit = await this.stopContainer(this.containerId);
      cs = { ContainerID: this.containerId, PID: 0, ...(exit ? { ExitCode: exit } : {}) };
    }
    if (!isTerminalTaskState(this.state)) this.advance('shutdown', 'shutdown', cs);
    if (this.task.DesiredState === 'remove' && this.containerId) await this.removeContainer(this.containerId);
  }

  /** Waits `ms`, or less if the runner is closed meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.closing.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }

  /** A task already over (as we or the manager know it) must not keep a running container. */
  private async stopIfRunning(): Promise<void> {
    if (this.containerId) await this.stopContainer(this.containerId);
  }

  /** Stops the container if it runs (grace period and signal from its record); its exit code, if known. */
  private async stopContainer(id: string): Promise<number | undefined> {
    try {
      const rec = await this.ctx.engine.inspect(id);
      if (rec.status === 'exited') return rec.exitCode;
      this.log.info({ container: id, graceMs: rec.stopTimeoutMs, signal: rec.stopSignal }, 'stopping task container');
      const t0 = performance.now();
      const exit = await this.ctx.engine.stop(id);
      this.log.info(
        { container: id, exitCode: exit?.exitCode, ms: Math.round(performance.now() - t0) },
        'task container stopped',
      );
      return exit?.exitCode;
    } catch (err) {
      if (!(err instanceof ContainerNotFoundError)) throw err;
      if (this.containerId === id) this.containerId = undefined;
      return undefined;
    }
  }

  private async removeContainer(id: string): Promise<void> {
    await this.stopContainer(id);
    try {
      await this.ctx.engine.remove(id, { force: true });
      this.log.info({ container: id }, 'task container removed');
    } catch (err) {
      if (!(err instanceof ContainerNotFoundError)) throw err;
    }
    this.containerId = undefined;
  }

  private fail(err: unknown): void {
    const msg = errorMessage(err);
    this.log.warn({ err: msg, state: this.state }, 'task failed');
    if (wantsStop(this.task.DesiredState)) this.advance('shutdown', 'shutdown', undefined, msg);
    else this.advance('failed', this.state, undefined, msg);
  }

  /** Reports `state` if it is further than what is known; states never move back. */
  private advance(state: string, message: string, cs?: ContainerStatus, err?: string): void {
    if (taskStateRank(state) <= taskStateRank(this.state)) return;
    if (isTerminalTaskState(this.state)) return;
    this.state = state;
    if (state === 'running') {
      this.trace.mark('running');
      this.trace.done('running');
    } else if (isTerminalTaskState(state)) this.trace.done(state);
    // a running task shows the ports its node publishes for it (`service ps` PORTS), as Docker's executor does
    const hostPorts = state === 'running' ? hostPortsOf(this.task.Endpoint?.Ports) : [];
    this.ctx.report(this.taskId, {
      Timestamp: new Date().toISOString(),
      State: state,
      Message: message,
      ...(err !== undefined ? { Err: err } : {}),
      ...(cs ? { ContainerStatus: cs } : {}),
      ...(hostPorts.length > 0 ? { PortStatus: { Ports: hostPorts } } : {}),
    });
  }
}
