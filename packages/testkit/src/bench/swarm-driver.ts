/**
 * The benchmark driver for Docker Swarm: hosts from swarm-hosts.ts, driven through each
 * dockerd's Engine API on its unix socket (what the docker CLI calls).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '@shoal/common';
import { TestImages } from '../images/build-test-images.js';
import { pushTestImages } from '../images/push-test-images.js';
import type {
  BenchHost,
  BenchStackNetwork,
  BenchStackService,
  BenchStackTask,
  BenchTask,
  BenchWriter,
  ClusterDriver,
} from './cluster-driver.js';
import { DockerApi, DockerApiError, type DockerTask } from './docker-api.js';
import { DOCKER_IO_CLI, STACK_LABEL, ofStack, runCli, tryCli } from './stack-cli.js';
import { pssMb, rssMb } from './stats.js';
import {
  SWARM_OVERLAY_MASK,
  SWARM_OVERLAY_POOL,
  SWARM_REGISTRY,
  SWARM_RUN,
  SwarmHosts,
  type SwarmHost,
} from './swarm-hosts.js';

/** Overlay networks' address pool (`swarm init --default-addr-pool` and `--default-addr-pool-mask-length`). */
export interface SwarmOverlayPool {
  pool: string;
  mask: number;
}

const labelFilter = (stack: string): string =>
  encodeURIComponent(JSON.stringify({ label: [`${STACK_LABEL}=${stack}`] }));

export class SwarmDriver implements ClusterDriver {
  readonly system = 'swarm';
  readonly hosts: BenchHost[];
  private readonly swarm: SwarmHosts;
  private tokens: { Worker: string; Manager: string } | undefined;

  constructor(
    managers: number,
    workers: number,
    progress: (msg: string) => void,
    registry = false,
    /** Default: SWARM_OVERLAY_POOL in /SWARM_OVERLAY_MASK (room for the ingress network only). */
    private readonly overlay: SwarmOverlayPool = { pool: SWARM_OVERLAY_POOL, mask: SWARM_OVERLAY_MASK },
  ) {
    this.swarm = new SwarmHosts(managers, workers, progress, registry);
    this.hosts = this.swarm.hosts.map((h) => ({ name: `h${h.index}`, role: h.role }));
  }

  private host(h: BenchHost): SwarmHost {
    const s = this.swarm.hosts[this.hosts.indexOf(h)];
    if (!s) throw new Error(`no Swarm host ${h.name}`);
    return s;
  }

  up(): Promise<void> {
    return this.swarm.up();
  }

  async init(h: BenchHost): Promise<string> {
    const s = this.host(h);
    await s.api.call('POST', '/swarm/init', {
      ListenAddr: `${s.address}:2377`,
      AdvertiseAddr: s.address,
      DefaultAddrPool: [this.overlay.pool],
      SubnetSize: this.overlay.mask,
    });
    this.tokens = (await s.api.call<{ JoinTokens: { Worker: string; Manager: string } }>('GET', '/swarm')).JoinTokens;
    return (await s.api.info()).Swarm.NodeID;
  }

  async join(h: BenchHost, via: BenchHost): Promise<string> {
    const s = this.host(h);
    if (!this.tokens) throw new Error('join before init');
    await s.api.call(
      'POST',
      '/swarm/join',
      {
        ListenAddr: `${s.address}:2377`,
        AdvertiseAddr: s.address,
        RemoteAddrs: [`${this.host(via).address}:2377`],
        JoinToken: h.role === 'manager' ? this.tokens.Manager : this.tokens.Worker,
      },
      120_000,
    );
    return (await s.api.info()).Swarm.NodeID;
  }

  async nodeState(via: BenchHost, nodeId: string, timeoutMs: number): Promise<string | undefined> {
    try {
      return (await this.host(via).api.node(nodeId, timeoutMs)).Status.State;
    } catch (err) {
      if (err instanceof DockerApiError) return undefined; // not known yet, or no leader
      throw err;
    }
  }

  async nodes(via: BenchHost, timeoutMs: number) {
    try {
      return (await this.host(via).api.nodes(timeoutMs)).map((n) => ({
        id: n.ID,
        state: n.Status.State,
        leader: n.ManagerStatus?.Leader === true,
        reachable: n.ManagerStatus?.Reachability === 'reachable',
        manager: n.Spec.Role === 'manager',
      }));
    } catch (err) {
      if (err instanceof DockerApiError) return undefined;
      throw err;
    }
  }

  async labelAdd(via: BenchHost, nodeId: string, key: string, value: string, timeoutMs: number): Promise<void> {
    const api = new DockerApi(this.host(via).socket);
    try {
      await api.labelAdd(nodeId, key, value, timeoutMs);
    } finally {
      api.close();
    }
  }

  writer(via: BenchHost): BenchWriter {
    const api = new DockerApi(this.host(via).socket);
    return {
      createConfig: (name, data) => api.createConfig(name, data, 30_000),
      removeConfig: (id) => api.removeConfig(id, 30_000),
      close: () => api.close(),
    };
  }

  async pushImage(): Promise<{ ref: string; digest: string }> {
    const [img] = await pushTestImages(`http://${SWARM_REGISTRY}`, { only: [TestImages.busybox] });
    if (!img) throw new Error(`${TestImages.busybox} not pushed`);
    return { ref: img.remoteRef, digest: img.digest };
  }

  async createService(via: BenchHost, name: string, image: string, args: string[], replicas: number): Promise<string> {
    const r = await this.host(via).api.call<{ ID: string }>(
      'POST',
      '/services/create',
      {
        Name: name,
        TaskTemplate: { ContainerSpec: { Image: image, Args: args } },
        Mode: { Replicated: { Replicas: replicas } },
      },
      60_000,
    );
    return r.ID;
  }

  async scaleService(via: BenchHost, serviceId: string, replicas: number): Promise<void> {
    const api = this.host(via).api;
    const s = await api.service(serviceId);
    // as `docker service scale`: only the replica count changes, so no task is replaced
    const spec = {
      ...s.Spec,
      Mode: { ...s.Spec.Mode, Replicated: { ...s.Spec.Mode?.Replicated, Replicas: replicas } },
    };
    const q = `version=${s.Version.Index}&registryAuthFrom=spec`;
    await api.call('POST', `/services/${serviceId}/update?${q}`, spec, 60_000);
  }

  async tasks(via: BenchHost, serviceId: string, timeoutMs: number): Promise<BenchTask[] | undefined> {
    try {
      return (await this.host(via).api.tasks(serviceId, timeoutMs)).map((t) => ({
        id: t.ID,
        nodeId: t.NodeID ?? '',
        state: t.Status.State,
        desired: t.DesiredState,
      }));
    } catch (err) {
      if (err instanceof DockerApiError) return undefined;
      throw err;
    }
  }

  async serviceImage(via: BenchHost, serviceId: string): Promise<string> {
    return (await this.host(via).api.service(serviceId)).Spec.TaskTemplate?.ContainerSpec?.Image ?? '';
  }

  async removeService(via: BenchHost, serviceId: string): Promise<void> {
    await this.host(via).api.call('DELETE', `/services/${serviceId}`, undefined, 60_000);
  }

  /** The docker.io CLI against `via`'s dockerd, with a config directory of its own (no user settings). */
  private async docker(via: BenchHost, args: string[]): Promise<[string, string[], Record<string, string>]> {
    const config = join(SWARM_RUN, 'docker-cli');
    await mkdir(config, { recursive: true });
    return [
      DOCKER_IO_CLI,
      ['-H', `unix://${this.host(via).socket}`, ...args],
      { DOCKER_CONFIG: config, DOCKER_HOST: '', DOCKER_CONTEXT: '' },
    ];
  }

  async deployStack(via: BenchHost, file: string, stack: string, env: Record<string, string>): Promise<void> {
    const [bin, args, e] = await this.docker(via, ['stack', 'deploy', '-c', file, stack]);
    await runCli('stack deploy', bin, args, { ...e, ...env });
  }

  async removeStack(via: BenchHost, stack: string): Promise<{ ok: boolean; output: string }> {
    const [bin, args, e] = await this.docker(via, ['stack', 'rm', stack]);
    return tryCli(bin, args, e);
  }

  async stackServices(via: BenchHost, stack: string, timeoutMs: number): Promise<BenchStackService[] | undefined> {
    try {
      const ss = await this.host(via).api.call<
        { ID: string; Spec: { Name?: string; Mode?: { Replicated?: { Replicas?: number } } } }[]
      >('GET', `/services?filters=${labelFilter(stack)}`, undefined, timeoutMs);
      return ss.map((s) => ({
        id: s.ID,
        name: s.Spec.Name ?? '',
        replicas: s.Spec.Mode?.Replicated ? (s.Spec.Mode.Replicated.Replicas ?? 1) : undefined,
      }));
    } catch (err) {
      if (err instanceof DockerApiError) return undefined;
      throw err;
    }
  }

  async stackTasks(via: BenchHost, serviceIds: string[], timeoutMs: number): Promise<BenchStackTask[] | undefined> {
    if (serviceIds.length === 0) return [];
    const filters = encodeURIComponent(JSON.stringify({ service: serviceIds }));
    try {
      const ts = await this.host(via).api.call<(DockerTask & { ServiceID: string })[]>(
        'GET',
        `/tasks?filters=${filters}`,
        undefined,
        timeoutMs,
      );
      return ts.map((t) => ({
        id: t.ID,
        serviceId: t.ServiceID,
        nodeId: t.NodeID ?? '',
        state: t.Status.State,
        desired: t.DesiredState,
      }));
    } catch (err) {
      if (err instanceof DockerApiError) return undefined;
      throw err;
    }
  }

  async stackNetworks(via: BenchHost, stack: string, timeoutMs: number): Promise<BenchStackNetwork[]> {
    const ns = await this.host(via).api.call<{ Id: string; Name: string }[]>(
      'GET',
      `/networks?filters=${labelFilter(stack)}`,
      undefined,
      timeoutMs,
    );
    return ns.map((n) => ({ id: n.Id, name: n.Name }));
  }

  async stackLeftovers(via: BenchHost, stack: string, networkIds: readonly string[]): Promise<string[]> {
    const per = await Promise.all(
      this.hosts.map(async (h) => {
        const api = this.host(h).api;
        const out: string[] = [];
        try {
          const cs = await api.call<{ Id: string; Names?: string[]; Labels?: Record<string, string> }[]>(
            'GET',
            '/containers/json?all=1',
            undefined,
            10_000,
          );
          for (const c of cs)
            if (ofStack(stack, c.Names?.[0] ?? '', c.Labels))
              out.push(`${h.name}: container ${c.Names?.[0]?.replace(/^\//, '') ?? c.Id}`);
          const ns = await api.call<{ Id: string; Name: string; Labels?: Record<string, string> }[]>(
            'GET',
            '/networks',
            undefined,
            10_000,
          );
          for (const n of ns)
            if (networkIds.includes(n.Id) || ofStack(stack, n.Name, n.Labels)) out.push(`${h.name}: network ${n.Name}`);
        } catch (err) {
          if (!(err instanceof DockerApiError)) throw err;
          out.push(`${h.name}: no answer (${err.message})`);
        }
        return out;
      }),
    );
    const services = (await this.stackServices(via, stack, 10_000)) ?? [{ id: '?', name: '(no answer)', replicas: 0 }];
    return [...services.map((s) => `service ${s.name}`), ...per.flat()];
  }

  setHeartbeat(via: BenchHost, ms: number): Promise<void> {
    return this.host(via).api.setHeartbeat(ms);
  }

  async cut(h: BenchHost): Promise<void> {
    await run('ip', ['link', 'set', this.host(h).veth, 'down']);
  }

  async heal(h: BenchHost): Promise<void> {
    await run('ip', ['link', 'set', this.host(h).veth, 'up']);
  }

  kill(h: BenchHost): void {
    this.swarm.kill(this.host(h));
  }

  waitGone(h: BenchHost): Promise<void> {
    return this.swarm.waitGone(this.host(h));
  }

  restart(h: BenchHost): Promise<void> {
    return this.swarm.restart(this.host(h));
  }

  rss(h: BenchHost): { mb: number; pss: number; what: string } {
    const p = this.swarm.pids(this.host(h));
    const of = (f: (pid: number) => number, pid: number | undefined): number => (pid === undefined ? NaN : f(pid));
    const d = of(rssMb, p.dockerd);
    const c = of(rssMb, p.containerd);
    return {
      mb: d + c,
      pss: of(pssMb, p.dockerd) + of(pssMb, p.containerd),
      what: `dockerd ${d.toFixed(1)} + containerd ${c.toFixed(1)} =`,
    };
  }

  down(): Promise<string[]> {
    return this.swarm.down();
  }
}
