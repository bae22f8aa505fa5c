/**
 * The one merge of a container request with its image config (Docker's rules, daemon/commit.go
 * and container.CreateDaemonEnvironment): the entrypoint/cmd pair, env per key, working dir and
 * user. Both the engine's record and the OCI spec come from this function.
 *
 * Env: `PATH` (when nobody sets it) and `HOSTNAME` come first, then the image's entries, then the
 * request's, each replacing an earlier entry of the same key in place. A bare `KEY` in the request
 * removes the variable, as in Docker's API; `docker run -e KEY` copying the host's value is done by
 * the CLI, which sends `KEY=value` when KEY is set and a bare `KEY` when it is not.
 */
import { InvalidSpecError } from '../errors.js';
import type { ImageConfig } from '../image/types.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ProcessRequest {
  /** Replaces the image Entrypoint; drops the image Cmd unless `args` is given. */
  entrypoint?: string[];
  /** Replaces the image Cmd. */
  args?: string[];
  /** `KEY=value` entries, override the image's per key; a bare `KEY` removes it. */
  env?: string[];
  workdir?: string;
  user?: string;
}

export interface MergedProcess {
  args: string[];
  env: string[];
  cwd: string;
  /** As given (`uid[:gid]`, `name[:group]`) or the image's; resolved in the rootfs later. */
  user: string;
}

/** The environment of the container's process. */
export function mergeEnv(image: readonly string[], mine: readonly string[], hostname: string): string[] {
  const env = new Map<string, string>();
  env.set('PATH', DEFAULT_PATH);
  env.set('HOSTNAME', `HOSTNAME=${hostname}`);
  for (const e of image) {
    const eq = e.indexOf('=');
    if (eq > 0) env.set(e.slice(0, eq), e);
  }
  for (const e of mine) {
    if (typeof e !== 'string') throw new InvalidSpecError('env', `${JSON.stringify(e)} is not a string`);
    const eq = e.indexOf('=');
    const key = eq < 0 ? e : e.slice(0, eq);
    if (!key || e.includes('\0')) throw new InvalidSpecError('env', `${JSON.stringify(e)} has no variable name`);
    if (eq < 0) env.delete(key);
    else env.set(key, e);
  }
  return [...env.values()];
}

/** Args, env, cwd and user of a container from its request and its image's config. */
export function mergeProcess(req: ProcessRequest, image: ImageConfig, hostname: string): MergedProcess {
  const entrypoint = req.entrypoint ?? image.Entrypoint ?? [];
  const cmd = req.args ?? (req.entrypoint ? [] : (image.Cmd ?? []));
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new InvalidSpecError('args', 'no command given and the image has none');
  const cwd = req.workdir || image.WorkingDir || '/';
  if (!cwd.startsWith('/')) throw new InvalidSpecError('workdir', `${JSON.stringify(cwd)} is not an absolute path`);
  return { args, env: mergeEnv(image.Env ?? [], req.env ?? [], hostname), cwd, user: req.user ?? (image.User || '') };
}
