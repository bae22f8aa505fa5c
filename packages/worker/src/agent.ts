/**
 * The node agent: applies the dispatcher's assignments (a complete set, then incremental
 * changes) to one TaskRunner per task, keeps the secrets and configs the tasks use in memory only
 * (they reach the container through the engine's per-container tmpfs), and reports task states
 * through a batching StatusReporter.
 *
 * On start it finds the containers an earlier agent made (label `com.docker.swarm.task.id`), so
 * after a restart of shoald a task's running container is followed again, not started twice.
 * Once the first complete set has arrived, containers of tasks the manager no longer assigns are
 * stopped and removed.
 */
import {
  isTerminalTaskState,
  type AssignmentsMessage,
  type Config,
  type Node,
  type Secret,
  type Task,
  type TaskStatus,
} from '@shoal/api';
import { errorMessage, type Logger } from '@shoal/common';
import { ContainerNotFoundError, type ContainerCreateOptions, type Engine } from '@shoal/engine';
import { taskContainerOptions } from './container-options.js';
import { AssignmentsSequenceError } from './errors.js';
import type { DispatcherLink } from './dispatcher-link.js';
import { LABEL_TASK_ID } from './labels.js';
import { ImagePuller } from './image-puller.js';
import { NetworkController, type NodeNetworkOptions, type SandboxPrep } from './network/network-controller.js';
import { StatusReporter } from './status-reporter.js';
import { TaskRunner } from './task-runner.js';
import type { NodeInfo } from './template.js';

export interface AgentOptions {
  engine: Engine;
  /** This node: its ID (labels, templates) and hostname. */
  node: NodeInfo;
  logger: Logger;
  /** Registries this node may reach over plain HTTP (the daemon's `--insecure-registry`). */
  insecureRegistries?: () => string[];
  /**
   * Overlay networking on this node (its VTEP, a host tag for namespace names, the gateway
   * subnet). Without it tasks get the engine's default network (loopback only).
   */
  network?: Omit<NodeNetworkOptions, 'nodeId' | 'logger'>;
  /** How long a successful pull of an image is reused by later tasks (ms; image-puller.ts). */
  pullFreshMs?: number;
}

export class Agent {
  readonly reporter: StatusReporter;
  /** The node's overlay networking, when the agent has it. */
  readonly network: NetworkController | undefined;
  /** Pulls shared by the tasks of a node (one per image in flight, reused briefly). */
  readonly puller: ImagePuller;
  private readonly runners = new Map<string, TaskRunner>();
  private readonly secrets = new Map<string, Secret>();
  private readonly configs = new Map<string, Config>();
  /** Containers of earlier agents by task ID, until a runner takes them or the first complete set drops them. */
  private adopted = new Map<string, string>();
  private sawComplete = false;
  private stopped = false;
  private readonly log: Logger;
  /** Serialises assignment messages (and stop) so that a change never overtakes another. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
    this.reporter = new StatusReporter(opts.logger);
    this.puller = new ImagePuller({
      engine: opts.engine,
      logger: opts.logger,
      ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
      ...(opts.pullFreshMs !== undefined ? { freshMs: opts.pullFreshMs } : {}),
    });
    this.network = opts.network
      ? new NetworkController({ ...opts.network, nodeId: opts.node.id, logger: opts.logger })
      : undefined;
  }

  /** The node as the managers see it (each session message): its VTEP and ingress address. */
  setNode(node: Node): void {
    this.network?.setNode(node);
  }

  /** Finds the task containers already on the engine (after a restart). */
  async start(): Promise<void> {
    const found = new Map<string, { id: string; running: boolean }>();
    for (const c of await this.opts.engine.list({ all: true })) {
      let labels: Record<string, string>;
      try {
        labels = (await this.opts.engine.inspect(c.id)).labels;
      } catch (err) {
        if (err instanceof ContainerNotFoundError) continue; // removed meanwhile
        throw err;
      }
      const taskId = labels[LABEL_TASK_ID];
      if (!taskId) continue;
      const prev = found.get(taskId);
      if (!prev || (!prev.running && c.status === 'running'))
        found.set(taskId, { id: c.id, running: c.status === 'running' });
    }
    this.adopted = new Map([...found].map(([task, c]) => [task, c.id]));
    if (this.adopted.size > 0)
      this.log.info({ containers: this.adopted.size }, 'found task containers of an earlier agent');
  }

  /**
   * Runs one session: applies its assignments until the stream ends or `signal` aborts, and sends
   * status updates through it meanwhile. Rejects with the stream's error.
   */
  async runSession(link: DispatcherLink, signal: AbortSignal): Promise<void> {
    this.reporter.attach(link);
    let holds = '';
    try {
      for await (const msg of link.assignments(signal)) {
        if (this.stopped) break;
        // A change that does not apply to what we hold means a lost message: end the session, the
        // next one starts with a complete set.
        if (msg.Type !== 'complete' && msg.AppliesTo && holds && msg.AppliesTo !== holds) {
          throw new AssignmentsSequenceError(msg.AppliesTo, holds);
        }
        holds = msg.ResultsIn ?? '';
        await this.enqueue(() => Promise.resolve(this.apply(msg)));
      }
    } finally {
      this.reporter.detach(link);
    }
  }

  /** Stops following tasks; containers keep running (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.enqueue(async () => {
      await Promise.all([...this.runners.values()].map((r) => r.close({ remove: false })));
      this.runners.clear();
      await this.network?.close();
    });
  }

  /** The runners' observed states by task ID (for status and tests). */
  states(): Map<string, string> {
    return new Map([...this.runners].map(([id, r]) => [id, r.observedState]));
  }

  /** The container of a task, when it has one. */
  containerOf(taskId: string): string | undefined {
    return this.runners.get(taskId)?.container;
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn);
    this.chain = next.catch((err: unknown) =>
      this.log.error({ err: errorMessage(err) }, 'applying assignments failed'),
    );
    return next;
  }

  private apply(msg: AssignmentsMessage): void {
    const changes = msg.Changes ?? [];
    const complete = msg.Type === 'complete';
    if (complete) {
      this.secrets.clear();
      this.configs.clear();
    }
    // networks, secrets and configs first: the tasks of the same message use them
    this.network?.applyChanges(changes, complete);
    for (const c of changes) {
      const a = c.Assignment ?? {};
      const remove = c.Action === 'remove';
      if (a.Secret?.ID) {
        if (remove) this.secrets.delete(a.Secret.ID);
        else this.secrets.set(a.Secret.ID, a.Secret);
      }
      if (a.Config?.ID) {
        if (remove) this.configs.delete(a.Config.ID);
        else this.configs.set(a.Config.ID, a.Config);
      }
    }
    const seen = new Set<string>();
    const gone: TaskRunner[] = [];
    for (const c of changes) {
      const task = c.Assignment?.Task;
      if (!task?.ID) continue;
      if (c.Action === 'remove') {
        const r = this.runners.get(task.ID);
        if (r) {
          this.runners.delete(task.ID);
          gone.push(r);
        }
        continue;
      }
      seen.add(task.ID);
      this.upsert(task);
    }
    if (complete) {
      for (const [id, r] of this.runners) {
        if (seen.has(id)) continue;
        this.runners.delete(id);
        gone.push(r);
      }
    }
    // Tasks removed from the node: their containers go (within their grace period), in the background.
    for (const r of gone) void this.retire(r);
    if (complete && !this.sawComplete) {
      this.sawComplete = true;
      const orphans = [...this.adopted].filter(([task]) => !this.runners.has(task));
      this.adopted.clear();
      for (const [task, container] of orphans) void this.removeOrphan(task, container);
    }
  }

  private upsert(task: Task): void {
    const id = task.ID!;
    const r = this.runners.get(id);
    if (r) {
      r.update(task);
      return;
    }
    const adopted = this.adopted.get(id);
    this.adopted.delete(id);
    const runner = new TaskRunner(
      {
        engine: this.opts.engine,
        log: this.log,
        report: (taskId, status) => this.report(taskId, status),
        pull: (image, auth, signal) => this.puller.pull(image, auth, signal),
        network: (t) => (this.network?.needsSandbox(t) ? this.network.prepare(t) : undefined),
        createOptions: (t, net) => this.createOptions(t, net),
        ...(this.network ? { servedThroughService: (t: Task) => this.network?.servedThroughService(t) ?? true } : {}),
      },
      task,
      adopted,
    );
    if (adopted) {
      this.log.info({ task: id, container: adopted }, 'adopted the running container of the task');
      this.network
        ?.adopt(task)
        .catch((err: unknown) =>
          this.log.error({ task: id, err: errorMessage(err) }, 'cannot take back the network sandbox of the task'),
        );
    }
    this.runners.set(id, runner);
    runner.start();
  }

  private async retire(r: TaskRunner): Promise<void> {
    try {
      await r.close({ remove: true });
    } catch (err) {
      this.log.error({ task: r.taskId, err: errorMessage(err) }, 'cannot remove the container of a removed task');
    }
    await this.releaseNetwork(r.taskId);
  }

  /** A runner's report: to the managers, and to the network (published ports, sandbox removal). */
  private report(taskId: string, status: TaskStatus): void {
    this.reporter.report(taskId, status);
    const state = status.State ?? '';
    if (state === 'running') this.network?.setRunning(taskId, true);
    else if (isTerminalTaskState(state)) void this.releaseNetwork(taskId);
  }

  private async releaseNetwork(taskId: string): Promise<void> {
    try {
      await this.network?.release(taskId);
    } catch (err) {
      this.log.error({ task: taskId, err: errorMessage(err) }, 'cannot remove the network sandbox of a task');
    }
  }

  private async removeOrphan(task: string, container: string): Promise<void> {
    const engine = this.opts.engine;
    try {
      this.log.info({ task, container }, 'the manager no longer assigns this task: removing its container');
      const rec = await engine.inspect(container);
      if (rec.status === 'running') await engine.stop(container);
      await engine.remove(container, { force: true });
    } catch (err) {
      if (err instanceof ContainerNotFoundError) return;
      this.log.error({ task, container, err: errorMessage(err) }, 'cannot remove an unassigned task container');
    }
  }

  private async createOptions(task: Task, sandbox: SandboxPrep | undefined): Promise<ContainerCreateOptions> {
    const spec = task.Spec?.ContainerSpec;
    // A healthcheck that sets only durations runs the image's test.
    const imageHealthcheck =
      spec?.Healthcheck && !spec.Healthcheck.Test?.length
        ? (await this.opts.engine.images().resolve(spec.Image ?? '')).config.Healthcheck
        : undefined;
    const opts = taskContainerOptions({
      task,
      node: this.opts.node,
      secret: (id) => this.secrets.get(id),
      config: (id) => this.configs.get(id),
      imageHealthcheck,
    });
    if (!sandbox) return opts;
    const net = await sandbox.options;
    const ownDns = Boolean(spec?.DNSConfig?.Nameservers?.length);
    return {
      ...opts,
      network: net.create.network,
      ...(ownDns
        ? {}
        : {
            dns: net.create.dns,
            ...(opts.dnsSearch ? {} : net.create.dnsSearch ? { dnsSearch: net.create.dnsSearch } : {}),
            ...(opts.dnsOptions ? {} : { dnsOptions: net.create.dnsOptions }),
          }),
      extraHosts: [
        ...(opts.extraHosts ?? []),
        ...(opts.hostname ? net.addresses.map((ip) => ({ host: opts.hostname ?? '', ip })) : []),
      ],
    };
  }
}
