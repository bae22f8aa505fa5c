/**
 * A small Docker Engine API client over a daemon's unix socket (HTTP/1.1, JSON), for the
 * Swarm side of `npm run bench -- cluster`: the same calls the docker CLI makes for
 * `swarm init/join`, `info`, `node ls`, `node inspect` and `node update`.
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
}
