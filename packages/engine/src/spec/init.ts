/**
 * `init: true`: a tiny init (tini) as PID 1 that reaps zombies and forwards signals. The static
 * build is bind-mounted read-only into the container and put in front of the args.
 */
import { access, constants, realpath } from 'node:fs/promises';
import { errnoCode } from '@shoal/common';
import { InitNotFoundError } from '../errors.js';
import type { OciMount } from './oci.js';

/** Where the init appears inside the container (Docker's path, so images that expect it work). */
export const INIT_TARGET = '/sbin/docker-init';

/** Static builds first: a dynamic tini would not find its libc in a minimal image. */
export const INIT_CANDIDATES = [
  '/usr/bin/tini-static',
  '/usr/bin/docker-init',
  '/usr/libexec/docker/docker-init',
  '/usr/local/bin/docker-init',
  '/usr/local/bin/tini-static',
];

/** Why a candidate cannot be used as the init binary. */
const NOT_USABLE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EACCES']);

/** The host path of the init binary (resolved through symlinks), or InitNotFoundError. */
export async function findInit(explicit?: string): Promise<string> {
  const list = explicit ? [explicit] : INIT_CANDIDATES;
  for (const p of list) {
    try {
      await access(p, constants.X_OK);
      return await realpath(p);
    } catch (err) {
      // absent, dangling, or not executable: try the next one
      if (!NOT_USABLE.has(errnoCode(err) ?? '')) throw err;
    }
  }
  throw new InitNotFoundError(list);
}

export function initMount(hostPath: string): OciMount {
  return {
    destination: INIT_TARGET,
    type: 'bind',
    source: hostPath,
    options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev'],
  };
}

export function initArgs(args: readonly string[]): string[] {
  return [INIT_TARGET, '--', ...args];
}
