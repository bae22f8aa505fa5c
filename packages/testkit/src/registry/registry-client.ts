/**
 * Just enough of the distribution API to push and fetch test content: blob existence, the
 * monolithic blob upload (POST, then PUT ?digest=), manifest PUT/GET, with Basic auth or a
 * Bearer token from the realm the registry names.
 */
import { RegistryPushError } from '../errors.js';

export interface RegistryAuth {
  username: string;
  password: string;
}

/** Every manifest type we understand, for the Accept header. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** A small distribution API client bound to one registry base URL (`http://127.0.0.1:5000`). */
export class RegistryClient {
  private readonly base: string;
  private readonly tokens = new Map<string, string>();

  constructor(
    baseUrl: string,
    private readonly auth?: RegistryAuth,
    private readonly signal?: AbortSignal,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  /** The registry's host:port, as used in image references. */
  get host(): string {
    return new URL(this.base).host;
  }

  private basic(): string | undefined {
    return this.auth
      ? `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`
      : undefined;
  }

  private async token(challenge: string, scope: string): Promise<string | undefined> {
    const params: Record<string, string> = {};
    for (const m of challenge.matchAll(/(\w+)="([^"]*)"/g)) if (m[1] && m[2] !== undefined) params[m[1]] = m[2];
    const realm = params['realm'];
    if (!realm) return undefined;
    const url = new URL(realm);
    if (params['service']) url.searchParams.set('service', params['service']);
    url.searchParams.set('scope', params['scope'] ?? scope);
    const headers: Record<string, string> = {};
    const basic = this.basic();
    if (basic) headers['authorization'] = basic;
    const res = await fetch(url, { headers, ...(this.signal ? { signal: this.signal } : {}) });
    if (!res.ok) throw new RegistryPushError(url.toString(), res.status, await res.text());
    const body = (await res.json()) as { token?: string; access_token?: string };
    return body.token ?? body.access_token;
  }

  /** One request, answering an auth challenge once (Basic or Bearer). */
  async request(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: Uint8Array; scope?: string } = {},
  ): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.base}${path}`;
    const scope = init.scope ?? '';
    const send = (authz?: string): Promise<Response> =>
      fetch(url, {
        method,
        headers: { ...init.headers, ...(authz ? { authorization: authz } : {}) },
        ...(init.body ? { body: init.body } : {}),
        redirect: 'follow',
        ...(this.signal ? { signal: this.signal } : {}),
      });
    const cached = this.tokens.get(scope);
    let res = await send(cached ? `Bearer ${cached}` : this.basic());
    if (res.status !== 401) return res;
    const challenge = res.headers.get('www-authenticate') ?? '';
    await res.body?.cancel();
    if (/^bearer/i.test(challenge)) {
      const token = await this.token(challenge, scope);
      if (!token) return res;
      this.tokens.set(scope, token);
      res = await send(`Bearer ${token}`);
    } else if (/^basic/i.test(challenge) && this.auth) {
      res = await send(this.basic());
    }
    return res;
  }

  private async expect(res: Response, ok: number[], what: string): Promise<Response> {
    if (ok.includes(res.status)) return res;
    throw new RegistryPushError(`${this.base} ${what}`, res.status, (await res.text()).slice(0, 300));
  }

  /** True if the repository has the blob. */
  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scope: `repository:${repo}:pull,push` });
    await res.body?.cancel();
    return res.status === 200;
  }

  /** Uploads a blob in one request unless the repository has it already. */
  async pushBlob(repo: string, digest: string, data: Uint8Array): Promise<void> {
    if (await this.hasBlob(repo, digest)) return;
    const scope = `repository:${repo}:pull,push`;
    const start = await this.expect(
      await this.request('POST', `/v2/${repo}/blobs/uploads/`, { scope }),
      [202],
      `POST upload ${repo}`,
    );
    await start.body?.cancel();
    const location = start.headers.get('location');
    if (!location) throw new RegistryPushError(`${this.base} POST upload ${repo}`, start.status, 'no Location header');
    const url = new URL(location, this.base);
    url.searchParams.set('digest', digest);
    const put = await this.request('PUT', url.toString(), {
      scope,
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    await (await this.expect(put, [201], `PUT blob ${repo}@${digest}`)).body?.cancel();
  }

  /** Uploads a manifest (or index) under a tag or digest; returns the digest the registry computed. */
  async pushManifest(repo: string, reference: string, mediaType: string, bytes: Uint8Array): Promise<string> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, {
      scope: `repository:${repo}:pull,push`,
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    await (await this.expect(res, [201], `PUT manifest ${repo}:${reference}`)).body?.cancel();
    return res.headers.get('docker-content-digest') ?? '';
  }

  /** Fetches a manifest with every known Accept type; returns its bytes and headers. */
  async getManifest(repo: string, reference: string): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${reference}`, {
      scope: `repository:${repo}:pull`,
      headers: { accept: MANIFEST_ACCEPT },
    });
    await this.expect(res, [200], `GET manifest ${repo}:${reference}`);
    return {
      bytes: Buffer.from(await res.arrayBuffer()),
      mediaType: res.headers.get('content-type') ?? '',
      digest: res.headers.get('docker-content-digest') ?? '',
    };
  }

  /** Fetches a blob's bytes. */
  async getBlob(repo: string, digest: string): Promise<Buffer> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scope: `repository:${repo}:pull` });
    await this.expect(res, [200], `GET blob ${repo}@${digest}`);
    return Buffer.from(await res.arrayBuffer());
  }
}
