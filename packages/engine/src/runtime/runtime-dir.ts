/**
 * Runtime state belongs to one data root. Bundles and the runc root live in
 * `<runRoot>/<key>/`, where `key` is derived from the data root's real path, so two data roots
 * sharing a run root (the default `/run/shoal/engine`) never see each other's bundles or runc
 * state. `<runRoot>/<key>/data-root` names the owner; a mismatch is refused.
 */
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { MonitorError } from '../errors.js';
import { identityTag } from '../monitor/proc.js';

export interface RuntimeDirs {
  /** `<runRoot>/<key>`: this data root's own runtime dir. */
  dir: string;
  bundles: string;
  runcRoot: string;
}

/** The runtime dir of `dataRoot` below `runRoot` (made if missing). `dataRoot` must exist. */
export async function runtimeDirs(runRoot: string, dataRoot: string): Promise<RuntimeDirs> {
  const real = await realpath(dataRoot);
  const key = createHash('sha256').update(real).digest('hex').slice(0, 16);
  const dir = join(runRoot, key);
  const dirs = { dir, bundles: join(dir, 'bundles'), runcRoot: join(dir, 'runc') };
  await mkdir(dirs.bundles, { recursive: true });
  await mkdir(dirs.runcRoot, { recursive: true });
  const owner = join(dir, 'data-root');
  let recorded: string | undefined;
  try {
    recorded = await readFile(owner, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    const tmp = `${owner}.${identityTag()}.tmp`;
    writeFileSync(tmp, real);
    renameSync(tmp, owner);
    recorded = real;
  }
  if (recorded !== real) throw new MonitorError(`run dir ${dir} belongs to data root ${recorded}, not to ${real}`);
  return dirs;
}
