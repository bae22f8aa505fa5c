/**
 * shoald: the unix-socket server for the CLI (role `local`), the cluster port with mutual TLS
 * (role from the verified peer certificate), the node's identity and membership state on disk,
 * and the manager or worker runtime.
 */
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { availableParallelism, hostname, totalmem } from 'node:os';
import { shoalVersion } from './version.js';
import { Server, ServerCredentials, type UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  ControlService,
  CAService,
  DispatcherService,
  LogBrokerService,
  HealthService,
  RaftMembershipService,
  RaftService,
  SwarmService,
  authInterceptor,
  unaryHandler,
  verifiedPeerCertificate,
  type CallerRole,
  type HealthServer,
  type NodeDescription,
} from '@shoal/api';
import type { CertRenewer } from '@shoal/ca';
import {
  NodeCertificateProvider,
  NodeKeyStore,
  RootCA,
  identityOf,
  parseRoots,
  type NodeTlsMaterial,
  type UnlockKey,
} from '@shoal/ca';
import { ignoreErrno, sleep, type Logger, type ShoalError } from '@shoal/common';
import type { DaemonSettings, ParsedFlags } from './config.js';
import { parseHostPort, reloadSettings, DEFAULT_PORT } from './config.js';
import { LeaderForwarder } from './control-forward.js';
import { LogForwarder } from './log-forward.js';
import { nodeClientCredentials, clusterServerCredentials } from './credentials.js';
import { dynamicService } from './dynamic-service.js';
import { DaemonError, NoLeaderError, NodeLockedError, SwarmStateError } from './errors.js';
import { clusterServerKeepalive, raftService, MAX_RAFT_MESSAGE_BYTES } from './grpc-raft-transport.js';
import { dataLayout, ensureLayout, readNodeState, writeNodeState, type DataLayout, type NodeState } from './layout.js';
import { ManagerRuntime } from './manager-runtime.js';
import type { StoreStateMachine } from '@shoal/store';
import { swarmService } from './swarm-service.js';
import { WorkerSession } from './worker-session.js';
import { startNodeAgent, stopNodeAgent, type NodeAgent } from './node-agent.js';
import { startRenewer } from './node-certificate.js';
import { openLocalEngine } from './local-engine.js';
import { rejoinNetworks } from './rejoin.js';
import type { Engine } from '@shoal/engine';

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error' | 'locked';

/** The node's TLS identity and Raft DEK, unlocked. */
export interface Identity extends NodeTlsMaterial {
  nodeId: string;
  clusterId: string;
  role: 'manager' | 'worker';
  dek: Buffer;
}

export class Daemon {
  readonly layout: DataLayout;
  readonly keyStore: NodeKeyStore;
  state: NodeState | undefined;
  status: LocalNodeState = 'inactive';
  lastError = '';
  identity: Identity | undefined;
  manager: ManagerRuntime | undefined;
  worker: WorkerSession | undefined;
  /** The engine (collector role) and the worker's Agent on it, while the node is in a swarm. */
  node: NodeAgent | undefined;
  renewer: CertRenewer | undefined;
  /** The host's engine: collector and restart supervisor of standalone containers. */
  engine: Engine | undefined;
  /** The unlock key of an autolocked node, kept after unlock to re-seal renewed keys. */
  unlockKey: UnlockKey | undefined;
  private provider: NodeCertificateProvider | undefined;
  private localServer: Server | undefined;
  private clusterServer: Server | undefined;
  private readonly forwarder: LeaderForwarder;
  private readonly logForwarder: LogForwarder;
  private stopping = false;
  /** Serialises Swarm operations (init, join, leave, unlock, role changes). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    public settings: DaemonSettings,
    readonly flags: ParsedFlags,
    readonly log: Logger,
  ) {
    this.layout = dataLayout(settings.dataRoot);
    this.keyStore = new NodeKeyStore(this.layout.certificates);
    this.forwarder = new LeaderForwarder(() => this.clientCredentials());
    this.logForwarder = new LogForwarder(() => this.clientCredentials());
  }

  /** True once `stop()` began: background loops (role convergence) end. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Runs `fn` after every earlier Swarm operation. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    // The queue only orders operations; each caller gets its own outcome through `next`.
    this.queue = Promise.allSettled([next]).then(() => undefined);
    return next;
  }

  async start(): Promise<void> {
    await ensureLayout(this.layout);
    // a container on swarm networks restarted by its policy is attached again (rejoin.ts)
    this.engine = await openLocalEngine(this.layout.engine, this.settings.runRoot, this.log, (rec) =>
      rejoinNetworks(() => this.node?.agent, rec),
    );
    this.state = await readNodeState(this.layout);
    if (this.state) {
      if (await this.keyStore.isLocked()) {
        this.status = 'locked';
        this.log.warn({ nodeId: this.state.nodeId }, 'node is locked: waiting for `shoal swarm unlock`');
      } else {
        await this.resume(undefined);
      }
    }
    await this.startLocalServer();
    this.log.info(
      { socket: this.settings.socket, dataRoot: this.settings.dataRoot, state: this.status },
      'shoald ready',
    );
  }

  /** Loads identity and starts the node's role from what is on disk (restart, unlock). */
  async resume(unlock: UnlockKey | undefined): Promise<void> {
    const state = this.state;
    if (!state) throw new SwarmStateError('DAEMON_NOT_IN_SWARM', 'this node is not part of a swarm');
    const material = await this.keyStore.read(unlock);
    this.unlockKey = unlock;
    const rootPem = await this.keyStore.readRoot();
    const id = identityOf(new X509Certificate(material.certPem));
    this.identity = {
      nodeId: id.nodeId,
      clusterId: id.clusterId,
      role: id.role,
      certPem: material.certPem,
      key: material.key,
      dek: material.dek ?? missingDek(this.keyStore.keyPath),
      rootPem,
    };
    await this.startRole(false);
  }

  /** Starts the cluster server (managers) and the manager or worker runtime for the current identity. */
  async startRole(
    bootstrap: boolean,
    peers?: Record<string, string>,
    root?: RootCA,
    initialState?: StoreStateMachine,
  ): Promise<void> {
    const state = this.state!;
    const identity = this.identity!;
    if (identity.role === 'manager') {
      await this.startClusterServer();
      const rt = new ManagerRuntime({
        nodeId: identity.nodeId,
        raftDir: this.layout.raft,
        dek: identity.dek,
        advertiseAddr: state.advertiseAddr,
        peers: peers ?? this.raftPeers(),
        bootstrap,
        ...(initialState ? { initialState } : {}),
        credentials: () => this.clientCredentials(),
        rootCA: root ?? this.rootCA(),
        logger: this.log,
        onPeer: (id, addr) => this.rememberPeer(id, addr),
        onFatal: (err) => {
          this.log.fatal({ err: err.message }, 'raft storage failed: stopping');
          process.exitCode = 1;
          void this.stop();
        },
      });
      this.manager = rt;
      await rt.start();
    }
    // Every node, managers included, keeps a dispatcher session (the agent side of membership)
    // and runs the tasks assigned to it.
    if (!this.engine) throw new Error('the engine is opened by start() before any role');
    this.node ??= await startNodeAgent({
      engine: this.engine,
      nodeId: identity.nodeId,
      hostname: this.hostname(),
      insecureRegistries: () => this.settings.insecureRegistries,
      advertiseAddr: state.advertiseAddr,
      gatewaySubnet: this.settings.gatewaySubnet,
      logger: this.log,
    });
    this.worker = new WorkerSession({
      daemon: this,
      logger: this.log.child({ component: 'session' }),
      agent: this.node.agent,
      logs: this.node.logs,
    });
    this.worker.start();
    this.renewer = startRenewer(this, this.log.child({ component: 'certificates' }));
    this.status = 'active';
  }

  async stopRole(): Promise<void> {
    // First, while the session is surely up: the node keeps its heartbeat deadline (a restart).
    await this.worker?.announceStop();
    this.renewer?.stop();
    this.renewer = undefined;
    const rt = this.manager;
    this.manager = undefined;
    await rt?.stop();
    const w = this.worker;
    this.worker = undefined;
    await w?.stop();
    const n = this.node;
    this.node = undefined;
    if (n) await stopNodeAgent(n);
    this.forwarder.close();
    this.logForwarder.close();
    await this.stopClusterServer();
  }

  /** The cluster root CA as this node knows it (certificate only; the key lives in the store). */
  rootCA(): RootCA {
    return RootCA.fromPem(this.identity!.rootPem);
  }

  raftPeers(): Record<string, string> {
    const peers: Record<string, string> = { ...(this.state?.raftPeers ?? {}) };
    if (this.identity && this.state) peers[this.identity.nodeId] = this.state.advertiseAddr;
    return peers;
  }

  private rememberPeer(id: string, addr: string | undefined): void {
    if (!this.state) return;
    const peers = { ...(this.state.raftPeers ?? {}) };
    if (addr === undefined) delete peers[id];
    else if (peers[id] === addr) return;
    else peers[id] = addr;
    this.state = { ...this.state, raftPeers: peers };
    void writeNodeState(this.layout, this.state).catch((err: unknown) =>
      this.log.error({ err: (err as Error).message }, 'cannot save state.json'),
    );
  }

  clientCredentials(): ReturnType<typeof nodeClientCredentials> {
    if (!this.identity) throw new SwarmStateError('DAEMON_NOT_IN_SWARM', 'this node is not part of a swarm');
    return nodeClientCredentials(this.identity);
  }

  /** Installs a new certificate (renewal, promote, demote) live and on disk. */
  async installCertificate(certPem: string, rootPem: string): Promise<void> {
    const id = this.identity!;
    await this.keyStore.write(certPem, { key: id.key, dek: id.dek }, this.unlockKey);
    await this.keyStore.writeRoot(rootPem);
    const ident = identityOf(new X509Certificate(certPem));
    this.identity = { ...id, certPem, rootPem, role: ident.role };
    this.provider?.update(this.identity);
  }

  // ---- servers ----

  private async startLocalServer(): Promise<void> {
    const server = new Server({ interceptors: [authInterceptor(() => 'local')] });
    server.addService(SwarmService, swarmService(this));
    server.addService(HealthService, this.healthService());
    server.addService(
      ControlService,
      dynamicService(
        ControlService,
        () => this.localControl(),
        () => this.controlUnavailable(),
      ),
    );
    server.addService(
      LogBrokerService,
      dynamicService(
        LogBrokerService,
        () => this.localLogBroker(),
        () => this.controlUnavailable(),
      ),
    );
    const sock = this.settings.socket;
    await mkdir(dirname(sock), { recursive: true, mode: 0o755 });
    await rm(sock, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${sock}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    await chmod(sock, 0o600);
    this.localServer = server;
  }

  /** Control for the CLI: this manager's own when it leads, else the leader's through forwarding. */
  private async localControl(): Promise<UntypedServiceImplementation | undefined> {
    if (this.status === 'locked') return undefined;
    const rt = this.manager;
    if (!rt) return undefined;
    // Just after a start or a leader's loss, wait up to two election timeouts for a leader.
    const until = Date.now() + 2400;
    while (rt.leaderAddress().address === '' && Date.now() < until && this.manager === rt) await sleep(50);
    const { address, isLeader } = rt.leaderAddress();
    if (isLeader) {
      // Reads after a restart or an election must see every committed write (ReadIndex).
      await rt.store.linearizable();
      return rt.manager.services().Control;
    }
    if (address === '') return undefined;
    return this.forwarder.serviceFor(ControlService, address);
  }

  /** LogBroker for the CLI (`service logs`): the leader's, here or through forwarding. */
  private async localLogBroker(): Promise<UntypedServiceImplementation | undefined> {
    const rt = this.manager;
    if (this.status === 'locked' || !rt) return undefined;
    const until = Date.now() + 2400;
    while (rt.leaderAddress().address === '' && Date.now() < until && this.manager === rt) await sleep(50);
    const { address, isLeader } = rt.leaderAddress();
    if (isLeader) return rt.manager.services().LogBroker;
    if (address === '') return undefined;
    return this.logForwarder.serviceFor(address);
  }

  private controlUnavailable(): ShoalError {
    if (this.status === 'locked') return new NodeLockedError();
    if (!this.state) {
      return new SwarmStateError(
        'DAEMON_NOT_A_MANAGER',
        'This node is not a swarm manager. Use "shoal swarm init" or "shoal swarm join" to connect this node to swarm and try again.',
      );
    }
    if (!this.manager) {
      return new SwarmStateError(
        'DAEMON_NOT_A_MANAGER',
        "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
      );
    }
    if (this.manager.leaderAddress().isLeader) {
      return new DaemonError(
        'DAEMON_NO_CONTROL',
        'this manager has no Control service (@shoal/manager is not installed)',
        'unavailable',
      );
    }
    return new NoLeaderError();
  }

  private healthService(): HealthServer {
    return {
      check: unaryHandler(async (req) => {
        const svc = req.Service ?? '';
        let serving = !this.stopping && this.status !== 'locked';
        if (svc === 'shoal.Control')
          serving = serving && this.manager !== undefined && this.manager.leaderAddress().address !== '';
        return Promise.resolve({ Status: serving ? 'serving' : 'not-serving' });
      }),
    };
  }

  private async startClusterServer(): Promise<void> {
    if (this.clusterServer) return;
    const identity = this.identity!;
    this.provider = new NodeCertificateProvider(identity);
    const server = new Server({
      interceptors: [authInterceptor((call) => this.clusterRole(call.peerCertificate))],
      'grpc.max_receive_message_length': MAX_RAFT_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_RAFT_MESSAGE_BYTES,
      ...clusterServerKeepalive(),
    });
    const fromManager = (key: 'Control' | 'CA' | 'Dispatcher' | 'RaftMembership' | 'LogBroker') => () =>
      this.manager?.manager?.services()[key];
    const unavailable = (path: string): ShoalError =>
      new DaemonError(
        'DAEMON_SERVICE_UNAVAILABLE',
        `${path} is not served by this node now (not a running manager)`,
        'unavailable',
        { retryable: true },
      );
    server.addService(
      ControlService,
      dynamicService(
        ControlService,
        async () => {
          // Every Control call here reads after a ReadIndex, on a follower too (raft asks the
          // leader): a follower's applied state alone may be behind acknowledged writes.
          const rt = this.manager;
          if (rt) await rt.store.linearizable();
          return fromManager('Control')();
        },
        unavailable,
      ),
    );
    server.addService(CAService, dynamicService(CAService, fromManager('CA'), unavailable));
    server.addService(DispatcherService, dynamicService(DispatcherService, fromManager('Dispatcher'), unavailable));
    server.addService(LogBrokerService, dynamicService(LogBrokerService, fromManager('LogBroker'), unavailable));
    server.addService(
      RaftMembershipService,
      dynamicService(RaftMembershipService, fromManager('RaftMembership'), unavailable),
    );
    server.addService(
      RaftService,
      raftService(
        () => this.manager?.transport,
        (id) => this.manager?.transport.peerAddress(id),
      ),
    );
    server.addService(HealthService, this.healthService());
    const { host, port } = parseHostPort(this.state!.listenAddr, 'listen address');
    const bind = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(bind, clusterServerCredentials(this.provider!), (err) =>
        err
          ? reject(
              new DaemonError('DAEMON_LISTEN', `cannot listen on ${bind}: ${err.message}`, 'failed-precondition', {
                cause: err,
              }),
            )
          : resolve(),
      );
    });
    this.clusterServer = server;
    this.log.info({ listen: bind }, 'cluster port serving');
  }

  /** The caller's role on the cluster port: only from a certificate issued by the cluster root. */
  private clusterRole(peer: Parameters<typeof verifiedPeerCertificate>[0]): CallerRole | undefined {
    const id = this.identity;
    if (!id) return undefined;
    const cert = verifiedPeerCertificate(peer, parseRoots(id.rootPem));
    if (!cert) return undefined;
    const who = identityOf(cert);
    if (who.clusterId !== id.clusterId) return undefined;
    return who.role === 'manager' ? 'manager' : 'worker';
  }

  private async stopClusterServer(): Promise<void> {
    const s = this.clusterServer;
    this.clusterServer = undefined;
    if (s) await shutdownServer(s);
  }

  /** SIGHUP: reloads what can change live; logs what needs a restart. */
  async reload(): Promise<void> {
    try {
      const { settings, changed, needRestart } = await reloadSettings(this.settings, this.flags);
      this.settings = settings;
      this.log.level = settings.logLevel;
      this.log.info(
        { changed, needRestart, logLevel: settings.logLevel, insecureRegistries: settings.insecureRegistries },
        'configuration reloaded',
      );
      if (needRestart.length > 0) this.log.warn({ keys: needRestart }, 'these settings change only after a restart');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'configuration reload failed: keeping the current settings');
    }
  }

  /** SIGTERM: drains both servers, closes Raft; containers are not touched. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info('shoald stopping');
    const local = this.localServer;
    this.localServer = undefined;
    await this.stopRole();
    await this.engine?.close();
    if (local) await shutdownServer(local);
    await rm(this.settings.socket, { force: true }).catch(ignoreErrno('ENOENT'));
    this.log.info('shoald stopped');
  }

  /** host:port other nodes reach this one at. */
  advertiseFor(listenAddr: string, requested: string): string {
    const adv = requested !== '' ? requested : this.settings.advertiseAddr;
    const listen = parseHostPort(listenAddr, 'listen address');
    if (adv === '') {
      if (listen.host === '0.0.0.0' || listen.host === '::') {
        throw new DaemonError(
          'DAEMON_NO_ADVERTISE_ADDR',
          'could not choose an IP address to advertise since the listen address is 0.0.0.0: specify one with --advertise-addr',
          'invalid-argument',
        );
      }
      return `${listen.host}:${listen.port}`;
    }
    const a = parseHostPort(adv, 'advertise address', listen.port || DEFAULT_PORT);
    return `${a.host}:${a.port}`;
  }

  hostname(): string {
    return hostname();
  }

  /** What this node reports about itself (Node.Description). */
  description(): NodeDescription {
    return {
      Hostname: hostname(),
      Platform: { Architecture: process.arch === 'x64' ? 'x86_64' : process.arch, OS: process.platform },
      Resources: { NanoCPUs: availableParallelism() * 1e9, MemoryBytes: totalmem() },
      Engine: { EngineVersion: shoalVersion() },
    };
  }
}

function missingDek(where: string): never {
  throw new DaemonError(
    'DAEMON_NO_DEK',
    `${where} carries no Raft DEK: the node's key file is not a Shoal manager/worker key`,
    'internal',
  );
}

/** Stops accepting, lets calls in flight finish for up to 2 s, then cancels the rest. */
export async function shutdownServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2000);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
