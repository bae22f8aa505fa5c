/**
 * Registry authentication: parsing `WWW-Authenticate` challenges, Basic credentials, and the
 * bearer-token flow (GET realm?service=&scope= with Basic credentials if any, reply
 * `{token|access_token, expires_in}`), with tokens cached per registry and scope until they expire.
 */
import { RegistryProtocolError, UnauthorizedError } from '../errors.js';
import { drain, httpRequest, readBody } from './http.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="...",service="...",scope="..."` (one challenge). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m?.[1]) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const p of (m[2] ?? '').matchAll(re)) {
    const key = p[1];
    if (key) params[key.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: m[1].toLowerCase(), params };
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export interface TokenFetchOptions {
  registry: string;
  realm: URL;
  service?: string;
  scope: string;
  credentials?: Credentials;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Skip TLS certificate checks (realm on a host named insecure). */
  insecureTls?: boolean;
}

/** Caches bearer tokens by `registry|service|scope`. */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();

  get(registry: string, scope: string): string | undefined {
    const t = this.tokens.get(`${registry}|${scope}`);
    if (!t) return undefined;
    if (Date.now() >= t.expiresAt) {
      this.tokens.delete(`${registry}|${scope}`);
      return undefined;
    }
    return t.token;
  }

  /** Asks the token server of `opts.realm` for a token and caches it. */
  async fetch(opts: TokenFetchOptions): Promise<string> {
    const url = new URL(opts.realm);
    if (opts.service) url.searchParams.set('service', opts.service);
    url.searchParams.set('scope', opts.scope);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (opts.credentials) headers['Authorization'] = basicHeader(opts.credentials);
    const req: Parameters<typeof httpRequest>[1] = {
      headers,
      timeoutMs: opts.timeoutMs,
      registry: opts.registry,
      insecureTls: opts.insecureTls === true,
    };
    if (opts.signal) req.signal = opts.signal;
    const res = await httpRequest(url, req);
    if (res.status === 401 || res.status === 403) {
      drain(res);
      throw new UnauthorizedError(
        opts.registry,
        res.status,
        `token server ${url.host} refused ${opts.credentials ? 'the credentials' : 'anonymous access'} for ${opts.scope}`,
      );
    }
    if (res.status !== 200) {
      drain(res);
      throw new RegistryProtocolError(opts.registry, `token server ${url.host} answered HTTP ${res.status}`);
    }
    const body = await readBody(res, 1 << 20);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch (err) {
      throw new RegistryProtocolError(opts.registry, `token server ${url.host} sent invalid JSON`, { cause: err });
    }
    const token =
      typeof parsed.token === 'string'
        ? parsed.token
        : typeof parsed.access_token === 'string'
          ? parsed.access_token
          : undefined;
    if (!token) throw new RegistryProtocolError(opts.registry, `token server ${url.host} sent no token`);
    const ttl = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    // Renew a little early so that a token never expires in flight.
    this.tokens.set(`${opts.registry}|${opts.scope}`, { token, expiresAt: Date.now() + Math.max(1, ttl - 10) * 1000 });
    return token;
  }
}
