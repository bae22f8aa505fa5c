/**
 * Runs a side's own CLI for the stack benchmark (`docker stack deploy`, `shoal stack rm`...) as a
 * child process, as a user would type it: its output is kept for the error when it fails.
 */
import { run } from '@shoal/common';

/** Debian's docker.io CLI (20.10), the one that matches the Swarm side's dockerd. */
export const DOCKER_IO_CLI = '/usr/bin/docker';

/** Prefix of the namespace label the stack converters of both CLIs set. */
export const STACK_LABEL = 'com.docker.stack.namespace';

/** Runs the CLI; its exit status and output. */
export async function tryCli(
  file: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 300_000,
): Promise<{ ok: boolean; output: string }> {
  const r = await run(file, args, {
    check: false,
    env: { ...process.env, ...env },
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  return { ok: r.code === 0, output: `exit ${r.code}: ${(r.stderr + r.stdout).trim()}` };
}

/** Runs the CLI; its stdout, or an error with its output when it exits non-zero. */
export async function runCli(
  what: string,
  file: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 300_000,
): Promise<string> {
  const r = await run(file, args, {
    check: false,
    env: { ...process.env, ...env },
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  if (r.code !== 0)
    throw new Error(`${what}: \`${[file, ...args].join(' ')}\` exited ${r.code}: ${(r.stderr + r.stdout).trim()}`);
  return r.stdout;
}

/** `name` is one of `stack`'s objects (`<stack>_<name>`, Docker's scoping), or labelled with it. */
export function ofStack(stack: string, name: string, labels: Record<string, string> | undefined): boolean {
  return name.replace(/^\//, '').startsWith(`${stack}_`) || labels?.[STACK_LABEL] === stack;
}
