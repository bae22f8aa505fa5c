/**
 * What is true of a container record, decided from facts alone: the record, its lease, its
 * shim's `exit.json`, whether its shim lives (pid and start time) and, only when those do not
 * settle it, what runc says. One decision table for both uses:
 *
 *  - observing (`inspect`, `list`): the record is shown as the verdict says, nothing is written;
 *  - settling (recovery, the collector, `wait`, `stop`, `rm`): the verdict is acted on.
 *
 * The rules that keep a concurrent process from killing a container being made:
 *  - a record whose lease owner lives is `busy`: nobody else judges it further;
 *  - a container is dead only when its shim said so (`exit.json`), or when its shim is gone and
 *    runc does not run it; a missing shim pid alone proves nothing.
 */
import type { ContainerLease, ContainerRecord } from '../container/types.js';
import type { RuncState } from '../runtime/runc.js';
import { processAlive } from './proc.js';
import type { ExitRecord } from './shim.js';

export type Verdict =
  /** Nothing to do: exited and collected, or running/created as recorded with a live shim. */
  | { kind: 'settled' }
  /** A live process holds the lease: it is this process's or that process's business. */
  | { kind: 'busy'; lease: ContainerLease }
  /** The init is gone: collect the exit (runc delete, unmount, cgroup) and record it. */
  | { kind: 'exited'; exit: ExitRecord }
  /** Its creator or starter died, but the container exists: record what runc says, drop the lease. */
  | { kind: 'adopt'; status: 'running' | 'created'; pid: number; monitorLost: boolean }
  /** Its creator died while runc still works under a live shim: look again later. */
  | { kind: 'pending' }
  /** Its creator died before anything ran: remove every trace (record, name, mounts, bundle). */
  | { kind: 'half-made' }
  /** Its remover died, or it exited with auto-remove (and no live waiter): finish the removal. */
  | { kind: 'remove' }
  /** The shim died while the container runs: the exit status will be unknown. */
  | { kind: 'monitor-lost' };

export interface VerdictFacts {
  /** `<dir>/exit.json`, read fresh on each call. */
  exit(): Promise<ExitRecord | undefined>;
  /** runc's view (undefined when runc does not know the container). Called only when needed. */
  runcState(): Promise<RuncState | undefined>;
}

/** True while the lease's owner runs (same pid and start time, not a zombie). */
export function leaseLive(lease: ContainerLease | undefined): boolean {
  return !!lease && processAlive(lease.pid, lease.start);
}

/** An exited auto-remove container is removed by anyone only once no live waiter will do it. */
export function autoRemoveDue(rec: ContainerRecord): boolean {
  return rec.autoRemove && !(rec.waiter && processAlive(rec.waiter.pid, rec.waiter.start));
}

export async function judge(rec: ContainerRecord, facts: VerdictFacts): Promise<Verdict> {
  const lease = rec.lease;
  if (lease && leaseLive(lease)) return { kind: 'busy', lease };
  if (lease?.op === 'remove') return { kind: 'remove' };
  if (rec.status === 'exited') return autoRemoveDue(rec) ? { kind: 'remove' } : { kind: 'settled' };
  let exit = await facts.exit();
  if (exit) return { kind: 'exited', exit };
  const shimUp = processAlive(rec.shimPid, rec.shimStart);
  if (shimUp && !lease) return { kind: 'settled' };
  if (!shimUp) {
    exit = await facts.exit(); // the shim may have finished just now
    if (exit) return { kind: 'exited', exit };
  }
  const st = await facts.runcState();
  const s = st?.status;
  const runs = s === 'running' || s === 'paused';
  if (shimUp) {
    // the lease's owner died (an abandoned create or start) but the monitor lives
    if (runs) return { kind: 'adopt', status: 'running', pid: st?.pid ?? 0, monitorLost: false };
    if (s === 'created' && (lease?.op === 'start' || lease?.mode === 'create'))
      return { kind: 'adopt', status: 'created', pid: st?.pid ?? 0, monitorLost: false };
    // runc not run yet, still creating, between create and start of `run -d`, or stopped with
    // exit.json about to be written: the shim settles it soon
    return { kind: 'pending' };
  }
  // no monitor
  if (runs || s === 'created') {
    if (lease) return { kind: 'adopt', status: runs ? 'running' : 'created', pid: st?.pid ?? 0, monitorLost: true };
    return rec.monitorLost ? { kind: 'settled' } : { kind: 'monitor-lost' };
  }
  if (s === 'creating') return { kind: 'pending' };
  if (lease?.op === 'create') return { kind: 'half-made' };
  // it ran (or was made) and nothing saw its end: the exit status is unknown
  return { kind: 'exited', exit: { exitCode: 255, signal: 0, exitedAt: new Date().toISOString() } };
}

/** The record as the verdict says it is, without writing anything. */
export function view(rec: ContainerRecord, v: Verdict, oomKilled = false): ContainerRecord {
  switch (v.kind) {
    case 'exited':
      return {
        ...rec,
        status: 'exited',
        exitCode: v.exit.exitCode,
        signal: v.exit.signal,
        finishedAt: v.exit.exitedAt,
        oomKilled,
      };
    case 'adopt': {
      const out: ContainerRecord = { ...rec, status: v.status, pid: v.pid || rec.pid };
      delete out.lease;
      if (v.monitorLost) out.monitorLost = true;
      return out;
    }
    case 'monitor-lost':
      return { ...rec, monitorLost: true };
    case 'settled':
    case 'busy':
    case 'pending':
    case 'half-made':
    case 'remove':
      return rec;
  }
}
