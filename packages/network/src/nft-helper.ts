/**
 * nftables scripts applied inside network namespaces without a process per script: one
 * long-lived `shoal-nft` (packages/network/native/nft-helper.c, built by scripts/build-native.sh)
 * per node agent enters each namespace (setns), runs the script through libnftables as one
 * transaction and goes back to its own namespace. It keeps one netlink socket per namespace
 * (closing one costs the kernel 7-25 ms), which keeps that namespace alive: `forget(path)` lets
 * go of it when the namespace goes (the helper also drops sockets of namespaces whose path is gone
 * at its next script). A VIP update then costs a pipe round trip and the transaction (about a
 * millisecond) instead of `nsenter nft -f`, a fork and two execs that take 30-400 ms on a loaded
 * 2-core node.
 *
 * Where the helper cannot run (not built, no libnftables) the scripts go through `nsenter nft -f`
 * as before, said once in the log; a helper that dies is started again for the next script, and
 * the scripts it had not answered are run by `nft` (they replace whole tables: running one again
 * is harmless). The helper ends with `close()`, or by itself when the agent's process goes (EOF on
 * its stdin, and the parent-death signal).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { errorMessage, type Logger } from '@shoal/common';
import { DataPlaneError } from './errors.js';
import { NetlinkCli } from './netlink-cli.js';

/** Applies an nftables script inside a network namespace (a path), as one transaction. */
export interface NftRunner {
  apply(netnsPath: string, script: string): Promise<void>;
  /** The namespace goes: let go of anything held in it (idempotent). */
  forget?(netnsPath: string): Promise<void>;
}

function checkPath(netnsPath: string): void {
  if (!netnsPath.startsWith('/') || /\s/.test(netnsPath) || Buffer.byteLength(netnsPath) >= 4096)
    throw new DataPlaneError(`network namespace path "${netnsPath}" cannot be given to the nft helper`);
}

/** `shoal-nft`: $SHOAL_NFT_HELPER, else the one scripts/build-native.sh builds in this package. */
export function defaultNftHelperPath(): string {
  const env = process.env['SHOAL_NFT_HELPER'];
  if (env) return env;
  return fileURLToPath(new URL('../native/bin/shoal-nft', import.meta.url));
}

/** Scripts through `nsenter --net=PATH nft -f -`: a process per script. */
export const spawnNft: NftRunner = {
  async apply(netnsPath, script) {
    await new NetlinkCli(netnsPath).exec('nft', ['-f', '-'], script);
  },
};

export interface NftHelperOptions {
  /** The helper program (default `defaultNftHelperPath()`). */
  path?: string;
  logger?: Logger;
}

interface Request {
  readonly netnsPath: string;
  /** undefined: a forget */
  readonly script: string | undefined;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

interface Running {
  readonly child: Child;
  /** Sent, in order, not answered yet. */
  readonly waiting: Request[];
  out: Buffer;
}

/** Handles of the child that keep Node's loop alive (only while a script is out). */
interface Refable {
  ref(): void;
  unref(): void;
}

export class NftHelper implements NftRunner {
  private readonly path: string;
  private readonly log: Logger | undefined;
  private running: Running | undefined;
  private starting: Promise<Running | undefined> | undefined;
  /** The helper cannot run here: every script goes through `nft`. */
  private unavailable = false;
  private closed = false;

  constructor(opts: NftHelperOptions = {}) {
    this.path = opts.path ?? defaultNftHelperPath();
    this.log = opts.logger;
  }

  /** The helper's process ID while it runs (for tests). */
  get pid(): number | undefined {
    return this.running?.child.pid;
  }

  /** Whether scripts go through the helper (false once it proved unavailable). */
  get available(): boolean {
    return !this.unavailable;
  }

  async apply(netnsPath: string, script: string): Promise<void> {
    checkPath(netnsPath);
    const r = this.closed || this.unavailable ? undefined : (this.running ?? (await this.start()));
    if (r === undefined) return spawnNft.apply(netnsPath, script);
    const body = Buffer.from(script);
    return this.send(r, { netnsPath, script }, Buffer.concat([Buffer.from(`a ${netnsPath} ${body.length}\n`), body]));
  }

  /**
   * The helper lets go of the namespace's netlink socket (which keeps the namespace alive); call
   * it when a namespace goes. Nothing to do when no helper runs.
   */
  async forget(netnsPath: string): Promise<void> {
    checkPath(netnsPath);
    const r = this.running;
    if (r === undefined) return;
    await this.send(r, { netnsPath, script: undefined }, Buffer.from(`f ${netnsPath}\n`));
  }

  private send(r: Running, req: Pick<Request, 'netnsPath' | 'script'>, bytes: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      r.waiting.push({ ...req, resolve, reject });
      this.hold(r, true);
      r.child.stdin.write(bytes);
    });
  }

  /** Ends the helper (scripts still out are answered first); later scripts go through `nft`. */
  async close(): Promise<void> {
    this.closed = true;
    await this.starting;
    const r = this.running;
    if (r === undefined) return;
    const exited = new Promise<void>((resolve) => r.child.once('close', () => resolve()));
    this.hold(r, true);
    r.child.stdin.end();
    await exited;
  }

  private start(): Promise<Running | undefined> {
    this.starting ??= this.spawnHelper().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private spawnHelper(): Promise<Running | undefined> {
    return new Promise((resolve) => {
      let child: Child;
      try {
        child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'pipe'] });
      } catch (err) {
        this.giveUp(errorMessage(err));
        resolve(undefined);
        return;
      }
      const r: Running = { child, waiting: [], out: Buffer.alloc(0) };
      let ready = false;
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      child.stdin.on('error', () => {
        // the helper went away: 'close' below sees it and re-runs what it had not answered
      });
      child.once('error', (err) => {
        if (!ready) {
          this.giveUp(errorMessage(err));
          resolve(undefined);
        }
      });
      child.stdout.on('data', (d: Buffer) => {
        r.out = Buffer.concat([r.out, d]);
        if (!ready) {
          const nl = r.out.indexOf(10);
          if (nl < 0) return;
          const line = r.out.subarray(0, nl).toString();
          r.out = r.out.subarray(nl + 1);
          if (line !== 'ready') {
            this.giveUp(line.replace(/^unavailable /, ''));
            child.stdin.end();
            resolve(undefined);
            return;
          }
          ready = true;
          this.running = r;
          this.hold(r, false);
          resolve(r);
        }
        this.answers(r);
      });
      child.once('close', (code, signal) => {
        if (this.running === r) this.running = undefined;
        if (!ready) {
          this.giveUp(`exited (${code ?? signal}) ${stderr.trim()}`);
          resolve(undefined);
          return;
        }
        if (r.waiting.length > 0 || !this.closed)
          this.log?.warn({ code, signal, stderr: stderr.trim(), unanswered: r.waiting.length }, 'nft helper ended');
        // not answered: run by nft (a whole-table script applied twice is the same table); a
        // forget has nothing left to do, the helper's sockets went with it
        for (const req of r.waiting.splice(0))
          if (req.script === undefined) req.resolve();
          else
            spawnNft.apply(req.netnsPath, req.script).then(
              () => req.resolve(),
              (err: unknown) => req.reject(err instanceof Error ? err : new Error(String(err))),
            );
      });
    });
  }

  /** Takes the complete answers off the helper's output. */
  private answers(r: Running): void {
    for (;;) {
      const nl = r.out.indexOf(10);
      if (nl < 0) return;
      const m = /^([01]) (\d+)$/.exec(r.out.subarray(0, nl).toString());
      if (!m) {
        this.log?.error({ line: r.out.subarray(0, nl).toString() }, 'nft helper: answer not understood');
        r.child.kill('SIGKILL'); // its 'close' re-runs what is out
        return;
      }
      const len = Number(m[2]);
      if (r.out.length < nl + 1 + len) return;
      const msg = r.out.subarray(nl + 1, nl + 1 + len).toString();
      r.out = r.out.subarray(nl + 1 + len);
      const req = r.waiting.shift();
      if (r.waiting.length === 0) this.hold(r, false);
      if (!req) continue;
      if (m[1] === '0') req.resolve();
      else req.reject(new DataPlaneError(`nft in network namespace ${req.netnsPath} failed: ${msg.trim()}`));
    }
  }

  /** Keeps Node's loop alive for the helper only while it has scripts to answer. */
  private hold(r: Running, on: boolean): void {
    for (const h of [r.child, r.child.stdin, r.child.stdout, r.child.stderr] as unknown as Refable[])
      if (on) h.ref();
      else h.unref();
  }

  private giveUp(reason: string): void {
    if (!this.unavailable)
      this.log?.warn({ helper: this.path, reason }, 'nft helper unavailable: nft runs as a process per script');
    this.unavailable = true;
  }
}
