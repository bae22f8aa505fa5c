/**
 * The rig every lab test file shares: a temp lab root (SHOAL_LAB_ROOT, also for the testkit calls
 * of the file), a unique lab name, the real `shoal` CLI run against that root, and ONE top-level
 * `after` hook that takes the lab down (its mounts included) before the root is removed, runs the
 * file's own extra cleanup, and then checks that no task container of the lab still runs.
 *
 * Call it at the top level of the test file (`await labTestRig(...)`): an `after` registered while
 * a test runs would belong to that test.
 */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '@shoal/common';
import { LabNotFoundError, labContainerIds, labDown, pidsInCgroupsNamed } from '@shoal/testkit';

export const repo = new URL('../..', import.meta.url).pathname;
/** The CLI as users run it. */
export const cliMain = join(repo, 'packages/cli/dist/main.js');

export interface LabTestRigOptions {
  /** Prefix of the lab root's temp directory, e.g. `shoal-netlab-`. */
  rootPrefix: string;
  /** Prefix of the lab's name: the name is `<prefix>-<6 hex digits>`. */
  labPrefix: string;
  /** Extra cleanup of the file, run in `after` once the lab is down and its root removed. */
  cleanup?: () => Promise<void>;
}

export interface CliOptions {
  /** Bytes for the CLI's stdin. */
  input?: string;
  /** Extra environment for the CLI. */
  env?: Record<string, string>;
}

export interface LabTestRig {
  /** The lab root (SHOAL_LAB_ROOT). */
  root: string;
  labName: string;
  /** `shoal ARGS` on this machine, against the lab root; never throws on a non-zero exit. */
  shoal: (args: string[], opts?: CliOptions) => Promise<RunResult>;
}

export async function labTestRig(o: LabTestRigOptions): Promise<LabTestRig> {
  const root = await mkdtemp(join(tmpdir(), o.rootPrefix));
  process.env['SHOAL_LAB_ROOT'] = root;
  const labName = `${o.labPrefix}-${randomBytes(3).toString('hex')}`;
  after(async () => {
    // The task containers run in namespaces of their own: down must find them by their cgroups.
    const containers = labContainerIds(join(root, labName));
    await labDown(labName).catch((err: unknown) => {
      if (!(err instanceof LabNotFoundError)) throw err;
    });
    await rm(root, { recursive: true, force: true });
    await o.cleanup?.();
    assert.deepEqual(pidsInCgroupsNamed(containers), [], 'task containers left running after lab down');
  });
  const shoal = (args: string[], opts: CliOptions = {}): Promise<RunResult> =>
    run(process.execPath, [cliMain, ...args], {
      check: false,
      env: { ...process.env, SHOAL_LAB_ROOT: root, ...opts.env },
      ...(opts.input === undefined ? {} : { input: Buffer.from(opts.input) }),
    });
  return { root, labName, shoal };
}

/**
 * Removes the network namespaces named with any of the cluster nodes' tags (`-<tag>-`: their
 * sandboxes and overlays), for a file's `cleanup`: what lab down cannot know of.
 */
export async function removeNamespacesTagged(tags: readonly string[]): Promise<void> {
  for (const n of existsSync('/run/netns') ? readdirSync('/run/netns') : [])
    if (tags.some((tag) => n.includes(`-${tag}-`))) await run('ip', ['netns', 'del', n], { check: false });
}
