/**
 * The benchmark driver for Shoal: a lab (lab-up.ts) with one shoald per host (lab-shoald.ts),
 * driven through each host's unix socket with api's gRPC clients (what the `shoal` CLI calls).
 * init and join take the same parameters as `labCluster` (overlay pool LAB_OVERLAY_POOL). For the
 * services benchmark the lab has its registry, and `down()` first kills the task containers
 * (processes whose root is under the lab's directory) so none outlives its shim.
 */
import { credentials } from '@grpc/grpc-js';
import { ControlClient, RemoteError, SwarmClient, unary, type Node } from '@shoal/api';
import { errnoCode, ignoreErrno } from '@shoal/common';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabNotFoundError } from '../errors.js';
import { TestImages } from '../images/build-test-images.js';
import { pushTestImages } from '../images/push-test-images.js';
import { labDown, labLeftovers } from '../lab/lab-down.js';
import { labCut, labHeal } from '../lab/lab-faults.js';
import { LAB_OVERLAY_POOL } from '../lab/lab-names.js';
import { LAB_CLUSTER_PORT, labStartShoald, runningShoald, shoaldPaths } from '../lab/lab-shoald.js';
import { labDir, readLabState, type LabHostState } from '../lab/lab-state.js';
import { labUp } from '../lab/lab-up.js';
import type {
  BenchHost,
  BenchStackNetwork,
  BenchStackService,
  BenchStackTask,
  BenchTask,
  BenchWriter,
  ClusterDriver,
} from './cluster-driver.js';
import { STACK_LABEL, ofStack, runCli, tryCli } from './stack-cli.js';
import { pssMb, rssMb } from './stats.js';

/** A separate connection per client, as separate CLI processes would have. */
const OWN_CONNECTION = { 'grpc.use_local_subchannel_pool': 1 };

/** The workspace's `shoal` CLI (packages/cli, built). */
const SHOAL_CLI = fileURLToPath(new URL('../../../cli/dist/main.js', import.meta.url));

/** Overlay namespaces of a node: `shoal-ov-<host tag>-<network id, 12 chars>` (network's overlay.ts). */
const OVERLAY_NETNS = /^shoal-ov-[a-z0-9]+-([0-9a-z]{12})$/;

function errnoIn(err: unknown, codes: string[]): boolean {
  return codes.includes(errnoCode(err) ?? '');
}

/** The containers recorded in a host's engine (`<data>/engine/containers/<id>/state.json`), any state. */
function engineContainers(dataDir: string): { id: string; name: string; labels?: Record<string, string> }[] {
  const dir = join(dataDir, 'engine', 'containers');
  if (!existsSync(dir)) return [];
  const out: { id: string; name: string; labels?: Record<string, string> }[] = [];
  for (const id of readdirSync(dir)) {
    if (!/^[0-9a-f]{64}$/.test(id)) continue;
    try {
      const rec = JSON.parse(readFileSync(join(dir, id, 'state.json'), 'utf8')) as {
        name?: string;
        labels?: Record<string, string>;
      };
      out.push({ id, name: rec.name ?? '', ...(rec.labels ? { labels: rec.labels } : {}) });
    } catch (err) {
      // removed meanwhile, or the record not written yet: the container is still there
      if (!errnoIn(err, ['ENOENT', 'ENOTDIR']) && !(err instanceof SyntaxError)) throw err;
      if (existsSync(join(dir, id))) out.push({ id, name: '' });
    }
  }
  return out;
}

/** Pids of processes whose root directory is under `dir` (containers of the lab's engines). */
function pidsRootedUnder(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readlinkSync(`/proc/${p}/root`).startsWith(`${dir}/`)) out.push(Number(p));
    } catch (err) {
      if (!['ENOENT', 'ESRCH', 'EACCES'].includes(errnoCode(err) ?? '')) throw err; // gone meanwhile
    }
  }
  return out;
}

export class ShoalDriver implements ClusterDriver {
  readonly system = 'shoal';
  readonly hosts: BenchHost[];
  private state = new Map<string, LabHostState>();
  private tokens: { Worker: string; Manager: string } | undefined;
  private readonly controls = new Map<string, ControlClient>();

  constructor(
    private readonly lab: string,
    managers: number,
    workers: number,
    /** Start the lab's registry (the services benchmark). */
    private readonly registry = false,
  ) {
    this.hosts = Array.from({ length: managers + workers }, (_, i) => ({
      name: `h${i + 1}`,
      role: i < managers ? 'manager' : 'worker',
    }));
  }

  private socket(h: BenchHost): string {
    const s = this.state.get(h.name);
    if (!s) throw new Error(`no lab host ${h.name}`);
    return `unix://${shoaldPaths(s).socket}`;
  }

  private control(h: BenchHost): ControlClient {
    let c = this.controls.get(h.name);
    if (!c) {
      c = new ControlClient(this.socket(h), credentials.createInsecure());
      this.controls.set(h.name, c);
    }
    return c;
  }

  private async withSwarm<T>(h: BenchHost, fn: (c: SwarmClient) => Promise<T>): Promise<T> {
    const c = new SwarmClient(this.socket(h), credentials.createInsecure());
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }

  private async refresh(): Promise<void> {
    const s = await readLabState(this.lab);
    if (!s) throw new Error(`lab ${this.lab} is gone`);
    for (const h of s.hosts) this.state.set(h.name, h);
  }

  async up(): Promise<void> {
    await this.down();
    await labUp({ name: this.lab, hosts: this.hosts.length, registry: this.registry });
    await labStartShoald(this.lab);
    await this.refresh();
  }

  private deadline(ms = 120_000): { deadline: number } {
    return { deadline: Date.now() + ms };
  }

  async init(h: BenchHost): Promise<string> {
    const s = this.state.get(h.name);
    if (!s) throw new Error(`no lab host ${h.name}`);
    await this.withSwarm(h, (c) =>
      unary(
        c.init.bind(c),
        {
          ListenAddr: `${s.address}:${LAB_CLUSTER_PORT}`,
          AdvertiseAddr: s.address,
          DefaultAddrPool: [LAB_OVERLAY_POOL],
          SubnetSize: 24,
        },
        this.deadline(),
      ),
    );
    const ctl = this.control(h);
    const t = (await unary(ctl.getCluster.bind(ctl), {}, this.deadline())).Cluster?.JoinTokens;
    if (!t?.Worker || !t.Manager) throw new Error('the cluster has no join tokens');
    this.tokens = { Worker: t.Worker, Manager: t.Manager };
    return this.nodeId(h);
  }

  private nodeId(h: BenchHost): Promise<string> {
    return this.withSwarm(h, async (c) => (await unary(c.info.bind(c), {}, this.deadline())).NodeID ?? '');
  }

  async join(h: BenchHost, via: BenchHost): Promise<string> {
    const s = this.state.get(h.name);
    const v = this.state.get(via.name);
    if (!s || !v || !this.tokens) throw new Error('join before init');
    const token = h.role === 'manager' ? this.tokens.Manager : this.tokens.Worker;
    await this.withSwarm(h, (c) =>
      unary(
        c.join.bind(c),
        {
          ListenAddr: `${s.address}:${LAB_CLUSTER_PORT}`,
          AdvertiseAddr: s.address,
          RemoteAddrs: [`${v.address}:${LAB_CLUSTER_PORT}`],
          JoinToken: token,
        },
        this.deadline(),
      ),
    );
    return this.nodeId(h);
  }

  async nodeState(via: BenchHost, nodeId: string, timeoutMs: number): Promise<string | undefined> {
    const c = this.control(via);
    try {
      return (await unary(c.getNode.bind(c), { NodeID: nodeId }, this.deadline(timeoutMs))).Node?.Status?.State;
    } catch (err) {
      if (err instanceof RemoteError) return undefined; // not known yet, no leader, daemon down
      throw err;
    }
  }

  async nodes(via: BenchHost, timeoutMs: number) {
    const c = this.control(via);
    let ns: Node[];
    try {
      ns = (await unary(c.listNodes.bind(c), {}, this.deadline(timeoutMs))).Nodes ?? [];
    } catch (err) {
      if (err instanceof RemoteError) return undefined; // no leader, daemon down
      throw err;
    }
    return ns.map((n) => ({
      id: n.ID ?? '',
      state: n.Status?.State ?? '',
      leader: n.ManagerStatus?.Leader === true,
      reachable: n.ManagerStatus?.Reachability === 'reachable',
      manager: n.Spec?.Role === 'manager',
    }));
  }

  private static async labelAddOn(
    c: ControlClient,
    nodeId: string,
    key: string,
    value: string,
    deadline: number,
  ): Promise<void> {
    const n = (await unary(c.getNode.bind(c), { NodeID: nodeId }, { deadline })).Node;
    if (!n) throw new Error(`node ${nodeId} not found`);
    await unary(
      c.updateNode.bind(c),
      {
        NodeID: nodeId,
        NodeVersion: n.Version,
        Spec: { ...n.Spec, Labels: { ...n.Spec?.Labels, [key]: value } },
      },
      { deadline },
    );
  }

  async labelAdd(via: BenchHost, nodeId: string, key: string, value: string, timeoutMs: number): Promise<void> {
    const c = new ControlClient(this.socket(via), credentials.createInsecure(), OWN_CONNECTION);
    try {
      await ShoalDriver.labelAddOn(c, nodeId, key, value, Date.now() + timeoutMs);
    } finally {
      c.close();
    }
  }

  writer(via: BenchHost): BenchWriter {
    const c = new ControlClient(this.socket(via), credentials.createInsecure(), OWN_CONNECTION);
    const deadline = (): { deadline: number } => ({ deadline: Date.now() + 30_000 });
    return {
      async createConfig(name, data) {
        const r = await unary(c.createConfig.bind(c), { Spec: { Name: name, Data: Buffer.from(data) } }, deadline());
        return r.Config?.ID ?? '';
      },
      async removeConfig(id) {
        await unary(c.removeConfig.bind(c), { ConfigID: id }, deadline());
      },
      close: () => c.close(),
    };
  }

  async pushImage(): Promise<{ ref: string; digest: string }> {
    const url = (await readLabState(this.lab))?.registry?.url;
    if (!url) throw new Error(`lab ${this.lab} has no registry`);
    const [img] = await pushTestImages(url, { only: [TestImages.busybox] });
    if (!img) throw new Error(`${TestImages.busybox} not pushed`);
    return { ref: img.remoteRef, digest: img.digest };
  }

  async createService(via: BenchHost, name: string, image: string, args: string[], replicas: number): Promise<string> {
    const c = this.control(via);
    const r = await unary(
      c.createService.bind(c),
      {
        Spec: {
          Name: name,
          TaskTemplate: { ContainerSpec: { Image: image, Args: args } },
          Mode: { Replicated: { Replicas: replicas } },
        },
      },
      this.deadline(60_000),
    );
    return r.Service?.ID ?? '';
  }

  async scaleService(via: BenchHost, serviceId: string, replicas: number): Promise<void> {
    const c = this.control(via);
    const s = (await unary(c.getService.bind(c), { ServiceID: serviceId }, this.deadline(60_000))).Service;
    if (!s?.Spec) throw new Error(`service ${serviceId} not found`);
    await unary(
      c.updateService.bind(c),
      {
        ServiceID: serviceId,
        ServiceVersion: s.Version,
        // as `service scale`: only the replica count changes, so no task is replaced
        Spec: { ...s.Spec, Mode: { ...s.Spec.Mode, Replicated: { ...s.Spec.Mode?.Replicated, Replicas: replicas } } },
        RegistryAuthFrom: 'spec',
      },
      this.deadline(60_000),
    );
  }

  async tasks(via: BenchHost, serviceId: string, timeoutMs: number): Promise<BenchTask[] | undefined> {
    const c = this.control(via);
    try {
      const ts = (await unary(c.listTasks.bind(c), { Filters: { ServiceIDs: [serviceId] } }, this.deadline(timeoutMs)))
        .Tasks;
      return (ts ?? []).map((t) => ({
        id: t.ID ?? '',
        nodeId: t.NodeID ?? '',
        state: t.Status?.State ?? '',
        desired: t.DesiredState ?? '',
      }));
    } catch (err) {
      if (err instanceof RemoteError) return undefined; // no leader, daemon down
      throw err;
    }
  }

  async serviceImage(via: BenchHost, serviceId: string): Promise<string> {
    const c = this.control(via);
    const s = (await unary(c.getService.bind(c), { ServiceID: serviceId }, this.deadline(60_000))).Service;
    return s?.Spec?.TaskTemplate?.ContainerSpec?.Image ?? '';
  }

  async removeService(via: BenchHost, serviceId: string): Promise<void> {
    const c = this.control(via);
    await unary(c.removeService.bind(c), { ServiceID: serviceId }, this.deadline(60_000));
  }

  async deployStack(via: BenchHost, file: string, stack: string, env: Record<string, string>): Promise<void> {
    await runCli('stack deploy', process.execPath, [SHOAL_CLI, 'stack', 'deploy', '-c', file, stack], {
      SHOAL_HOST: this.socket(via),
      ...env,
    });
  }

  removeStack(via: BenchHost, stack: string): Promise<{ ok: boolean; output: string }> {
    return tryCli(process.execPath, [SHOAL_CLI, 'stack', 'rm', stack], { SHOAL_HOST: this.socket(via) });
  }

  async stackServices(via: BenchHost, stack: string, timeoutMs: number): Promise<BenchStackService[] | undefined> {
    const c = this.control(via);
    try {
      const ss = (
        await unary(c.listServices.bind(c), { Filters: { Labels: { [STACK_LABEL]: stack } } }, this.deadline(timeoutMs))
      ).Services;
      return (ss ?? []).map((s) => ({
        id: s.ID ?? '',
        name: s.Spec?.Name ?? '',
        replicas: s.Spec?.Mode?.Global ? undefined : (s.Spec?.Mode?.Replicated?.Replicas ?? 1),
      }));
    } catch (err) {
      if (err instanceof RemoteError) return undefined;
      throw err;
    }
  }

  async stackTasks(via: BenchHost, serviceIds: string[], timeoutMs: number): Promise<BenchStackTask[] | undefined> {
    if (serviceIds.length === 0) return [];
    const c = this.control(via);
    try {
      const ts = (await unary(c.listTasks.bind(c), { Filters: { ServiceIDs: serviceIds } }, this.deadline(timeoutMs)))
        .Tasks;
      return (ts ?? []).map((t) => ({
        id: t.ID ?? '',
        serviceId: t.ServiceID ?? '',
        nodeId: t.NodeID ?? '',
        state: t.Status?.State ?? '',
        desired: t.DesiredState ?? '',
      }));
    } catch (err) {
      if (err instanceof RemoteError) return undefined;
      throw err;
    }
  }

  async stackNetworks(via: BenchHost, stack: string, timeoutMs: number): Promise<BenchStackNetwork[]> {
    const c = this.control(via);
    const ns = (
      await unary(c.listNetworks.bind(c), { Filters: { Labels: { [STACK_LABEL]: stack } } }, this.deadline(timeoutMs))
    ).Networks;
    return (ns ?? []).map((n) => ({ id: n.ID ?? '', name: n.Spec?.Name ?? '' }));
  }

  async stackLeftovers(via: BenchHost, stack: string, networkIds: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const h of this.hosts) {
      const s = this.state.get(h.name);
      if (!s) throw new Error(`no lab host ${h.name}`);
      for (const c of engineContainers(s.dataDir))
        if (c.name === '' || ofStack(stack, c.name, c.labels)) out.push(`${h.name}: container ${c.name || c.id}`);
    }
    // namespaces are global to the machine: every host's overlay namespaces are in /run/netns
    const ids = new Set(networkIds.map((id) => id.slice(0, 12)));
    for (const n of existsSync('/run/netns') ? readdirSync('/run/netns') : []) {
      const m = OVERLAY_NETNS.exec(n);
      if (m?.[1] && ids.has(m[1])) out.push(`overlay namespace ${n}`);
    }
    const services = (await this.stackServices(via, stack, 10_000)) ?? [{ id: '?', name: '(no answer)', replicas: 0 }];
    out.push(...services.map((sv) => `service ${sv.name}`));
    try {
      for (const n of await this.stackNetworks(via, stack, 10_000)) out.push(`network ${n.name}`);
    } catch (err) {
      if (!(err instanceof RemoteError)) throw err;
      out.push(`networks: no answer (${err.message})`);
    }
    return out;
  }

  async setHeartbeat(via: BenchHost, ms: number): Promise<void> {
    const c = this.control(via);
    const cl = (await unary(c.getCluster.bind(c), {}, this.deadline())).Cluster;
    if (!cl?.ID) throw new Error('no cluster object');
    await unary(
      c.updateCluster.bind(c),
      {
        ClusterID: cl.ID,
        ClusterVersion: cl.Version,
        Spec: { ...cl.Spec, Dispatcher: { ...cl.Spec?.Dispatcher, HeartbeatPeriod: ms * 1e6 } },
      },
      this.deadline(),
    );
  }

  cut(h: BenchHost): Promise<void> {
    return labCut(this.lab, h.name);
  }

  heal(h: BenchHost): Promise<void> {
    return labHeal(this.lab, h.name);
  }

  private pid(h: BenchHost): number | undefined {
    const s = this.state.get(h.name);
    return s ? runningShoald(s) : undefined;
  }

  kill(h: BenchHost): void {
    const pid = this.pid(h);
    if (pid === undefined) throw new Error(`shoald on ${h.name} is not running`);
    process.kill(pid, 'SIGKILL');
  }

  async waitGone(h: BenchHost): Promise<void> {
    while (this.pid(h) !== undefined) await new Promise((r) => setTimeout(r, 20));
    this.controls.get(h.name)?.close();
    this.controls.delete(h.name);
  }

  async restart(h: BenchHost): Promise<void> {
    await labStartShoald(this.lab, [h.name]);
    await this.refresh();
  }

  rss(h: BenchHost): { mb: number; pss: number; what: string } {
    const pid = this.pid(h);
    return { mb: pid === undefined ? NaN : rssMb(pid), pss: pid === undefined ? NaN : pssMb(pid), what: 'shoald' };
  }

  /** Copies each host's shoald log to `dir`/<host>.log (the benchmark's --keep-logs); returns `dir`. */
  async keepLogs(dir: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    for (const [name, h] of this.state) {
      const { log } = shoaldPaths(h);
      await copyFile(log, join(dir, `${name}.log`)).catch(ignoreErrno('ENOENT'));
    }
    return dir;
  }

  async down(): Promise<string[]> {
    for (const c of this.controls.values()) c.close();
    this.controls.clear();
    // task containers first: a container outlives its shim, and labDown knows only the lab's processes
    const containers = pidsRootedUnder(labDir(this.lab));
    for (const pid of containers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if (errnoCode(err) !== 'ESRCH') throw err; // gone meanwhile
      }
    }
    try {
      await labDown(this.lab);
    } catch (err) {
      if (!(err instanceof LabNotFoundError)) throw err; // nothing of it exists: nothing to do
    }
    const left = await labLeftovers(this.lab);
    const parts = [
      ...pidsRootedUnder(labDir(this.lab)).map((p) => `container process ${p}`),
      ...(left.dir ? [`directory of lab ${this.lab}`] : []),
      ...left.namespaces.map((n) => `netns ${n}`),
      ...left.links.map((l) => `link ${l}`),
      ...left.processes.map((p) => `process ${p}`),
      ...left.mounts.map((m) => `mount ${m}`),
      ...left.rules.map((r) => `iptables ${r}`),
    ];
    return parts;
  }
}
