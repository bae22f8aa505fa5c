/**
 * The benchmark driver for Docker Swarm: hosts from swarm-hosts.ts, driven through each
 * dockerd's Engine API on its unix socket (what the docker CLI calls).
 */
import { run } from '@shoal/common';
import { TestImages } from '../images/build-test-images.js';
import { pushTestImages } from '../images/push-test-images.js';
import type { BenchHost, BenchTask, BenchWriter, ClusterDriver } from './cluster-driver.js';
import { DockerApi, DockerApiError } from './docker-api.js';
import { pssMb, rssMb } from './stats.js';
import { SWARM_OVERLAY_MASK, SWARM_OVERLAY_POOL, SWARM_REGISTRY, SwarmHosts, type SwarmHost } from './swarm-hosts.js';

export class SwarmDriver implements ClusterDriver {
  readonly system = 'swarm';
  readonly hosts: BenchHost[];
  private readonly swarm: SwarmHosts;
  private tokens: { Worker: string; Manager: string } | undefined;

  constructor(managers: number, workers: number, progress: (msg: string) => void, registry = false) {
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
      DefaultAddrPool: [SWARM_OVERLAY_POOL],
      SubnetSize: SWARM_OVERLAY_MASK,
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
