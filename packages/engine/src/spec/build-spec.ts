/**
 * `buildSpec`: a container's service-level request plus its image config into the OCI runtime
 * spec runc runs, with Docker's default confinement. Everything is validated before anything is
 * made (named volume dirs are the only thing it creates, last), and every error names its field.
 *
 * ```ts
 * const spec = await buildSpec({ id, args: ['sleep', '60'], memory: '64m', cpus: 0.5 }, image.config,
 *   { rootfs: '/run/shoal/bundles/<id>/rootfs', dataRoot: '/var/lib/shoal/engine' });
 * await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
 * ```
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { InvalidMountError, InvalidSpecError } from '../errors.js';
import type { ImageConfig } from '../image/types.js';
import { resolveSeccomp } from '../seccomp/profile.js';
import { resolveUser } from '../user/resolve-user.js';
import { resolveCapabilities } from './capabilities.js';
import {
  DEFAULT_SHM_SIZE,
  PRIVATE_NETNS_SYSCTLS,
  READONLY_PATHS,
  WRITABLE_WITH_READONLY_ROOTFS,
  defaultDeviceRules,
  defaultMounts,
  maskedPaths,
} from './defaults.js';
import { findInit, initArgs, initMount } from './init.js';
import { mergeProcess } from './merge.js';
import { createVolumeDirs, planMounts, sortMounts, type MountInput } from './mounts.js';
import type { OciMount, OciNamespace, OciResources, OciSpec } from './oci.js';
import { buildRlimits } from './rlimits.js';
import { validateSysctls } from './sysctls.js';
import { parseCpus, parseSize, parseSwap, type Ulimit } from './units.js';

export { DEFAULT_PATH } from './merge.js';

/** The network namespace of a container. */
export type NetworkMode = 'none' | 'private' | 'host' | { path: string };

/** What a service (or `shoal container run`) asks for. Unset fields come from the image or defaults. */
export interface ContainerSpecInput {
  id: string;
  /** Replaces the image Entrypoint; drops the image Cmd unless `args` is given. */
  entrypoint?: string[];
  /** Replaces the image Cmd. */
  args?: string[];
  /** `KEY=value` entries, override the image's per key; a bare `KEY` removes it. */
  env?: string[];
  workdir?: string;
  /** `uid`, `uid:gid`, `name` or `name:group`, resolved in the rootfs. Default the image's, then root. */
  user?: string;
  /** Supplementary groups (names or gids). */
  groupAdd?: string[];
  /** Default: the first 12 characters of the id. */
  hostname?: string;
  mounts?: MountInput[];
  /** Mounts made by the caller (secrets, configs, resolv.conf, hosts), added as given. */
  extraMounts?: OciMount[];
  readOnlyRootfs?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  noNewPrivileges?: boolean;
  /** `default` (Shoal's profile resolved against the capabilities) or `unconfined`. */
  seccomp?: 'default' | 'unconfined';
  memory?: string | number;
  /** Memory + swap; default 2 x memory; -1 unlimited. */
  memorySwap?: string | number;
  memoryReservation?: string | number;
  cpus?: string | number;
  cpuShares?: number;
  cpusetCpus?: string;
  /** ≤ 0 means unlimited. */
  pidsLimit?: number;
  ulimits?: (string | Ulimit)[];
  sysctls?: Record<string, string>;
  /** Run tini as PID 1 in front of the command. */
  init?: boolean;
  shmSize?: string | number;
  /**
   * `none` (a new netns with only loopback, the default; `private` is the same), `host`, or the
   * path of an existing netns to join.
   */
  network?: NetworkMode;
  oomScoreAdj?: number;
}

export interface SpecContext {
  /** Host path of the container's mounted rootfs (its /etc/passwd and /etc/group are read). */
  rootfs: string;
  /** Engine data root: named volumes live in `<dataRoot>/volumes/<name>/_data`. */
  dataRoot: string;
  /** `root.path` written to config.json; default `rootfs` (relative to the bundle). */
  rootPath?: string;
  /** Parent of the container cgroups; default `/shoal`. */
  cgroupParent?: string;
  /** Host path of the init binary; default: searched (tini-static, docker-init). */
  initPath?: string;
  /** Node `process.arch` for seccomp; default this machine's. */
  arch?: string;
  /** Kernel version for seccomp; default this machine's. */
  kernel?: [number, number];
  /** Give the container a private cgroup namespace; default: when the host is on cgroup v2 only. */
  cgroupNamespace?: boolean;
}

const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** Whether `name` is a valid host name (RFC 1123 labels, at most 253 characters). */
export function isHostname(name: string): boolean {
  return typeof name === 'string' && name.length <= 253 && HOSTNAME.test(name);
}

/**
 * The container's host name: the one asked for, else (as Docker) the host's own with the host
 * network, else the first 12 characters of the id. Throws on an invalid name.
 */
export function defaultHostname(id: string, hostname: string | undefined, network?: NetworkMode): string {
  const name =
    hostname ||
    (network === 'host' ? osHostname() : '') ||
    id.slice(0, 12).replace(/[^a-zA-Z0-9]+$/, '') ||
    'container';
  if (!isHostname(name)) throw new InvalidSpecError('hostname', `${JSON.stringify(name)} is not a valid host name`);
  return name;
}

function resources(input: ContainerSpecInput): OciResources {
  const res: OciResources = { devices: defaultDeviceRules() };
  if (input.memory !== undefined) {
    const limit = parseSize(input.memory, 'memory');
    if (limit < 6 * 1024 * 1024) throw new InvalidSpecError('memory', `${limit} bytes is below the minimum of 6 MiB`);
    let swap = limit * 2;
    if (input.memorySwap !== undefined) {
      swap = parseSwap(input.memorySwap, 'memorySwap');
      if (swap !== -1 && swap < limit) {
        throw new InvalidSpecError('memorySwap', `must be at least memory (${limit}) or -1, got ${swap}`);
      }
    }
    res.memory = { limit, swap };
  } else if (input.memorySwap !== undefined) {
    throw new InvalidSpecError('memorySwap', 'needs a memory limit as well');
  }
  if (input.memoryReservation !== undefined) {
    const reservation = parseSize(input.memoryReservation, 'memoryReservation');
    if (res.memory?.limit !== undefined && reservation > res.memory.limit) {
      throw new InvalidSpecError('memoryReservation', 'must not exceed the memory limit');
    }
    res.memory = { ...res.memory, reservation };
  }
  if (input.cpus !== undefined) res.cpu = { ...parseCpus(input.cpus) };
  if (input.cpuShares !== undefined) {
    if (!Number.isInteger(input.cpuShares) || input.cpuShares < 2 || input.cpuShares > 262144) {
      throw new InvalidSpecError('cpuShares', `${input.cpuShares} is not between 2 and 262144`);
    }
    res.cpu = { ...res.cpu, shares: input.cpuShares };
  }
  if (input.cpusetCpus !== undefined) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(input.cpusetCpus)) {
      throw new InvalidSpecError('cpusetCpus', `${JSON.stringify(input.cpusetCpus)} is not a CPU list like 0-1,3`);
    }
    res.cpu = { ...res.cpu, cpus: input.cpusetCpus };
  }
  if (input.pidsLimit !== undefined) {
    if (!Number.isInteger(input.pidsLimit)) throw new InvalidSpecError('pidsLimit', 'must be a whole number');
    res.pids = { limit: input.pidsLimit > 0 ? input.pidsLimit : -1 };
  }
  return res;
}

function hostIsCgroupV2Only(): boolean {
  return existsSync('/sys/fs/cgroup/cgroup.controllers');
}

/** The OCI spec of a container. Throws EngineError subclasses naming the bad field. */
export async function buildSpec(input: ContainerSpecInput, image: ImageConfig, ctx: SpecContext): Promise<OciSpec> {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(input.id)) {
    throw new InvalidSpecError('id', `${JSON.stringify(input.id)} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  }
  // process: the one merge with the image config (merge.ts)
  const hostname = defaultHostname(input.id, input.hostname, input.network);
  const merged = mergeProcess(input, image, hostname);
  let args = merged.args;
  const { env, cwd } = merged;
  const user = await resolveUser(ctx.rootfs, merged.user, input.groupAdd);
  const caps = resolveCapabilities(input.capAdd, input.capDrop);
  const limits = buildRlimits(input.ulimits ?? []);
  const oomScoreAdj = input.oomScoreAdj ?? 0;
  if (!Number.isInteger(oomScoreAdj) || oomScoreAdj < -1000 || oomScoreAdj > 1000) {
    throw new InvalidSpecError('oomScoreAdj', `${oomScoreAdj} is not between -1000 and 1000`);
  }
  const res = resources(input);

  // namespaces and sysctls
  const network = input.network ?? 'private';
  const namespaces: OciNamespace[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (typeof network === 'object') {
    if (!network.path.startsWith('/')) throw new InvalidSpecError('network.path', 'must be an absolute path');
    try {
      await stat(network.path);
    } catch (err) {
      throw new InvalidSpecError('network.path', `network namespace ${network.path} does not exist`, { cause: err });
    }
    namespaces.splice(1, 0, { type: 'network', path: network.path });
  } else if (network === 'private' || network === 'none') {
    namespaces.splice(1, 0, { type: 'network' });
  } else if (network !== 'host') {
    throw new InvalidSpecError('network', `${JSON.stringify(network)} is not none, host or {path}`);
  }
  if (ctx.cgroupNamespace ?? hostIsCgroupV2Only()) namespaces.push({ type: 'cgroup' });
  const ownNetns = network !== 'host';
  const userSysctls = input.sysctls ?? {};
  validateSysctls(userSysctls, ownNetns);
  const sysctl = { ...(ownNetns ? PRIVATE_NETNS_SYSCTLS : {}), ...userSysctls };

  // mounts
  const shmSize = input.shmSize !== undefined ? parseSize(input.shmSize, 'shmSize') : DEFAULT_SHM_SIZE;
  if (shmSize <= 0) throw new InvalidSpecError('shmSize', 'must be greater than 0');
  const planned = await planMounts(input.mounts ?? [], ctx.dataRoot);
  const extra = (input.extraMounts ?? []).map((m) => ({ ...m, options: [...m.options] }));
  let initHost: string | undefined;
  if (input.init) initHost = await findInit(ctx.initPath);

  const plannedTargets = new Set(planned.mounts.map((m) => m.destination));
  for (const m of extra) {
    if (!m.destination.startsWith('/')) throw new InvalidMountError(m.destination, 'target must be an absolute path');
    if (plannedTargets.has(m.destination)) {
      throw new InvalidMountError(m.destination, 'a user mount and a secret/config/system mount have this target');
    }
  }
  const userTargets = new Set([...planned.mounts, ...extra].map((m) => m.destination));
  const readOnly = input.readOnlyRootfs ?? false;
  const defaults = defaultMounts(shmSize).filter((m) => !userTargets.has(m.destination));
  if (readOnly) {
    for (const m of [...defaults, ...extra]) {
      if (!WRITABLE_WITH_READONLY_ROOTFS.has(m.destination) && !m.options.includes('ro')) m.options.push('ro');
    }
  }
  const mounts = [...defaults, ...sortMounts([...planned.mounts, ...extra])];
  if (initHost) {
    mounts.push(initMount(initHost));
    args = initArgs(args);
  }

  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user,
      args,
      env,
      cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: limits,
      noNewPrivileges: input.noNewPrivileges ?? false,
      oomScoreAdj,
    },
    root: { path: ctx.rootPath ?? 'rootfs', readonly: readOnly },
    hostname,
    mounts,
    linux: {
      cgroupsPath: `${ctx.cgroupParent ?? '/shoal'}/${input.id}`,
      resources: res,
      namespaces,
      maskedPaths: maskedPaths(),
      readonlyPaths: [...READONLY_PATHS],
      sysctl,
    },
  };
  if ((input.seccomp ?? 'default') === 'default') {
    const opts: Parameters<typeof resolveSeccomp>[0] = { capabilities: caps };
    if (ctx.arch) opts.arch = ctx.arch;
    if (ctx.kernel) opts.kernel = ctx.kernel;
    spec.linux.seccomp = resolveSeccomp(opts);
  } else if (input.seccomp !== 'unconfined') {
    throw new InvalidSpecError('seccomp', `${JSON.stringify(input.seccomp)} is not default or unconfined`);
  }
  // only now, with everything valid, create what the spec points at
  await createVolumeDirs(planned.volumes, ctx.rootfs);
  return spec;
}
