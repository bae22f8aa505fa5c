/**
 * `lab exec`: running commands in a host.
 *
 * Hostnames: a network namespace has no UTS namespace of its own, so `up` binds a persistent UTS
 * namespace per host (`unshare --uts=<file> hostname h1`), and `exec` enters both with
 * `nsenter --net=/run/netns/NS --uts=<file>`. nsenter (not `ip netns exec`) keeps the root
 * namespace's /sys, where runc and daemons find the cgroup v1 mounts.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '@shoal/common';
import { LabNotRootError } from '../errors.js';
import { requireHost, requireLab, type LabHostState, type LabState } from './lab-state.js';
import { isRoot } from './lab-system.js';

/** The argv that runs `cmd` inside a host: its network and UTS namespaces, env naming the host. */
export function hostCommand(h: LabHostState, cmd: readonly string[]): string[] {
  return ['nsenter', `--net=/run/netns/${h.netns}`, `--uts=${h.utsPath}`, '--', ...cmd];
}

function hostEnv(s: LabState, h: LabHostState): NodeJS.ProcessEnv {
  return {
    ...process.env,
    SHOAL_LAB: s.name,
    SHOAL_LAB_HOST: h.name,
    SHOAL_LAB_DATA: h.dataDir,
    SHOAL_LAB_RUN: h.runDir,
    // The host's shoald (`shoal node ls` in the host talks to it) and its engine's roots.
    SHOAL_HOST: `unix://${join(h.runDir, 'shoal.sock')}`,
    SHOAL_DATA_ROOT: join(h.dataDir, 'engine'),
    SHOAL_RUN_ROOT: join(h.runDir, 'engine'),
  };
}

async function target(lab: string, host: string): Promise<{ s: LabState; h: LabHostState }> {
  const s = await requireLab(lab);
  const h = requireHost(s, host);
  if (!isRoot()) throw new LabNotRootError('exec');
  return { s, h };
}

/** Runs a command in a host with inherited stdio; resolves to its exit code (128+signal if killed). */
export async function labExecInherit(lab: string, host: string, cmd: readonly string[]): Promise<number> {
  const { s, h } = await target(lab, host);
  const [file = 'nsenter', ...args] = hostCommand(h, cmd);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'inherit', env: hostEnv(s, h) });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 0));
    });
  });
}

/** Runs a command in a host and collects its output (non-zero exits resolve unless `check`). */
export async function labExec(
  lab: string,
  host: string,
  cmd: readonly string[],
  opts: { check?: boolean; input?: string } = {},
): Promise<RunResult> {
  const { s, h } = await target(lab, host);
  const [file = 'nsenter', ...args] = hostCommand(h, cmd);
  return run(file, args, {
    env: hostEnv(s, h),
    check: opts.check ?? false,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
}
