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
  CONNECTED_NETWORKS_LABEL,
  formatConnectedNetworks,
  isTerminalTaskState,
  parseConnectedNetworks,
  withConnectedNetwork,
  type AssignmentsMessage,
  type Config,
  type ConnectedNetwork,
  type Node,
  type Secret,
  type Task,
  type TaskStatus,
} from '@shoal/api';
import { errorMessage, type Logger } from '@shoal/common';
import { existsSync } from 'node:fs';
import { ContainerNotFoundError, type ContainerCreateOptions, type Engine } from '@shoal/engine';
import { AttachmentRunner, holdsSandbox, isAttachmentTask } from './attachment-runner.js';
import { taskContainerOptions } from './container-options.js';
import {
  AssignmentsSequenceError,
  ConnectUnsupportedError,
  EndpointNotFoundError,
  NetworkAttachmentError,
  NotConnectedError,
} from './errors.js';
import type { DispatcherLink } from './dispatcher-link.js';
import { LABEL_TASK_ID } from './labels.js';
import { ImagePuller } from './image-puller.js';
import {
  NetworkController,
  type NodeNetworkOptions,
  type SandboxPrep,
  type TaskNetworkOptions,
} from './network/network-controller.js';
import { sandboxName } from './network/task-sandbox.js';
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
  /**
   * How long a network attachment's sandbox may wait for its container (ms, default
   * ATTACHMENT_CLAIM_MS) before the agent ends the attachment: the CLI that asked died.
   */
  attachmentClaimMs?: number;
  /** How often the agent looks which attachment sandboxes have a container (ms, default 1000). */
  attachmentPollMs?: number;
}

/** Default of AgentOptions.attachmentClaimMs. */
export const ATTACHMENT_CLAIM_MS = 60_000;
/** How long `attachNetwork` waits for the sandbox before it gives the attachment back. */
const ATTACH_WAIT_MS = 60_000;
/** How long `detachNetwork` waits for the node to remove the sandbox. */
const DETACH_WAIT_MS = 15_000;

/** What the CLI needs to run a container in a network attachment (`container run --network`). */
export interface NetworkAttachmentResult {
  attachmentId: string;
  netnsPath: string;
  /** The container's addresses on the network, for /etc/hosts. */
  addresses: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOptions: string[];
}

/** A swarm network a container of this node is on (its network-attachment task). */
export interface ContainerNetwork {
  attachmentId: string;
  networkId: string;
  networkName: string;
  /** CIDR. */
  address: string;
  aliases: string[];
}

/** What the agent runs per task: a container (TaskRunner) or a network attachment. */
interface Runner {
  readonly taskId: string;
  readonly observedState: string;
  readonly container: string | undefined;
  start(): void;
  update(task: Task): void;
  close(opts: { remove: boolean }): Promise<void>;
}

export class Agent {
  readonly reporter: StatusReporter;
  /** The node's overlay networking, when the agent has it. */
  readonly network: NetworkController | undefined;
  /** Pulls shared by the tasks of a node (one per image in flight, reused briefly). */
  readonly puller: ImagePuller;
  private readonly runners = new Map<string, Runner>();
  /** Waiters for an attachment runner not assigned yet (attachNetwork before its assignment). */
  private readonly attachWaiters = new Map<string, (r: AttachmentRunner) => void>();
  /** `network connect` calls in flight: the container's name → the attachment whose sandbox it joins. */
  private readonly connecting = new Map<string, { host: string; calls: number }>();
  private link: DispatcherLink | undefined;
  private claimTimer: NodeJS.Timeout | undefined;
  private claimCheck: Promise<void> | undefined;
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
    this.link = link;
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
      if (this.link === link) this.link = undefined;
    }
  }

  /**
   * `container run --network NAME` on this node: asks the leader for a network-attachment task
   * (an attachable network only), waits for its sandbox and returns what the container is created
   * with. If the sandbox cannot be made (or `signal` aborts), the attachment is given back.
   */
  async attachNetwork(
    req: { target: string; aliases: string[]; containerName: string; sandbox?: string },
    signal?: AbortSignal,
  ): Promise<NetworkAttachmentResult> {
    const link = this.link;
    if (link?.attachNetwork === undefined || link.detachNetwork === undefined || this.network === undefined)
      throw new NotConnectedError('attach a container to a network');
    // `network connect`: a leg in the sandbox of the container's first attachment
    const host = req.sandbox ? this.sandboxHost(req.containerName, req.sandbox) : undefined;
    if (host !== undefined) {
      const c = this.connecting.get(req.containerName) ?? { host, calls: 0 };
      c.calls++;
      this.connecting.set(req.containerName, c);
    }
    let id: string;
    try {
      id = await link.attachNetwork({ Target: req.target, Aliases: req.aliases }, req.containerName);
      if (host !== undefined) this.network.setLegHost(id, host);
    } finally {
      const c = this.connecting.get(req.containerName);
      if (host !== undefined && c !== undefined && --c.calls === 0) this.connecting.delete(req.containerName);
    }
    try {
      const runner = await this.attachmentRunner(id, signal);
      const opts: TaskNetworkOptions = await raceAbort(runner.ready, signal, ATTACH_WAIT_MS, id);
      // a connected network is the container's for good: `container start` attaches it again
      if (host !== undefined)
        await this.recordConnected(req.containerName, (l) =>
          withConnectedNetwork(l, { network: req.target, aliases: req.aliases }),
        );
      const path = opts.create.network;
      return {
        attachmentId: id,
        netnsPath: typeof path === 'object' ? path.path : '',
        addresses: opts.addresses,
        dns: opts.create.dns ?? [],
        dnsSearch: opts.create.dnsSearch ?? [],
        dnsOptions: opts.create.dnsOptions ?? [],
      };
    } catch (err) {
      await link
        .detachNetwork(id)
        .catch((e: unknown) =>
          this.log.warn({ attachment: id, err: errorMessage(e) }, 'cannot give back a failed attachment'),
        );
      throw err;
    }
  }

  /**
   * Gives back a network attachment (`container rm`): the leader deletes the task, and this
   * resolves once the node removed its sandbox (or after a while, when the removal is slow).
   */
  async detachNetwork(attachmentId: string): Promise<void> {
    const link = this.link;
    if (link?.detachNetwork === undefined) throw new NotConnectedError('detach a container from a network');
    // the container goes: its `network connect` legs go with its sandbox, and their addresses too
    const ids = [attachmentId, ...(this.network?.legsOf(attachmentId) ?? [])];
    for (const id of ids) await link.detachNetwork(id);
    const until = Date.now() + DETACH_WAIT_MS;
    while (ids.some((id) => this.runners.has(id)) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await this.network?.settled();
  }

  /**
   * `network disconnect NET CONTAINER`: gives back the container's attachment on that network
   * (network ID, name or ID prefix). Only a `network connect` leg: the first network is the
   * container's sandbox.
   */
  async disconnectNetwork(containerName: string, target: string): Promise<void> {
    const found = this.attachmentsOf(containerName).find(({ runner, task }) => {
      const net = task.NetworksAttachments?.[0]?.Network;
      if (isTerminalTaskState(runner.observedState)) return false; // ended: its container is gone
      return (
        net?.Spec?.Name === target || net?.ID === target || (target.length > 0 && (net?.ID ?? '').startsWith(target))
      );
    });
    if (found === undefined) {
      // a stopped container gave its attachments back: it is disconnected from a kept network
      // (not attached again at its next start), as Docker disconnects a stopped container
      const kept = parseConnectedNetworks(await this.connectedLabel(containerName));
      if (!kept.some((e) => e.network === target)) throw new EndpointNotFoundError(containerName, target);
      await this.recordConnected(containerName, (l) => l.filter((e) => e.network !== target));
      return;
    }
    if (this.network?.legHostOf(found.runner.taskId) === undefined)
      throw new ConnectUnsupportedError(
        `container ${containerName} cannot be disconnected from network ${target}: it is the network the container was started on (its sandbox); remove the container instead`,
      );
    await this.detachNetwork(found.runner.taskId);
    const net = found.task.NetworksAttachments?.[0]?.Network;
    const names = new Set([target, net?.Spec?.Name, net?.ID].filter((n) => n !== undefined && n !== ''));
    await this.recordConnected(containerName, (l) => l.filter((e) => !names.has(e.network)));
  }

  /** The container's label of kept connected networks (undefined: none, or no such container). */
  private async connectedLabel(containerName: string): Promise<string | undefined> {
    try {
      return (await this.opts.engine.inspect(containerName)).labels[CONNECTED_NETWORKS_LABEL];
    } catch (err) {
      if (err instanceof ContainerNotFoundError) return undefined; // removed meanwhile
      throw err;
    }
  }

  /** Rewrites the container's list of connected networks (docs/network.md, "Network connect"). */
  private async recordConnected(
    containerName: string,
    change: (l: ConnectedNetwork[]) => ConnectedNetwork[],
  ): Promise<void> {
    const label = await this.connectedLabel(containerName);
    const next = formatConnectedNetworks(change(parseConnectedNetworks(label)));
    if (next === label) return;
    try {
      await this.opts.engine.setLabels(containerName, { [CONNECTED_NETWORKS_LABEL]: next });
    } catch (err) {
      if (err instanceof ContainerNotFoundError) return; // removed meanwhile: nothing to keep
      throw err;
    }
  }

  /** The swarm networks container `containerName` of this node is on, first network first. */
  containerNetworks(containerName: string): ContainerNetwork[] {
    return this.attachmentsOf(containerName)
      .filter(({ runner }) => !isTerminalTaskState(runner.observedState))
      .map(({ runner, task }) => {
        const att = task.NetworksAttachments?.[0];
        return {
          attachmentId: runner.taskId,
          networkId: att?.Network?.ID ?? '',
          networkName: att?.Network?.Spec?.Name ?? '',
          address: att?.Addresses?.[0] ?? '',
          aliases: [...(att?.Aliases ?? [])],
          leg: this.network?.legHostOf(runner.taskId) !== undefined,
        };
      })
      .sort((a, b) => Number(a.leg) - Number(b.leg))
      .map(({ leg: _leg, ...n }) => n);
  }

  private attachmentsOf(containerName: string): { runner: AttachmentRunner; task: Task }[] {
    return [...this.runners.values()]
      .filter((r): r is AttachmentRunner => r instanceof AttachmentRunner)
      .map((runner) => ({ runner, task: runner.current }))
      .filter(({ task }) => task.Spec?.NetworkAttachmentSpec?.ContainerID === containerName);
  }

  /** The attachment whose sandbox is `path` (container `name`'s namespace), for `network connect`. */
  private sandboxHost(name: string, path: string): string {
    const host = this.attachmentsOf(name).find(
      ({ runner }) =>
        this.network?.legHostOf(runner.taskId) === undefined && this.sandboxPathOf(runner.taskId) === path,
    );
    if (host === undefined)
      throw new ConnectUnsupportedError(
        `container ${name} cannot be connected to another network: it is not on an attachable overlay of this node (start it with --network NET first)`,
      );
    return host.runner.taskId;
  }

  /** The namespace a task's container is in: its own sandbox, or its host's for a `network connect` leg. */
  private sandboxPathOf(taskId: string): string {
    const tag = this.opts.network?.hostTag ?? '';
    return `/run/netns/${sandboxName(tag, this.network?.legHostOf(taskId) ?? taskId)}`;
  }

  /**
   * Whether a new attachment task is a `network connect` leg, and of which attachment: one in
   * flight here (`connecting`), or, after a restart of shoald, a running one without a sandbox of
   * its own while another attachment of the same container has one.
   */
  private legHostFor(task: Task, incoming: readonly Task[]): string | undefined {
    const id = task.ID ?? '';
    const known = this.network?.legHostOf(id);
    if (known !== undefined) return known;
    const name = task.Spec?.NetworkAttachmentSpec?.ContainerID ?? '';
    const c = this.connecting.get(name);
    if (c !== undefined && c.host !== id) return c.host;
    const state = task.Status?.State ?? 'new';
    if (state !== 'running' || existsSync(this.sandboxPathOf(id))) return undefined;
    const others = [
      ...incoming,
      ...[...this.runners.values()].flatMap((r) => (r instanceof AttachmentRunner ? [r.current] : [])),
    ];
    return others.find(
      (t) =>
        t.ID !== id &&
        t.Spec?.NetworkAttachmentSpec?.ContainerID === name &&
        existsSync(`/run/netns/${sandboxName(this.opts.network?.hostTag ?? '', t.ID ?? '')}`),
    )?.ID;
  }

  /** The attachment runner of task `id`, once its assignment has arrived. */
  private attachmentRunner(id: string, signal: AbortSignal | undefined): Promise<AttachmentRunner> {
    const r = this.runners.get(id);
    if (r instanceof AttachmentRunner) return Promise.resolve(r);
    if (r !== undefined) return Promise.reject(new NetworkAttachmentError(id, 'is not a network attachment'));
    const arrived = new Promise<AttachmentRunner>((resolve) => this.attachWaiters.set(id, resolve));
    return raceAbort(arrived, signal, ATTACH_WAIT_MS, id).finally(() => this.attachWaiters.delete(id));
  }

  /** Starts or stops the claim checks of attachment sandboxes (while attachments exist). */
  private armClaims(): void {
    const any = [...this.runners.values()].some((r) => r instanceof AttachmentRunner);
    if (!any || this.stopped) {
      if (this.claimTimer !== undefined) clearInterval(this.claimTimer);
      this.claimTimer = undefined;
      return;
    }
    if (this.claimTimer !== undefined) return;
    this.claimTimer = setInterval(() => {
      this.claimCheck ??= this.checkClaims()
        .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'attachment claim check failed'))
        .finally(() => (this.claimCheck = undefined));
    }, this.opts.attachmentPollMs ?? 1000);
    this.claimTimer.unref();
  }

  /**
   * Which attachment sandboxes a container of the engine holds; the others end
   * (attachment-runner.ts). A container holds its sandbox while it is created or runs, or
   * exited and about to be restarted by its policy; one that stopped gives it back, as Docker
   * releases a container's endpoints at stop (its `container start` attaches again).
   */
  private async checkClaims(): Promise<void> {
    const runners = [...this.runners.values()].filter(
      (r): r is AttachmentRunner => r instanceof AttachmentRunner && r.attached,
    );
    if (runners.length === 0) return;
    const engine = this.opts.engine;
    const used = new Set<string>();
    for (const c of await engine.list({ all: true })) {
      try {
        const rec = await engine.inspect(c.id);
        const mode = rec.network?.mode;
        if (typeof mode === 'object' && holdsSandbox(rec)) used.add(mode.path);
      } catch (err) {
        if (!(err instanceof ContainerNotFoundError)) throw err; // removed meanwhile
      }
    }
    for (const r of runners) {
      if (this.runners.get(r.taskId) !== r) continue;
      await r.checkClaim(used.has(this.sandboxPathOf(r.taskId)), this.opts.attachmentClaimMs ?? ATTACHMENT_CLAIM_MS);
    }
  }

  /** Stops following tasks; containers keep running (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.armClaims();
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
    const gone: Runner[] = [];
    const incoming = changes.flatMap((c) => {
      const t = c.Assignment?.Task;
      return c.Action !== 'remove' && t && isAttachmentTask(t) ? [t] : [];
    });
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
      this.upsert(task, incoming);
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
    this.armClaims();
    if (complete && !this.sawComplete) {
      this.sawComplete = true;
      const orphans = [...this.adopted].filter(([task]) => !this.runners.has(task));
      this.adopted.clear();
      for (const [task, container] of orphans) void this.removeOrphan(task, container);
    }
  }

  private upsert(task: Task, incoming: readonly Task[] = []): void {
    const id = task.ID!;
    const r = this.runners.get(id);
    if (r) {
      r.update(task);
      return;
    }
    if (isAttachmentTask(task) && this.network !== undefined) {
      const host = this.legHostFor(task, incoming);
      if (host !== undefined) this.network.setLegHost(id, host);
      const runner = new AttachmentRunner(
        {
          network: this.network,
          log: this.log,
          report: (taskId, status) => this.report(taskId, status),
          sandboxPath: (taskId) => this.sandboxPathOf(taskId),
          now: () => Date.now(),
        },
        task,
      );
      this.runners.set(id, runner);
      runner.start();
      this.attachWaiters.get(id)?.(runner);
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

  private async retire(r: Runner): Promise<void> {
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

/** `p`, or a rejection when `signal` aborts or `ms` pass first. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined, ms: number, id: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new NetworkAttachmentError(id, `its sandbox was not ready within ${ms / 1000} s`)),
      ms,
    );
    const onAbort = (): void => reject(new NetworkAttachmentError(id, 'the attach request was cancelled'));
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });
  });
}
