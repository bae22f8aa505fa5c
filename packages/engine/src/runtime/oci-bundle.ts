/**
 * The engine's default BundleBuilder: the OCI spec from `buildSpec` (Docker's confinement with
 * the seccomp profile), the rootfs from `mountRootfs` (overlay over the image's layer dirs, the
 * upper/work dirs in the container's state dir), the container's own /etc/hostname, hosts and
 * resolv.conf (written in its state dir and bind-mounted), secrets on their tmpfs, OOM and stats
 * from the container's cgroup, and cgroup removal on release. Every create option reaches the spec
 * builder here, with the image config it is merged with.
 */
import { writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { errorMessage, silentLogger, type Logger } from '@shoal/common';
import { RootfsMountError } from '../errors.js';
import { Cgroup } from '../cgroups/cgroup.js';
import { etcFilesInput, recordNetwork } from '../container/config.js';
import type { ContainerRecord } from '../container/types.js';
import { mountRootfs, unmountRootfs } from '../rootfs/overlay.js';
import { buildSpec, type ContainerSpecInput, type SpecContext } from '../spec/build-spec.js';
import { writeEtcFiles, type EtcFilesInput } from '../spec/etc-files.js';
import { mountSecrets, unmountSecrets } from '../secrets/secrets.js';
import { copyUpVolume, type MountInput } from '../spec/mounts.js';
import type { BundleBuilder, BundleRequest } from './bundle.js';

export interface OciBundleOptions {
  /** Engine data root (named volumes live below it). */
  dataRoot: string;
  /** Parent of the container cgroups, e.g. `/shoal`. */
  cgroupParent: string;
  /** Host path of the init binary for `init: true`; default: searched (tini-static, docker-init). */
  initPath?: string;
  logger?: Logger;
}

/** Every create option the spec builder understands, mapped one to one. */
export function specInput(req: BundleRequest): ContainerSpecInput {
  const o = req.options;
  const mounts: MountInput[] = [
    ...(o.binds ?? []).map((b): MountInput => ({
      type: 'bind',
      source: b.source,
      target: b.target,
      readOnly: b.readOnly,
    })),
    ...(o.tmpfs ?? []).map((t): MountInput => ({ type: 'tmpfs', target: t.target, options: t.options })),
    ...(req.volumes ?? []).map((v): MountInput => ({
      type: 'bind',
      source: v.dir,
      target: v.target,
      readOnly: v.readOnly,
    })),
  ];
  const input: ContainerSpecInput = { id: req.id, hostname: req.hostname, mounts };
  if (o.entrypoint !== undefined) input.entrypoint = o.entrypoint;
  if (o.cmd !== undefined) input.args = o.cmd;
  if (o.env !== undefined) input.env = o.env;
  if (o.workdir !== undefined) input.workdir = o.workdir;
  if (o.user !== undefined) input.user = o.user;
  if (o.readOnly) input.readOnlyRootfs = true;
  if (o.memoryBytes !== undefined) input.memory = o.memoryBytes;
  if (o.cpus !== undefined) input.cpus = o.cpus;
  if (o.pidsLimit !== undefined) input.pidsLimit = o.pidsLimit;
  if (o.ulimits !== undefined) input.ulimits = o.ulimits;
  if (o.sysctls !== undefined) input.sysctls = o.sysctls;
  if (o.init !== undefined) input.init = o.init;
  if (o.capAdd !== undefined) input.capAdd = o.capAdd;
  if (o.capDrop !== undefined) input.capDrop = o.capDrop;
  if (o.network !== undefined) input.network = o.network;
  return input;
}

/** The /etc/hosts, /etc/hostname and /etc/resolv.conf of a request (as they are rewritten later from its record). */
export function etcInput(req: BundleRequest): EtcFilesInput {
  return etcFilesInput(recordNetwork(req.options, req.hostname));
}

export function ociBundleBuilder(opts: OciBundleOptions): BundleBuilder {
  const cgroup = (rec: Pick<ContainerRecord, 'cgroupsPath'>): Cgroup => new Cgroup(rec.cgroupsPath);
  const log = opts.logger ?? silentLogger();
  return {
    async prepare(req) {
      const rootfs = join(req.bundle, 'rootfs');
      await mountRootfs({ id: req.id, containerDir: req.stateDir, layerDirs: req.layerDirs, target: rootfs });
      try {
        // Docker's copy-up: an empty volume gets what the image has at its target
        for (const v of req.volumes ?? []) if (v.copyUp) await copyUpVolume(rootfs, v.target, v.dir);
        const input = specInput(req);
        // user mounts at these targets win, as in Docker
        const userTargets = new Set((input.mounts ?? []).map((m) => m.target.replace(/\/+$/, '')));
        input.extraMounts = writeEtcFiles(req.stateDir, etcInput(req), { skip: userTargets });
        if (req.options.secrets?.length) {
          input.extraMounts.push(...(await mountSecrets(req.stateDir, req.options.secrets)).mounts);
        }
        // the record's cgroup (a restart keeps it, whatever this engine's default parent is)
        const ctx: SpecContext = { rootfs, dataRoot: opts.dataRoot, cgroupParent: posix.dirname(req.cgroupsPath) };
        if (opts.initPath) ctx.initPath = opts.initPath;
        const spec = await buildSpec(input, req.imageConfig ?? {}, ctx);
        writeFileSync(join(req.bundle, 'config.json'), JSON.stringify(spec));
      } catch (err) {
        // undo; if that fails too, say so (the engine's cleanup after a failed create tries again)
        const undo = await unmountSecrets(req.stateDir)
          .then(() => unmountRootfs(req.stateDir, { target: rootfs, id: req.id }))
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        if (undo === undefined) throw err;
        log.warn({ id: req.id, err: errorMessage(undo) }, 'undoing the mounts of a failed prepare failed');
        throw new RootfsMountError(req.id, `${errorMessage(err)}; undoing the mounts failed: ${errorMessage(undo)}`, {
          cause: err,
        });
      }
      return { rootfs };
    },
    async release(rec) {
      const containerDir = join(opts.dataRoot, 'containers', rec.id);
      await unmountSecrets(containerDir);
      await unmountRootfs(containerDir, { target: rec.rootfs, id: rec.id });
      if (rec.cgroupsPath) await cgroup(rec).remove({ keepParent: true });
    },
    async oomKilled(rec) {
      return (await cgroup(rec).oomKills()) > 0;
    },
    async stats(rec) {
      const s = await cgroup(rec).stats();
      return {
        cpuUsageNs: s.cpuUsageNs,
        memoryUsageBytes: s.memoryUsageBytes,
        memoryLimitBytes: s.memoryLimitBytes,
        memoryMaxUsageBytes: s.memoryMaxUsageBytes,
        pids: s.pidsCurrent,
      };
    },
  };
}
