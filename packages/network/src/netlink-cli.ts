/**
 * Runs iproute2's `ip` and `bridge`, `nft` and `sysctl` (argument arrays, never a shell), optionally inside the
 * network namespace the node lives in (`nsenter --net=PATH`): in a lab each host is a namespace,
 * and the VXLAN device must be created there so that its UDP socket sits on the node's underlay.
 */
import { run, type RunResult } from '@shoal/common';
import { DataPlaneError } from './errors.js';

/** The programs the data plane runs. */
export type Tool = 'ip' | 'bridge' | 'nft' | 'sysctl';

/** stderr of iproute2 when the object to delete or change is not there. */
const ABSENT =
  /No such file or directory|Cannot find device|does not exist|No such process|Cannot open network namespace/;

export class NetlinkCli {
  /** @param hostNetns path of the node's network namespace (e.g. /run/netns/h1); none: this process's. */
  constructor(readonly hostNetns?: string) {}

  private argv(cmd: string, args: readonly string[]): [string, string[]] {
    if (this.hostNetns === undefined) return [cmd, [...args]];
    return ['nsenter', [`--net=${this.hostNetns}`, '--', cmd, ...args]];
  }

  /** Runs a command; a non-zero exit throws a DataPlaneError naming the command and stderr. */
  async exec(cmd: Tool, args: readonly string[], input?: string): Promise<string> {
    const r = await this.tryExec(cmd, args, input);
    if (r.code !== 0)
      throw new DataPlaneError(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  /** Like exec, but an object that is already gone is not an error (for idempotent removal). */
  async execAbsentOk(cmd: Tool, args: readonly string[]): Promise<boolean> {
    const r = await this.tryExec(cmd, args);
    if (r.code === 0) return true;
    if (ABSENT.test(r.stderr)) return false;
    throw new DataPlaneError(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  }

  /** Runs a command and returns its result whatever the exit. */
  tryExec(cmd: Tool, args: readonly string[], input?: string): Promise<RunResult> {
    const [file, argv] = this.argv(cmd, args);
    return run(file, argv, { check: false, ...(input !== undefined ? { input } : {}) });
  }

  /**
   * Runs several `ip` commands in one process (`ip [-n NETNS] -batch -`), which stops at the first
   * that fails. Arguments must be plain words (names, addresses, numbers).
   */
  async batch(lines: readonly (readonly string[])[], netns?: string): Promise<void> {
    for (const line of lines)
      for (const arg of line)
        if (arg === '' || /[\s"'\\#]/.test(arg))
          throw new DataPlaneError(`argument "${arg}" cannot be passed through an ip batch`);
    const input = lines.map((l) => l.join(' ')).join('\n') + '\n';
    await this.exec('ip', [...(netns !== undefined ? ['-n', netns] : []), '-batch', '-'], input);
  }

  /** `ip -j ...` parsed. */
  async json<T>(args: readonly string[]): Promise<T> {
    const out = await this.exec('ip', ['-j', ...args]);
    return JSON.parse(out.trim() === '' ? '[]' : out) as T;
  }
}
