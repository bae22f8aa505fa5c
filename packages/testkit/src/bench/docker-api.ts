/**
 * A small Docker Engine API client over a daemon's unix socket (HTTP/1.1, JSON), for the
 * Swarm side of `npm run bench -- cluster` and `-- services`: the same calls the docker CLI
 * makes for `swarm init/join/update`, `info`, `node ls/inspect/update`, `config create/rm` and
 * `service create/scale/ps/inspect/rm`.
 */
import { Agent, request } from 'node:http';

/** The Engine API version Debian's docker.io 20.10 speaks. */
const API = '/v1.41';

/** A non-2xx answer of the Engine API (its `message`), or a transport failure. */
export class DockerApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DockerApiError';
  }
}

export interface DockerNode {
  ID: string;
  Version: { Index: number };
  Spec: { Name?: string; Labels?: Record<string, string>; Role: string; Availability: string };
  Description?: { Hostname?: string };
  Status: { State: string; Addr?: string };
  ManagerStatus?: { Leader?: boolean; Reachability?: string; Addr?: string };
}

export interface DockerService {
  ID: string;
  Version: { Index: number };
  Spec: {
    Name?: string;
    TaskTemplate?: { ContainerSpec?: { Image?: string } };
    Mode?: { Replicated?: { Replicas?: number } };
  } & Record<string, unknown>;
}

export interface DockerTask {
  ID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Err?: string };
}

export interface DockerInfo {
  Swarm: { NodeID: string; LocalNodeState: string; ControlAvailable: boolean };
}

export class DockerApi {
  /** One keep-alive connection per client, as one docker CLI process would use. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor(readonly socket: string) {}

  close(): void {
    this.agent.destroy();
  }

  /** One request; rejects with DockerApiError on a non-2xx status, a socket error or `timeoutMs`. */
  call<T>(method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<T> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socket,
          agent: this.agent,
          method,
          path: API + path,
          headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {},
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) {
              let msg = text.trim();
              if (msg.startsWith('{')) msg = (JSON.parse(msg) as { message?: string }).message ?? msg;
              reject(new DockerApiError(status, `${method} ${path}: ${status} ${msg}`));
              return;
            }
            resolve((text && res.headers['content-type']?.includes('json') ? JSON.parse(text) : text) as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new DockerApiError(0, `${method} ${path}: no answer in ${timeoutMs} ms`)));
      req.on('error', (err) =>
        reject(err instanceof DockerApiError ? err : new DockerApiError(0, `${method} ${path}: ${err.message}`)),
      );
      req.end(data);
    });
  }

  info(timeoutMs?: number): Promise<DockerInfo> {
    return this.call('GET', '/info', undefined, timeoutMs);
  }

  nodes(timeoutMs?: number): Promise<DockerNode[]> {
    return this.call('GET', '/nodes', undefined, timeoutMs);
  }

  node(id: string, timeoutMs?: number): Promise<DockerNode> {
    return this.call('GET', `/nodes/${id}`, undefined, timeoutMs);
  }

  /** `docker node update --label-add K=V ID`: inspect for the version, then update with it. */
  async labelAdd(id: string, key: string, value: string, timeoutMs?: number): Promise<void> {
    const n = await this.node(id, timeoutMs);
    const spec = { ...n.Spec, Labels: { ...n.Spec.Labels, [key]: value } };
    await this.call('POST', `/nodes/${id}/update?version=${n.Version.Index}`, spec, timeoutMs);
  }

  /** `docker config create NAME -`: the config's ID. */
  async createConfig(name: string, data: string, timeoutMs?: number): Promise<string> {
    const r = await this.call<{ ID: string }>(
      'POST',
      '/configs/create',
      { Name: name, Data: Buffer.from(data).toString('base64') },
      timeoutMs,
    );
    return r.ID;
  }

  async removeConfig(id: string, timeoutMs?: number): Promise<void> {
    await this.call('DELETE', `/configs/${id}`, undefined, timeoutMs);
  }

  service(id: string, timeoutMs?: number): Promise<DockerService> {
    return this.call('GET', `/services/${id}`, undefined, timeoutMs);
  }

  /** Tasks of one service (`docker service ps`). */
  tasks(serviceId: string, timeoutMs?: number): Promise<DockerTask[]> {
    const filters = encodeURIComponent(JSON.stringify({ service: [serviceId] }));
    return this.call('GET', `/tasks?filters=${filters}`, undefined, timeoutMs);
  }

  /** `docker swarm update --dispatcher-heartbeat`. */
  async setHeartbeat(ms: number, timeoutMs?: number): Promise<void> {
    const sw = await this.call<{ Version: { Index: number }; Spec: { Dispatcher?: Record<string, unknown> } }>(
      'GET',
      '/swarm',
      undefined,
      timeoutMs,
    );
    const spec = { ...sw.Spec, Dispatcher: { ...sw.Spec.Dispatcher, HeartbeatPeriod: ms * 1e6 } };
    await this.call('POST', `/swarm/update?version=${sw.Version.Index}`, spec, timeoutMs);
  }
}
