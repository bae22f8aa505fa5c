/**
 * A read-only client of the OCI distribution API (pull side): manifests by tag or digest with
 * every manifest media type in Accept, blobs with redirects, Basic and bearer-token auth.
 *
 * Transport rule (as Docker's insecure-registries): HTTPS always; plain HTTP only for a registry
 * named in `insecureRegistries` (`host:port`, or `host` for any port), and, unless
 * `implicitLoopbackInsecure` is false, for `localhost`, `127.0.0.0/8` and `::1`. For such a
 * registry HTTPS is tried first and HTTP used when the server answers plain HTTP. Credentials
 * never follow a redirect to another host.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Logger } from '@shoal/common';
import { errnoCode, silentLogger } from '@shoal/common';
import {
  DigestMismatchError,
  InsecureRegistryError,
  ManifestUnknownError,
  RegistryProtocolError,
  RegistryUnreachableError,
  UnauthorizedError,
} from '../errors.js';
import { DEFAULT_REGISTRY, DOCKER_HUB_API_HOST, type ImageReference, formatReference } from '../image/reference.js';
import { MANIFEST_ACCEPT } from '../image/media-types.js';
import { basicHeader, parseChallenge, TokenCache, type Credentials } from './auth.js';
import { drain, httpRequest, readBody, type HttpResponse } from './http.js';

export interface RegistryClientOptions {
  /** Registries allowed over plain HTTP: `host:port` or `host`. */
  insecureRegistries?: string[];
  /** Treat loopback registries as insecure without naming them (Docker does). Default true. */
  implicitLoopbackInsecure?: boolean;
  /** Credentials per registry (`host:port` as in references). */
  credentials?: Record<string, Credentials>;
  /** Deadline for a response's headers, and longest silence in a body (ms). Default 30 000. */
  timeoutMs?: number;
  logger?: Logger;
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  /** sha256 of `bytes`, verified against the requested digest or Docker-Content-Digest. */
  digest: string;
}

const MAX_MANIFEST = 4 << 20;

type AuthState = { kind: 'none' } | { kind: 'basic' } | { kind: 'bearer'; realm: URL; service?: string };

export class RegistryClient {
  private readonly insecure: Set<string>;
  private readonly implicitLoopback: boolean;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly tokens = new TokenCache();
  private readonly schemes = new Map<string, 'https:' | 'http:'>();
  private readonly auth = new Map<string, AuthState>();

  constructor(private readonly opts: RegistryClientOptions = {}) {
    this.insecure = new Set((opts.insecureRegistries ?? []).map((h) => h.toLowerCase()));
    this.implicitLoopback = opts.implicitLoopbackInsecure ?? true;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.log = opts.logger ?? silentLogger();
  }

  /** True when plain HTTP may be used for `registry` (`host[:port]`). */
  isInsecure(registry: string): boolean {
    const r = registry.toLowerCase();
    const host = hostOf(r);
    if (this.insecure.has(r) || this.insecure.has(host)) return true;
    if (!this.implicitLoopback) return false;
    if (host === 'localhost' || host === '::1') return true;
    return isIP(host) === 4 && host.startsWith('127.');
  }

  /** Fetches the manifest `reference` (tag or digest) of `ref.repository` and verifies its digest. */
  async getManifest(ref: ImageReference, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const what = `${ref.registry}/${ref.repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const res = await this.request(
      ref,
      `manifests/${reference}`,
      { Accept: MANIFEST_ACCEPT.join(', ') },
      signal,
      false,
    );
    if (res.status === 404) throw new ManifestUnknownError(what, await errorDetail(res));
    if (res.status !== 200) throw await this.statusError(ref, res, what);
    const bytes = await readBody(res, MAX_MANIFEST);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (reference.startsWith('sha256:')) {
      if (digest !== reference) throw new DigestMismatchError(reference, digest, `manifest ${what}`);
    } else {
      const header = res.headers['docker-content-digest'];
      if (typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
        throw new DigestMismatchError(header, digest, `manifest ${what} (Docker-Content-Digest)`);
      }
    }
    const ct = (res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    return { bytes, mediaType: ct, digest };
  }

  /** Opens the blob `digest`; the caller verifies size and digest while reading. */
  async openBlob(ref: ImageReference, digest: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const what = `${ref.registry}/${ref.repository}@${digest}`;
    const res = await this.request(ref, `blobs/${digest}`, {}, signal, true);
    if (res.status === 404) throw new ManifestUnknownError(what, `blob unknown: ${await errorDetail(res)}`);
    if (res.status !== 200) throw await this.statusError(ref, res, what);
    return guardBody(res, ref.registry, what);
  }

  private apiHost(registry: string): string {
    return registry === DEFAULT_REGISTRY ? DOCKER_HUB_API_HOST : registry;
  }

  private async baseUrl(registry: string, signal?: AbortSignal): Promise<string> {
    const host = this.apiHost(registry);
    const known = this.schemes.get(registry);
    if (known) return `${known}//${host}`;
    if (!this.isInsecure(registry)) {
      this.schemes.set(registry, 'https:');
      return `https://${host}`;
    }
    // Named insecure: try HTTPS without certificate checks (as Docker), fall back to HTTP when the
    // server speaks plain HTTP or its TLS fails.
    try {
      const req: Parameters<typeof httpRequest>[1] = { timeoutMs: this.timeoutMs, registry, insecureTls: true };
      if (signal) req.signal = signal;
      drain(await httpRequest(new URL(`https://${host}/v2/`), req));
      this.schemes.set(registry, 'https:');
    } catch (err) {
      if (!(err instanceof InsecureRegistryError) && !(err instanceof RegistryUnreachableError)) throw err;
      if (err instanceof RegistryUnreachableError && !/certificate|self.signed|TLS|SSL/i.test(err.message)) throw err;
      this.log.debug({ registry }, 'insecure registry: using plain HTTP');
      this.schemes.set(registry, 'http:');
    }
    return `${this.schemes.get(registry)}//${host}`;
  }

  private authHeader(ref: ImageReference, scope: string): string | undefined {
    const state = this.auth.get(ref.registry);
    if (!state || state.kind === 'none') return undefined;
    if (state.kind === 'basic') {
      const c = this.opts.credentials?.[ref.registry];
      return c ? basicHeader(c) : undefined;
    }
    const token = this.tokens.get(ref.registry, scope);
    return token ? `Bearer ${token}` : undefined;
  }

  /** GET with auth negotiation (one retry after a 401) and, for blobs, redirects. */
  private async request(
    ref: ImageReference,
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    followRedirects: boolean,
  ): Promise<HttpResponse> {
    const scope = `repository:${ref.repository}:pull`;
    const url = new URL(`${await this.baseUrl(ref.registry, signal)}/v2/${ref.repository}/${path}`);
    let retried = false;
    for (;;) {
      const auth = this.authHeader(ref, scope);
      const res = await this.follow(
        ref,
        url,
        { ...headers, ...(auth ? { Authorization: auth } : {}) },
        signal,
        followRedirects,
      );
      if (res.status !== 401) return res;
      const challengeHeader = res.headers['www-authenticate'];
      drain(res);
      const creds = this.opts.credentials?.[ref.registry];
      if (retried) {
        throw new UnauthorizedError(
          ref.registry,
          401,
          creds ? `credentials for ${creds.username} refused` : 'authentication required; no credentials given',
        );
      }
      retried = true;
      const challenge = typeof challengeHeader === 'string' ? parseChallenge(challengeHeader) : undefined;
      if (challenge?.scheme === 'bearer') {
        const realm = challenge.params['realm'];
        if (!realm) throw new RegistryProtocolError(ref.registry, 'bearer challenge without realm');
        let realmUrl: URL;
        try {
          realmUrl = new URL(realm);
        } catch (err) {
          throw new RegistryProtocolError(ref.registry, `bad token realm ${JSON.stringify(realm)}`, { cause: err });
        }
        if (realmUrl.protocol !== 'https:' && !(realmUrl.protocol === 'http:' && this.isInsecure(realmUrl.host))) {
          throw new InsecureRegistryError(
            ref.registry,
            `token realm ${realm} is not HTTPS and ${realmUrl.host} is not named insecure`,
          );
        }
        const state: AuthState = { kind: 'bearer', realm: realmUrl };
        if (challenge.params['service']) state.service = challenge.params['service'];
        this.auth.set(ref.registry, state);
        const fetchOpts: Parameters<TokenCache['fetch']>[0] = {
          insecureTls: this.isInsecure(realmUrl.host),
          registry: ref.registry,
          realm: realmUrl,
          scope,
          timeoutMs: this.timeoutMs,
        };
        if (state.service) fetchOpts.service = state.service;
        if (creds) fetchOpts.credentials = creds;
        if (signal) fetchOpts.signal = signal;
        await this.tokens.fetch(fetchOpts);
        continue;
      }
      if (challenge?.scheme === 'basic') {
        if (!creds)
          throw new UnauthorizedError(ref.registry, 401, 'basic authentication required; no credentials given');
        this.auth.set(ref.registry, { kind: 'basic' });
        continue;
      }
      throw new UnauthorizedError(ref.registry, 401, `unsupported challenge ${JSON.stringify(challengeHeader ?? '')}`);
    }
  }

  private async follow(
    ref: ImageReference,
    start: URL,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    followRedirects: boolean,
  ): Promise<HttpResponse> {
    let url = start;
    let hdrs = headers;
    for (let hop = 0; ; hop++) {
      const req: Parameters<typeof httpRequest>[1] = {
        headers: hdrs,
        timeoutMs: this.timeoutMs,
        registry: ref.registry,
        insecureTls: this.isInsecure(url.host),
      };
      if (signal) req.signal = signal;
      const res = await httpRequest(url, req);
      const loc = res.headers.location;
      if (!followRedirects || res.status < 300 || res.status >= 400 || !loc) return res;
      drain(res);
      if (hop >= 5) throw new RegistryProtocolError(ref.registry, `too many redirects for ${start.pathname}`);
      const next = new URL(loc, url);
      if (next.protocol !== 'https:' && !(next.protocol === 'http:' && this.isInsecure(next.host))) {
        throw new InsecureRegistryError(
          ref.registry,
          `redirect to ${next.protocol}//${next.host} refused (not HTTPS, not named insecure)`,
        );
      }
      if (next.host !== url.host) {
        const { Authorization: _dropped, ...rest } = hdrs;
        hdrs = rest;
      }
      url = next;
    }
  }

  private async statusError(ref: ImageReference, res: HttpResponse, what: string): Promise<Error> {
    const detail = await errorDetail(res);
    if (res.status === 403)
      return new UnauthorizedError(ref.registry, 403, `access to ${what} denied${detail ? `: ${detail}` : ''}`);
    if (res.status >= 500)
      return new RegistryUnreachableError(ref.registry, `HTTP ${res.status} for ${what}${detail ? `: ${detail}` : ''}`);
    return new RegistryProtocolError(ref.registry, `HTTP ${res.status} for ${what}${detail ? `: ${detail}` : ''}`);
  }

  /** For messages: the reference as the user would write it. */
  static describe(ref: ImageReference): string {
    return formatReference(ref);
  }
}

/** Yields a response body, turning a broken connection into RegistryUnreachableError. */
async function* guardBody(res: HttpResponse, registry: string, what: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    if (err instanceof RegistryUnreachableError) throw err;
    throw new RegistryUnreachableError(registry, `connection lost while reading ${what}: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    res.body.destroy();
  }
}

function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const i = registry.lastIndexOf(':');
  return i >= 0 ? registry.slice(0, i) : registry;
}

/** The `errors[].code: message` of a distribution error body, best effort. */
async function errorDetail(res: HttpResponse): Promise<string> {
  try {
    const body = await readBody(res, 64 << 10);
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    return (parsed.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch (err) {
    // Only the optional detail is lost: a body that is not a distribution error, or cut short.
    if (err instanceof SyntaxError || err instanceof RegistryUnreachableError || err instanceof RegistryProtocolError)
      return '';
    if (['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE'].includes(errnoCode(err) ?? '')) return '';
    throw err;
  }
}
