/**
 * Starts Debian's docker-registry (Distribution 2.8) with a config of our own: filesystem storage
 * in a given directory, deletes enabled, plain HTTP on one address, optional htpasswd (bcrypt)
 * or any other `auth` section. Used on loopback by engine tests and on a lab's underlay.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { errnoCode, run, sleep, isProcessAlive } from '@shoal/common';
import { RegistryStartError } from '../errors.js';

export const REGISTRY_BINARY = 'docker-registry';

export interface StartRegistryOptions {
  /** Directory for the config, storage (`data/`), log and htpasswd file; created if missing. */
  dir: string;
  /** `host:port` to listen on; port 0 picks a free one. Default `127.0.0.1:0`. */
  addr?: string;
  /** Require HTTP Basic auth with this user (bcrypt htpasswd file written into `dir`). */
  htpasswd?: { username: string; password: string };
  /** A raw `auth` section for the registry config (e.g. `{ token: {...} }`); wins over htpasswd. */
  auth?: Record<string, unknown>;
  /** Leave the registry running after this process exits (a lab's registry). Default false. */
  detached?: boolean;
  /** Milliseconds to wait for `/v2/` to answer. Default 15000. */
  timeoutMs?: number;
}

export interface RunningRegistry {
  /** `http://127.0.0.1:40123` */
  url: string;
  /** `127.0.0.1:40123`, as used in image references. */
  addr: string;
  pid: number;
  /** The config file; its path (under `dir`) is on the registry's command line. */
  configPath: string;
  /** Stops the registry (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
}

/** Finds a free TCP port on a host by binding port 0 and closing it again. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new RegistryStartError(addr, 'addr must be host:port');
  return { host: addr.slice(0, i), port };
}

/** Rejects when something already listens on host:port (a registry would otherwise seem to answer). */
function ensureFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e) =>
      reject(new RegistryStartError(`${host}:${port}`, `address in use or unavailable (${e.message})`, { cause: e })),
    );
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

/** Writes the registry config (JSON is valid YAML) and returns its path. */
export async function writeRegistryConfig(dir: string, addr: string, auth?: Record<string, unknown>): Promise<string> {
  await mkdir(join(dir, 'data'), { recursive: true });
  const config = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'data') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr },
    ...(auth ? { auth } : {}),
  };
  const path = join(dir, 'registry.yml');
  await writeFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** Writes a bcrypt htpasswd file with `htpasswd -Bbn` (apache2-utils). */
export async function writeHtpasswd(path: string, username: string, password: string): Promise<void> {
  const { stdout } = await run('htpasswd', ['-Bbn', username, password]);
  await writeFile(path, stdout.trim() + '\n', { mode: 0o600 });
}

/** Stops a process by pid: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  if (!isProcessAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return; // gone meanwhile
    throw err;
  }
  const deadline = Date.now() + graceMs;
  while (isProcessAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isProcessAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') throw err; // gone
    }
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.status === 200 || res.status === 401;
  } catch (err) {
    // refused or no answer within the timeout: not up (yet)
    if (err instanceof TypeError || (err instanceof DOMException && err.name === 'TimeoutError')) return false;
    throw err;
  }
}

async function startOnce(
  opts: StartRegistryOptions,
  addr: string,
  auth?: Record<string, unknown>,
): Promise<RunningRegistry> {
  const configPath = await writeRegistryConfig(opts.dir, addr, auth);
  const logPath = join(opts.dir, 'registry.log');
  const log = openSync(logPath, 'a');
  let exited: number | null | undefined;
  const child = spawn(REGISTRY_BINARY, ['serve', configPath], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid ?? 0));
    child.once('error', (e) =>
      reject(new RegistryStartError(addr, `cannot run ${REGISTRY_BINARY} (install docker-registry)`, { cause: e })),
    );
  });
  child.once('exit', (code) => (exited = code));
  if (opts.detached) child.unref();
  const url = `http://${addr}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 15000);
  for (;;) {
    if (await answers(url)) break;
    if (exited !== undefined || !isProcessAlive(pid) || Date.now() > deadline) {
      await stopPid(pid, 1000);
      const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-2).join('; ');
      throw new RegistryStartError(
        addr,
        exited !== undefined ? `exited (${exited}): ${tail}` : `no answer on ${url}/v2/: ${tail}`,
      );
    }
    await sleep(50);
  }
  let stopped: Promise<void> | undefined;
  return { url, addr, pid, configPath, stop: () => (stopped ??= stopPid(pid)) };
}

/**
 * Starts docker-registry and waits until `/v2/` answers.
 * ```ts
 * const reg = await startRegistry({ dir: await mkdtemp(join(tmpdir(), 'reg-')) });
 * await pushTestImages(reg.url);
 * await reg.stop();
 * ```
 * @throws RegistryStartError when the binary is missing, the address is taken or it never answers.
 */
export async function startRegistry(opts: StartRegistryOptions): Promise<RunningRegistry> {
  await mkdir(opts.dir, { recursive: true });
  const { host, port } = splitAddr(opts.addr ?? '127.0.0.1:0');
  let auth = opts.auth;
  if (!auth && opts.htpasswd) {
    const path = join(opts.dir, 'htpasswd');
    await writeHtpasswd(path, opts.htpasswd.username, opts.htpasswd.password);
    auth = { htpasswd: { realm: 'shoal-test', path } };
  }
  // A free port found by probing can be taken before the registry binds it: retry a few times.
  for (let attempt = 1; ; attempt++) {
    const addr = `${host}:${port === 0 ? await freePort(host) : port}`;
    try {
      await ensureFree(host, Number(addr.slice(host.length + 1)));
      return await startOnce(opts, addr, auth);
    } catch (err) {
      if (port !== 0 || attempt >= 4 || !(err instanceof RegistryStartError) || !/in use/.test(err.message)) throw err;
    }
  }
}
