/** The engine benchmark's conmon part: the resident memory of Debian's conmon on one container. */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageResolver } from '../engine.js';
import { removeCgroupParent } from '../container/test-support.js';
import { mergeProcess } from '../container/config.js';
import type { ContainerRecord } from '../container/types.js';
import { residentKb } from '../monitor/shim.js';
import { ociBundleBuilder } from '../runtime/oci-bundle.js';
import { Runc } from '../runtime/runc.js';
import { CMD, RUNC, exec, pssKb } from './bench-util.js';

// ---- conmon (Debian's, the alternative monitor) ------------------------------------------------

/** Resident memory of conmon monitoring one running container on the same kind of bundle. */
export async function benchConmon(
  root: string,
  images: ImageResolver,
): Promise<{ rssKb: number; pssKb: number } | { skipped: string }> {
  if (!existsSync('/usr/bin/conmon')) return { skipped: 'conmon is not installed' };
  const tag = randomBytes(3).toString('hex');
  const cgParent = `/shoal-bench-conmon-${tag}`;
  const builder = ociBundleBuilder({ dataRoot: join(root, 'conmon-data'), cgroupParent: cgParent });
  const image = await images.resolve('busybox');
  const id = `conmon-${tag}`;
  const d = join(root, 'conmon');
  const bundle = join(d, 'bundle');
  const stateDir = join(root, 'conmon-data', 'containers', id);
  const runcRoot = join(d, 'runc');
  await mkdir(bundle, { recursive: true });
  await mkdir(stateDir, { recursive: true });
  await mkdir(join(d, 'exit'), { recursive: true });
  await mkdir(join(d, 'sock'), { recursive: true });
  await mkdir(runcRoot, { recursive: true });
  const proc = mergeProcess({ image: 'busybox', cmd: CMD }, image.config, 'bench');
  const req = {
    id,
    bundle,
    stateDir,
    layerDirs: image.layerDirs,
    imageConfig: image.config,
    process: proc,
    options: { image: 'busybox', cmd: CMD },
    hostname: id,
    cgroupsPath: `${cgParent}/${id}`,
  };
  await builder.prepare(req);
  const rec = { id, bundle, rootfs: join(bundle, 'rootfs'), cgroupsPath: req.cgroupsPath } as ContainerRecord;
  try {
    await exec('/usr/bin/conmon', [
      '--cid',
      id,
      '--cuuid',
      id,
      '-n',
      id,
      '-r',
      RUNC,
      '-b',
      bundle,
      '-p',
      join(d, 'pid'),
      '-l',
      `k8s-file:${join(d, 'ctr.log')}`,
      '--exit-dir',
      join(d, 'exit'),
      '--socket-dir-path',
      join(d, 'sock'),
      '--runtime-arg',
      `--root=${runcRoot}`,
      '--conmon-pidfile',
      join(d, 'conmon.pid'),
      '--log-level',
      'error',
    ]);
    // conmon returns before runc has created the container (no sync pipe given): wait for it
    for (let i = 0; i < 250 && !existsSync(join(d, 'pid')); i++) await new Promise((r) => setTimeout(r, 20));
    await exec(RUNC, ['--root', runcRoot, 'start', id]);
    await new Promise((r) => setTimeout(r, 200));
    const pid = Number(readFileSync(join(d, 'conmon.pid'), 'utf8').trim());
    return { rssKb: residentKb(pid) ?? NaN, pssKb: pssKb(pid) ?? NaN };
  } catch (err) {
    return { skipped: `conmon failed: ${String(err)}` };
  } finally {
    // `delete --force` kills a running container too; runc state tolerates one that never started
    const runc = new Runc(RUNC, runcRoot);
    await runc.kill(id, 'KILL');
    for (let i = 0; i < 100 && !existsSync(join(d, 'exit', id)); i++) await new Promise((r) => setTimeout(r, 20));
    await runc.delete(id, true);
    await builder.release(rec);
    await removeCgroupParent(cgParent);
  }
}
