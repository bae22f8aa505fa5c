/**
 * Manager: the manager role of a node. It serves Control (nodes and the cluster object), CA,
 * Dispatcher and RaftMembership to the daemon's gRPC server, writes the cluster at `swarm init`,
 * and runs the leader-only loops (dispatcher deadlines and sessions, role manager) while this
 * manager leads: they start on election and stop on step-down (raft.onLeaderChange).
 */
import type { ServerUnaryCall } from '@grpc/grpc-js';
import {
  type CAServer,
  type ClusterSpec,
  type ControlServer,
  defaultClusterSpec,
  DEFAULT_ADDR_POOL,
  DEFAULT_DATA_PATH_PORT,
  DEFAULT_SUBNET_SIZE,
  type DispatcherServer,
  type LogBrokerServer,
  type Cluster,
  type Node,
  type NodeDescription,
  type RaftMembershipServer,
  serverStreamHandler,
  unaryHandler,
} from '@shoal/api';
import { newJoinTokens, type RootCA, UnlockKey } from '@shoal/ca';
import { type Clock, type Logger, silentLogger, systemClock } from '@shoal/common';
import type { LeaderInfo } from '@shoal/raft';
import type { ClusterStore } from '@shoal/store';
import { Allocator } from './allocator.js';
import { CaApi } from './ca-api.js';
import {
  type ManagerContext,
  type RaftLike,
  ReachabilityTracker,
  type StoredCluster,
  type StoredNode,
} from './context.js';
import { clusterView, ControlApi } from './control.js';
import { Dispatcher } from './dispatcher.js';
import { LogBroker, logBrokerServer } from './logbroker.js';
import { ClusterExistsError, InvalidRequestError, NotLeaderError } from './errors.js';
import { type CallerIdentity, type CallLike, identifyCaller } from './identity.js';
import { membership } from './context.js';
import { nodeView } from './nodes.js';
import { checkRaftAddr, RaftMembershipApi } from './raft-membership.js';
import { RoleManager } from './role-manager.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { SecretsConfigsApi } from './services/secrets-configs.js';
import { ServicesApi } from './services/services-api.js';
import { Scheduler } from './scheduler/scheduler.js';
import { NetworkAllocation } from './networks/network-allocation.js';
import { AttachmentReaper, NetworkAttachments } from './networks/attachments.js';
import { NetworksApi } from './networks/networks-api.js';
import { StacksApi } from './stacks/stacks-api.js';
import { ingressNetwork } from './networks/ingress.js';
import { StartTraces } from './start-trace.js';

/** How often the leader samples Raft's view of which managers are active. */
const REACHABILITY_SAMPLE_MS = 200;

export interface ManagerOptions {
  /** This node's ID (also its Raft member ID). */
  readonly nodeId: string;
  readonly store: ClusterStore;
  readonly raft: RaftLike;
  /** The cluster root CA (with its key on managers of a cluster with an internal CA). */
  readonly rootCA: RootCA;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Overrides the cluster's dispatcher heartbeat period (ms); default the cluster's, else 5 s. */
  readonly heartbeatPeriodMs?: number;
  /** Who is calling; default: the verified peer certificate (see identity.ts). */
  readonly identify?: (call: CallLike) => CallerIdentity;
}

export interface BootstrapOptions {
  /** This manager's advertised Raft/cluster address, host:port. */
  readonly advertiseAddr: string;
  readonly clusterId: string;
  /** This manager's certificate (PEM), recorded in its Node object. */
  readonly nodeCertPem?: string;
  readonly description?: NodeDescription;
  /** `swarm init --autolock`: the unlock key to record (default a new one). */
  readonly autolock?: boolean;
  readonly unlockKey?: UnlockKey;
  /** `--cert-expiry` in ms (default 90 days). */
  readonly certExpiryMs?: number;
  /** Spec fields to set over Docker's defaults. */
  readonly spec?: ClusterSpec;
  readonly defaultAddrPool?: readonly string[];
  readonly subnetSize?: number;
  readonly dataPathPort?: number;
  /**
   * Make the `ingress` network (Docker always does) from the cluster's pool. Off by default here
   * so that clusters made without a test pool never hold the 10.0.0.0/8 default.
   */
  readonly ingress?: boolean;
  /** Longest wait for this manager to become leader of its new Raft group (default 10 s). */
  readonly leaderTimeoutMs?: number;
}

export interface BootstrapResult {
  readonly cluster: Cluster;
  readonly node: Node;
  /** Set when autolock is on: show it to the user (`SWMKEY-1-...`). */
  readonly unlockKey?: string;
}

export interface ManagerServices {
  readonly Control: ControlServer;
  readonly CA: CAServer;
  readonly Dispatcher: DispatcherServer;
  readonly LogBroker: LogBrokerServer;
  readonly RaftMembership: RaftMembershipServer;
}

export class Manager {
  readonly ctx: ManagerContext;
  readonly control: ControlApi;
  readonly ca: CaApi;
  readonly dispatcher: Dispatcher;
  readonly raftMembership: RaftMembershipApi;
  readonly roles: RoleManager;
  readonly servicesApi: ServicesApi;
  readonly secretsConfigs: SecretsConfigsApi;
  readonly orchestrator: Orchestrator;
  readonly allocator: Allocator;
  readonly scheduler: Scheduler;
  private readonly startTraces: StartTraces;
  readonly logBroker: LogBroker;
  readonly networkAllocation: NetworkAllocation;
  /** Plain containers' attachments to attachable networks (Dispatcher.AttachNetwork). */
  readonly attachments: NetworkAttachments;
  readonly attachmentReaper: AttachmentReaper;
  readonly networksApi: NetworksApi;
  readonly stacksApi: StacksApi;
  private readonly identifyFn: (call: CallLike) => CallerIdentity;
  private unsubscribe: (() => void) | undefined;
  private leading = false;
  private sampler: NodeJS.Timeout | undefined;

  constructor(opts: ManagerOptions) {
    this.ctx = {
      nodeId: opts.nodeId,
      store: opts.store,
      raft: opts.raft,
      rootCA: opts.rootCA,
      logger: opts.logger ?? silentLogger(),
      clock: opts.clock ?? systemClock,
      heartbeatPeriodMs: opts.heartbeatPeriodMs,
      reachability: new ReachabilityTracker(),
    };
    this.dispatcher = new Dispatcher(this.ctx);
    this.control = new ControlApi(this.ctx, (id) => this.dispatcher.dropNode(id));
    this.ca = new CaApi(this.ctx);
    this.raftMembership = new RaftMembershipApi(this.ctx);
    this.roles = new RoleManager(this.ctx);
    this.servicesApi = new ServicesApi(this.ctx);
    this.secretsConfigs = new SecretsConfigsApi(this.ctx);
    this.orchestrator = new Orchestrator(this.ctx);
    this.networkAllocation = new NetworkAllocation(this.ctx);
    this.networksApi = new NetworksApi(this.ctx, this.networkAllocation);
    this.stacksApi = new StacksApi(this.ctx, this.networkAllocation);
    this.allocator = new Allocator(this.ctx, undefined, this.networkAllocation);
    this.attachments = new NetworkAttachments(this.ctx, this.networkAllocation);
    this.attachmentReaper = new AttachmentReaper(this.ctx);
    this.scheduler = new Scheduler(this.ctx);
    this.logBroker = new LogBroker(this.ctx);
    this.startTraces = new StartTraces(this.ctx);
    this.identifyFn =
      opts.identify ??
      ((call) => identifyCaller(call, this.ctx.rootCA.certPem, this.ctx.store.list<StoredCluster>('cluster')[0]?.ID));
  }

  isLeader(): boolean {
    return this.ctx.raft.leaderInfo().isLeader;
  }

  /** True while the leader-only loops run on this manager. */
  get leaderLoopsRunning(): boolean {
    return this.leading;
  }

  /** Follows leadership: loops start on election and stop on step-down. */
  start(): void {
    if (this.unsubscribe !== undefined) return;
    this.unsubscribe = this.ctx.raft.onLeaderChange((info) => this.onLeaderChange(info));
    this.onLeaderChange(this.ctx.raft.leaderInfo());
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.stepDown();
  }

  private onLeaderChange(info: LeaderInfo): void {
    if (info.isLeader && !this.leading) {
      this.leading = true;
      this.ctx.logger.info({ term: info.term }, 'elected leader: starting leader loops');
      this.ctx.reachability.reset();
      this.sampler = setInterval(() => membership(this.ctx), REACHABILITY_SAMPLE_MS);
      this.sampler.unref();
      this.dispatcher.start();
      this.roles.start();
      this.orchestrator.start();
      // Network allocation serves the network RPCs and the allocator's passes: it runs while this
      // manager leads, whether or not the allocator loop does.
      this.networkAllocation.start();
      this.allocator.start();
      this.scheduler.start();
      this.startTraces.start();
      this.attachmentReaper.start();
    } else if (!info.isLeader && this.leading) {
      this.ctx.logger.info({ leader: info.leader, term: info.term }, 'not leader any more: stopping leader loops');
      this.stepDown();
    }
  }

  private stepDown(): void {
    this.leading = false;
    if (this.sampler !== undefined) clearInterval(this.sampler);
    this.sampler = undefined;
    this.dispatcher.stop();
    this.roles.stop();
    this.orchestrator.stop();
    this.allocator.stop();
    this.networkAllocation.stop();
    this.scheduler.stop();
    this.startTraces.stop();
    this.attachmentReaper.stop();
  }

  private async waitForLeadership(timeoutMs: number): Promise<void> {
    if (this.isLeader()) return;
    await new Promise<void>((resolve, reject) => {
      const t = this.ctx.clock.setTimeout(() => {
        off();
        reject(new NotLeaderError('swarm init', this.ctx.raft.leaderInfo().leader));
      }, timeoutMs);
      const off = this.ctx.raft.onLeaderChange((info) => {
        if (!info.isLeader) return;
        off();
        t.cancel();
        resolve();
      });
    });
  }

  /**
   * `swarm init`: writes the cluster object (Docker's default spec, join tokens, root CA, unlock
   * key when autolocked) and this manager's Node object in one transaction.
   */
  async bootstrapCluster(opts: BootstrapOptions): Promise<BootstrapResult> {
    checkRaftAddr(opts.advertiseAddr);
    const existing = this.ctx.store.list<StoredCluster>('cluster')[0];
    if (existing !== undefined) throw new ClusterExistsError(existing.ID);
    await this.waitForLeadership(opts.leaderTimeoutMs ?? 10_000);
    const root = this.ctx.rootCA;
    // A spec decoded from the wire carries '' and undefined for what the caller left unset
    // (`shoal swarm init` sends one): those keep Docker's defaults, such as the name "default".
    const given = Object.fromEntries(
      Object.entries(opts.spec ?? {}).filter(([, v]) => v !== undefined && v !== ''),
    ) as Partial<ClusterSpec>;
    const spec: ClusterSpec = { ...defaultClusterSpec(), ...given };
    if (opts.certExpiryMs !== undefined) {
      if (!(opts.certExpiryMs > 0)) throw new InvalidRequestError(`invalid certificate expiry ${opts.certExpiryMs} ms`);
      spec.CAConfig = { ...spec.CAConfig, NodeCertExpiry: opts.certExpiryMs * 1e6 };
    }
    const unlock = opts.autolock === true ? (opts.unlockKey ?? UnlockKey.generate()) : undefined;
    spec.EncryptionConfig = { ...spec.EncryptionConfig, AutoLockManagers: unlock !== undefined };
    const tokens = newJoinTokens(root.digest);
    const host = opts.advertiseAddr.replace(/^\[?([^\]]*?)\]?:\d+$/, '$1');
    const pool = [...(opts.defaultAddrPool ?? DEFAULT_ADDR_POOL)];
    const subnetSize = opts.subnetSize ?? DEFAULT_SUBNET_SIZE;
    const ingress = opts.ingress === true ? ingressNetwork(pool, subnetSize) : undefined;
    await this.ctx.store.update((tx) => {
      tx.create('cluster', {
        ID: opts.clusterId,
        Spec: spec,
        TLSInfo: { TrustRoot: root.certPem },
        RootRotationInProgress: false,
        DefaultAddrPool: pool,
        SubnetSize: subnetSize,
        DataPathPort: opts.dataPathPort ?? DEFAULT_DATA_PATH_PORT,
        JoinTokens: { Worker: tokens.worker, Manager: tokens.manager },
        RootCA: {
          CACert: Buffer.from(root.certPem),
          CAKey: root.canSign ? Buffer.from(root.keyPem()) : Buffer.alloc(0),
          CACertHash: root.digest,
        },
        UnlockKey: unlock === undefined ? Buffer.alloc(0) : unlock.bytes,
      });
      const self: Node & { ID: string } = {
        ID: this.ctx.nodeId,
        Spec: { Name: '', Labels: {}, Role: 'manager', Availability: 'active' },
        Description: opts.description ?? {},
        Status: { State: 'ready', Message: '', Addr: host },
        ManagerStatus: { Addr: opts.advertiseAddr },
        Certificate: {
          Role: 'manager',
          State: 'issued',
          Err: '',
          Certificate: Buffer.from(opts.nodeCertPem ?? ''),
          CN: this.ctx.nodeId,
        },
      };
      tx.create('node', { ...self });
      if (ingress !== undefined) tx.create('network', { ...ingress });
    });
    const cluster = this.ctx.store.get<StoredCluster>('cluster', opts.clusterId);
    const node = this.ctx.store.get<StoredNode>('node', this.ctx.nodeId);
    if (cluster === undefined || node === undefined) throw new Error('bootstrap wrote nothing');
    this.ctx.logger.info({ clusterId: cluster.ID, nodeId: node.ID }, 'cluster bootstrapped');
    return {
      cluster: clusterView(cluster),
      node: nodeView(node, membership(this.ctx)),
      ...(unlock === undefined ? {} : { unlockKey: unlock.format() }),
    };
  }

  /** The caller of a gRPC call (see ManagerOptions.identify). */
  identify(call: CallLike): CallerIdentity {
    return this.identifyFn(call);
  }

  /** grpc-js implementations for the daemon's server. */
  services(): ManagerServices {
    const c = this.control;
    const sv = this.servicesApi;
    const sc = this.secretsConfigs;
    const u = <Req, Res>(fn: (req: Req, call: ServerUnaryCall<Req, Res>, signal: AbortSignal) => Promise<Res> | Res) =>
      unaryHandler<Req, Res>(async (req, call, signal) => fn(req, call, signal));
    const Control: ControlServer = {
      getNode: u((req) => c.getNode(req)),
      listNodes: u((req) => c.listNodes(req)),
      updateNode: u((req) => c.updateNode(req)),
      removeNode: u((req) => c.removeNode(req)),
      getTask: u((req) => ({ Task: sv.getTask(req.TaskID ?? '') })),
      listTasks: u((req) => ({ Tasks: sv.listTasks(req) })),
      removeTask: u(async (req) => {
        await sv.removeTask(req.TaskID ?? '');
        return {};
      }),
      getService: u((req) => ({ Service: sv.getService(req.ServiceID ?? '', req.InsertDefaults === true) })),
      listServices: u((req) => ({ Services: sv.listServices(req) })),
      createService: u(async (req) => ({ Service: await sv.createService(req), Warnings: [] })),
      updateService: u(async (req) => ({ Service: await sv.updateService(req), Warnings: [] })),
      removeService: u(async (req) => {
        await sv.removeService(req.ServiceID ?? '');
        return {};
      }),
      getNetwork: u((req) => ({ Network: this.networksApi.getNetwork(req.NetworkID ?? '') })),
      listNetworks: u((req) => ({ Networks: this.networksApi.listNetworks(req) })),
      createNetwork: u(async (req) => ({ Network: await this.networksApi.createNetwork(req) })),
      removeNetwork: u(async (req) => {
        await this.networksApi.removeNetwork(req.NetworkID ?? '');
        return {};
      }),
      getSecret: u((req) => ({ Secret: sc.getSecret(req.SecretID ?? '') })),
      listSecrets: u((req) => ({ Secrets: sc.listSecrets(req) })),
      createSecret: u(async (req) => ({ Secret: await sc.createSecret(req) })),
      updateSecret: u(async (req) => ({ Secret: await sc.updateSecret(req) })),
      removeSecret: u(async (req) => {
        await sc.removeSecret(req.SecretID ?? '');
        return {};
      }),
      getConfig: u((req) => ({ Config: sc.getConfig(req.ConfigID ?? '') })),
      listConfigs: u((req) => ({ Configs: sc.listConfigs(req) })),
      createConfig: u(async (req) => ({ Config: await sc.createConfig(req) })),
      updateConfig: u(async (req) => ({ Config: await sc.updateConfig(req) })),
      removeConfig: u(async (req) => {
        await sc.removeConfig(req.ConfigID ?? '');
        return {};
      }),
      getCluster: u((req) => c.getCluster(req)),
      listClusters: u(() => c.listClusters()),
      updateCluster: u((req) => c.updateCluster(req)),
      getUnlockKey: u(() => c.getUnlockKey()),
      deployStack: u((req) => this.stacksApi.deploy(req)),
    };
    const CA: CAServer = {
      getRootCaCertificate: u(() => this.ca.getRootCaCertificate()),
      issueNodeCertificate: u((req, call) => this.ca.issueNodeCertificate(req, this.identify(call))),
      nodeCertificateStatus: u((req) => this.ca.nodeCertificateStatus(req)),
    };
    const Dispatcher: DispatcherServer = {
      session: serverStreamHandler((req, call, signal) =>
        this.dispatcher.session(req, this.identify(call), (m) => call.write(m), signal),
      ),
      heartbeat: u((req, call) => this.dispatcher.heartbeat(req, this.identify(call))),
      updateTaskStatus: u((req, call) => this.dispatcher.updateTaskStatus(req, this.identify(call))),
      assignments: serverStreamHandler((req, call, signal) =>
        this.dispatcher.assignments(req, this.identify(call), (m) => call.write(m), signal),
      ),
      attachNetwork: u((req, call) => this.dispatcher.attachNetwork(req, this.identify(call), this.attachments)),
      detachNetwork: u((req, call) => this.dispatcher.detachNetwork(req, this.identify(call), this.attachments)),
    };
    const RaftMembership: RaftMembershipServer = {
      join: u((req, call, signal) => this.raftMembership.join(req, this.identify(call), signal)),
      leave: u((req, call, signal) => this.raftMembership.leave(req, this.identify(call), signal)),
    };
    const LogBroker = logBrokerServer(this.logBroker, (call) => this.identify(call));
    return { Control, CA, Dispatcher, RaftMembership, LogBroker };
  }
}
