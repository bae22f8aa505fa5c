/**
 * What the cluster benchmark needs from a system under test. Shoal (lab hosts running shoald)
 * and Docker Swarm (namespaces running dockerd + containerd) each implement it with their own
 * API, so that one routine (measure-cluster.ts) measures both the same way.
 */

export interface BenchHost {
  /** h1..hN */
  name: string;
  role: 'manager' | 'worker';
}

/** One client of the write benchmark: its own connection to the leader's API endpoint. */
export interface BenchWriter {
  /** `config create NAME -` with `data`: the new config's ID once the write is acknowledged. */
  createConfig(name: string, data: string): Promise<string>;
  /** `config rm ID`, acknowledged. */
  removeConfig(id: string): Promise<void>;
  close(): void;
}

/** A task as the services benchmark needs it. */
export interface BenchTask {
  id: string;
  nodeId: string;
  /** Observed state: `running`, `pending`... */
  state: string;
  /** Desired state: `running`, `shutdown`... */
  desired: string;
}

/** A service of a stack as the stack benchmark needs it. */
export interface BenchStackService {
  id: string;
  /** Full name, `<stack>_<service>`. */
  name: string;
  /** Replicas of a replicated service; undefined for a global one. */
  replicas: number | undefined;
}

/** A task of a stack's service. */
export interface BenchStackTask extends BenchTask {
  serviceId: string;
}

/** A stack's network as the cluster lists it. */
export interface BenchStackNetwork {
  id: string;
  name: string;
}

export interface ClusterDriver {
  readonly system: 'shoal' | 'swarm';
  readonly hosts: readonly BenchHost[];
  /** Hosts and daemons running, not yet in a swarm. */
  up(): Promise<void>;
  /** `swarm init` on `h` (its node ID). */
  init(h: BenchHost): Promise<string>;
  /** `swarm join` of `h` with the token of its role (its node ID). */
  join(h: BenchHost, via: BenchHost): Promise<string>;
  /** The node as `via` sees it (undefined when the call fails: no leader yet, daemon down). */
  nodeState(via: BenchHost, nodeId: string, timeoutMs: number): Promise<string | undefined>;
  /** Every node as `via` sees it (undefined when the call fails). */
  nodes(
    via: BenchHost,
    timeoutMs: number,
  ): Promise<{ id: string; state: string; leader: boolean; reachable: boolean; manager: boolean }[] | undefined>;
  /** One acknowledged label write through `via` within `timeoutMs`, or a rejection. */
  labelAdd(via: BenchHost, nodeId: string, key: string, value: string, timeoutMs: number): Promise<void>;
  /** A client of the write benchmark on the API endpoint of `via`. */
  writer(via: BenchHost): BenchWriter;
  /** kill -9 of the host's daemon(s). */
  kill(h: BenchHost): void;
  /** Until the killed processes are gone. */
  waitGone(h: BenchHost): Promise<void>;
  /** Starts the host's daemon(s) again, same data, and waits until they answer locally. */
  restart(h: BenchHost): Promise<void>;
  /** RSS and PSS in MB of the host's daemon(s), summed, with what they count ("shoald", "dockerd + containerd"). */
  rss(h: BenchHost): { mb: number; pss: number; what: string };
  // ---- services (`npm run bench:services`); up() of a driver made for it also starts a registry ----
  /** Pushes the busybox test image to the registry the side's daemons pull from; its reference and digest. */
  pushImage(): Promise<{ ref: string; digest: string }>;
  /** `service create --name NAME --replicas N IMAGE ARGS...` through `via` (the service's ID). */
  createService(via: BenchHost, name: string, image: string, args: string[], replicas: number): Promise<string>;
  /** `service scale ID=N` through `via`. */
  scaleService(via: BenchHost, serviceId: string, replicas: number): Promise<void>;
  /** The service's tasks as `via` sees them (undefined when the call fails). */
  tasks(via: BenchHost, serviceId: string, timeoutMs: number): Promise<BenchTask[] | undefined>;
  /** The image reference a service's spec holds now (Swarm pins it with the digest it resolved). */
  serviceImage(via: BenchHost, serviceId: string): Promise<string>;
  /** `service rm ID` through `via`. */
  removeService(via: BenchHost, serviceId: string): Promise<void>;
  /** `swarm update --dispatcher-heartbeat MS` through `via`. */
  setHeartbeat(via: BenchHost, ms: number): Promise<void>;
  /** Cuts the host's link to the others (its underlay veth down). */
  cut(h: BenchHost): Promise<void>;
  heal(h: BenchHost): Promise<void>;
  // ---- stacks (`npm run bench:stack`) ----
  /**
   * `stack deploy -c FILE STACK` with the side's own CLI against the API socket of `via`, with
   * `env` added to the CLI's environment (`REGISTRY`); resolves when the CLI exits 0, rejects
   * with its output otherwise.
   */
  deployStack(via: BenchHost, file: string, stack: string, env: Record<string, string>): Promise<void>;
  /**
   * `stack rm STACK` with the side's own CLI against the API socket of `via`: its exit status and
   * output (Docker 20.10's exits 1 when a network is still in use by draining tasks).
   */
  removeStack(via: BenchHost, stack: string): Promise<{ ok: boolean; output: string }>;
  /** The services carrying the stack's namespace label, as `via` lists them (undefined when the call fails). */
  stackServices(via: BenchHost, stack: string, timeoutMs: number): Promise<BenchStackService[] | undefined>;
  /** The tasks of the given services, as `via` lists them (undefined when the call fails). */
  stackTasks(via: BenchHost, serviceIds: string[], timeoutMs: number): Promise<BenchStackTask[] | undefined>;
  /** The networks carrying the stack's namespace label, as `via` lists them. */
  stackNetworks(via: BenchHost, stack: string, timeoutMs: number): Promise<BenchStackNetwork[]>;
  /**
   * What of the stack is still there, looked up on every host itself rather than in the
   * manager's view alone: its containers (in any state) in each host's engine, its networks on
   * each host (Swarm: the host's docker networks; Shoal: the overlay namespaces of `networkIds`),
   * and services or networks the leader `via` still lists. One line per object; empty when gone.
   */
  stackLeftovers(via: BenchHost, stack: string, networkIds: readonly string[]): Promise<string[]>;
  /** Removes everything; returns what was left behind (empty when all is gone). */
  down(): Promise<string[]>;
}
