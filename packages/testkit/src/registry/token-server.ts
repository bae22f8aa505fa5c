/**
 * A bearer-token server for registry auth tests: a small Node HTTP server that checks Basic
 * credentials and issues RS256 JWTs signed by a self-signed certificate (made with openssl),
 * carried in the token header's `x5c`. Point the registry at it with `authConfig()`:
 * `auth.token{realm, service, issuer, rootcertbundle}`.
 *
 * ```ts
 * const ts = await startTokenServer({ dir, users: [{ username: 'u', password: 'p' }] });
 * const reg = await startRegistry({ dir: regDir, auth: ts.authConfig() });
 * ```
 */
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { run } from '@shoal/common';

export interface TokenServerOptions {
  /** Directory for the key and certificate (created by the caller). */
  dir: string;
  /** Accepted Basic credentials. Without any, every request gets a token (anonymous pull). */
  users?: { username: string; password: string }[];
  /** Also give tokens to requests without credentials when users are set. Default false. */
  allowAnonymous?: boolean;
  service?: string;
  issuer?: string;
  /** Address to listen on. Default 127.0.0.1 (port chosen by the kernel). */
  host?: string;
  /** Token lifetime in seconds. Default 300. */
  expiresIn?: number;
}

export interface RunningTokenServer {
  /** The realm URL, e.g. `http://127.0.0.1:40111/token`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file holding the signing certificate (the registry's rootcertbundle). */
  rootCertBundle: string;
  /** Requests answered so far (with the scope asked for and whether a token was given). */
  requests: { scope: string; user?: string; granted: boolean }[];
  /** The registry config `auth` section for this server. */
  authConfig(): Record<string, unknown>;
  stop(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Parses `repository:name:pull,push` scopes into JWT access entries. */
function accessFor(scope: string): { type: string; name: string; actions: string[] }[] {
  const out: { type: string; name: string; actions: string[] }[] = [];
  for (const s of scope.split(' ').filter(Boolean)) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first < 0 || last <= first) continue;
    out.push({ type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',') });
  }
  return out;
}

/** Starts the token server; `stop()` closes it. */
export async function startTokenServer(opts: TokenServerOptions): Promise<RunningTokenServer> {
  const keyPath = join(opts.dir, 'token-key.pem');
  const certPath = join(opts.dir, 'token-cert.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    '/CN=shoal-test-token-issuer',
  ]);
  const key = createPrivateKey(await readFile(keyPath));
  const certPem = await readFile(certPath, 'utf8');
  const certDer = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
  const service = opts.service ?? 'shoal-test-registry';
  const issuer = opts.issuer ?? 'shoal-test-token-issuer';
  const expiresIn = opts.expiresIn ?? 300;
  const requests: RunningTokenServer['requests'] = [];

  const issue = (sub: string, scope: string): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer] };
    const claims = {
      iss: issuer,
      sub,
      aud: service,
      iat: now,
      nbf: now - 10,
      exp: now + expiresIn,
      jti: randomBytes(8).toString('hex'),
      access: accessFor(scope),
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const scope = url.searchParams.get('scope') ?? '';
    let user: string | undefined;
    let password: string | undefined;
    const authz = req.headers.authorization;
    if (authz?.startsWith('Basic ')) {
      const decoded = Buffer.from(authz.slice(6), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      user = decoded.slice(0, i);
      password = decoded.slice(i + 1);
    }
    const users = opts.users ?? [];
    const ok =
      url.pathname === '/token' &&
      (users.length === 0 ||
        (user === undefined
          ? !!opts.allowAnonymous
          : users.some((u) => u.username === user && u.password === password)));
    requests.push({ scope, ...(user !== undefined ? { user } : {}), granted: ok });
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const token = issue(user ?? '', scope);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() }));
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const realm = `http://${opts.host ?? '127.0.0.1'}:${port}/token`;
  let stopped: Promise<void> | undefined;
  return {
    realm,
    service,
    issuer,
    rootCertBundle: certPath,
    requests,
    authConfig: () => ({ token: { realm, service, issuer, rootcertbundle: certPath } }),
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
