/**
 * The engine's default BundleBuilder: the OCI spec from `buildSpec` (Docker's confinement with
 * the seccomp profile), the rootfs from `mountRootfs` (overlay over the image's layer dirs, the
 * upper/work dirs in the container's state dir), OOM and stats from the container's cgroup, and
 * cgroup removal on release.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '@shoal/common';
import { RootfsMountError } from '../errors.js';
import { Cgroup } from '../cgroups/cgroup.js';
import type { ContainerRecord } from '../container/types.js';
import type { ImageConfig } from '../image/types.js';
import { mountRootfs, unmountRootfs } from '../rootfs/overlay.js';
import { buildSpec, type ContainerSpecInput } from '../spec/build-spec.js';
import { mountSecrets, unmountSecrets } from '../secrets/secrets.js';
import type { MountInput } from '../spec/mounts.js';
import type { BundleBuilder, BundleRequest } from './bundle.js';

export interface OciBundleOptions {
  /** Engine data root (named volumes live below it). */
  dataRoot: string;
  /** Parent of the container cgroups, e.g. `/shoal`. */
  cgroupParent: string;
  /** The image config the request is merged with (Entrypoint, Cmd, Env, User, ...). */
  imageConfig?: (req: BundleRequest) => ImageConfig;
}

function specInput(req: BundleRequest): ContainerSpecInput {
  const o = req.options;
  const mounts: MountInput[] = [
    ...(o.binds ?? []).map((b): MountInput => ({
      type: 'bind',
      source: b.source,
      target: b.target,
      readOnly: b.readOnly,
    })),
    ...(o.tmpfs ?? []).map((t): MountInput => ({ type: 'tmpfs', target: t.target, options: t.options })),
  ];
  const input: ContainerSpecInput = {
    id: req.id,
    // the process is already merged with the image config (container/config.ts)
    entrypoint: [],
    args: req.process.args,
    env: req.process.env,
    workdir: req.process.cwd,
    hostname: req.hostname,
    mounts,
  };
  if (req.process.user) input.user = req.process.user;
  if (o.readOnly) input.readOnlyRootfs = true;
  if (o.memoryBytes !== undefined) input.memory = o.memoryBytes;
  if (o.cpus !== undefined) input.cpus = o.cpus;
  if (o.pidsLimit !== undefined) input.pidsLimit = o.pidsLimit;
  return input;
}

export function ociBundleBuilder(opts: OciBundleOptions): BundleBuilder {
  const cgroup = (rec: Pick<ContainerRecord, 'cgroupsPath'>): Cgroup => new Cgroup(rec.cgroupsPath);
  return {
    async prepare(req) {
      const rootfs = join(req.bundle, 'rootfs');
      await mountRootfs({ id: req.id, containerDir: req.stateDir, layerDirs: req.layerDirs, target: rootfs });
      try {
        const input = specInput(req);
        if (req.options.secrets?.length) {
          input.extraMounts = (await mountSecrets(req.stateDir, req.options.secrets)).mounts;
        }
        const spec = await buildSpec(input, {}, { rootfs, dataRoot: opts.dataRoot, cgroupParent: opts.cgroupParent });
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
