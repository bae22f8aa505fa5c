/**
 * How daemon-backed commands end: an error the daemon sent is printed as docker prints it,
 * `Error response from daemon: <message>`; the CLI's own errors (a bad flag value, no daemon)
 * as one line; either way the exit code says the kind of failure.
 */
import type { Command } from 'commander';
import { RemoteError } from '@shoal/api';
import { ShoalError, errorKind, errorMessage, type ErrorKind } from '@shoal/common';
import { connectDaemon, type DaemonClient } from './client.js';

/** Exit codes of daemon-backed commands by error kind (docs/cli.md). */
export const EXIT_CODE_OF_KIND: Readonly<Record<ErrorKind, number>> = {
  internal: 1,
  'invalid-argument': 2,
  'not-found': 3,
  'already-exists': 4,
  'failed-precondition': 5,
  'permission-denied': 6,
  unavailable: 7,
  cancelled: 130,
};

/** The one line printed for a failure. */
export function failureLine(err: unknown): string {
  if (err instanceof RemoteError) return `Error response from daemon: ${err.message}`;
  if (err instanceof ShoalError)
    return err.message.startsWith('Cannot connect') ? err.message : `shoal: ${err.message}`;
  return `shoal: ${errorMessage(err)}`;
}

/** The `-H` given to the root program (before the verb, as docker's). */
export function hostFlag(cmd: Command): string | undefined {
  const h = cmd.optsWithGlobals<{ host?: unknown }>().host;
  return typeof h === 'string' ? h : undefined;
}

/**
 * Wraps a command action that talks to the daemon: opens the client, runs, closes, and turns a
 * failure into one line on stderr and the exit code of its kind.
 */
export function daemonAction<A extends unknown[]>(
  fn: (client: DaemonClient, ...args: A) => Promise<void>,
): (...args: [...A, Command]) => Promise<void> {
  return async (...args) => {
    const cmd = args[args.length - 1] as Command;
    let client: DaemonClient | undefined;
    try {
      client = connectDaemon(hostFlag(cmd));
      await fn(client, ...(args.slice(0, -1) as unknown as A));
    } catch (err) {
      process.stderr.write(failureLine(err) + '\n');
      if (process.env['SHOAL_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
      process.exitCode = EXIT_CODE_OF_KIND[errorKind(err)];
    } finally {
      client?.close();
    }
  };
}
