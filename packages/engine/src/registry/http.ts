/**
 * One HTTP(S) request with node:http/https: no automatic redirects (the caller decides whether
 * credentials may follow), a deadline for the response headers, an idle timeout on the body,
 * and transport failures (refused, reset, DNS, TLS, timeout) turned into RegistryUnreachableError,
 * or InsecureRegistryError when an HTTPS request met a plain HTTP server.
 */
import http from 'node:http';
import https from 'node:https';
import { errnoCode } from '@shoal/common';
import { InsecureRegistryError, RegistryProtocolError, RegistryUnreachableError } from '../errors.js';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

export interface HttpOptions {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** Deadline for connecting and receiving headers (ms). */
  timeoutMs: number;
  /** Longest silence while reading the body (ms). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** Name used in errors (`host:port`). */
  registry: string;
  /** Skip TLS certificate checks (registries named insecure, as Docker does). */
  insecureTls?: boolean;
}

/** True for the TLS failure of talking https to a plain HTTP server. */
export function isPlainHttpAnswer(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /wrong version number|packet length too long|EPROTO|http request/i.test(msg) || errnoCode(err) === 'EPROTO';
}

export function httpRequest(url: URL, opts: HttpOptions): Promise<HttpResponse> {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = mod.request(url, {
      method: opts.method ?? 'GET',
      headers: opts.headers,
      signal: opts.signal,
      ...(url.protocol === 'https:' && opts.insecureTls ? { rejectUnauthorized: false } : {}),
    });
    const timer = setTimeout(() => {
      req.destroy(Object.assign(new Error(`no response within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, opts.timeoutMs);
    req.on('response', (res) => {
      settled = true;
      clearTimeout(timer);
      const idle = opts.idleTimeoutMs ?? opts.timeoutMs;
      // Sockets are reused (keep-alive): add the idle timer per response and take it off after.
      const sock = res.socket;
      const onIdle = (): void => {
        res.destroy(new RegistryUnreachableError(opts.registry, `no data for ${idle} ms from ${url.host}`));
      };
      sock.setTimeout(idle);
      sock.on('timeout', onIdle);
      const done = (): void => {
        sock.setTimeout(0);
        sock.off('timeout', onIdle);
      };
      res.once('end', done);
      res.once('close', done);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      reject(translate(err, url, opts.registry));
    });
    req.end();
  });
}

function translate(err: Error, url: URL, registry: string): Error {
  if (err.name === 'AbortError' || err instanceof RegistryUnreachableError) return err;
  if (url.protocol === 'https:' && isPlainHttpAnswer(err)) {
    return new InsecureRegistryError(
      registry,
      `${url.host} answered plain HTTP to an HTTPS request; name it as an insecure registry to allow HTTP`,
      { cause: err },
    );
  }
  const code = errnoCode(err);
  return new RegistryUnreachableError(
    registry,
    `${url.protocol}//${url.host}: ${code && !err.message.includes(code) ? `${code} ` : ''}${err.message}`,
    {
      cause: err,
    },
  );
}

/** Reads a whole response body, refusing more than `limit` bytes. */
export async function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      res.body.destroy();
      throw new RegistryProtocolError(res.url.host, `response from ${res.url.pathname} larger than ${limit} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Discards a response body. */
export function drain(res: HttpResponse): void {
  res.body.resume();
}
