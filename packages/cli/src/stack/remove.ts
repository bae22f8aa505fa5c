/**
 * `shoal stack rm STACK...`: per stack, its services (sorted by name) are removed, all at once,
 * then the CLI waits until their tasks have stopped (every worker reported its task's end; a
 * removed task's container goes as soon as it stopped, and the reaper then deletes the task),
 * then the stack's networks, secrets and configs are removed. Docker's lines: "Removing service
 * app_web", …; "Nothing found in stack: x" when there is nothing; a failure is printed and the
 * others still run, then "Failed to remove some resources from stack: x" and exit status 1.
 */
import { isTerminalTaskState } from '@shoal/api';
import { LABEL_NAMESPACE } from '@shoal/compose';
import { errorMessage } from '@shoal/common';
import type { DaemonClient } from '../daemon/client.js';
import { stackServices } from './deploy.js';

export interface RemoveOptions {
  /** How long to wait for the tasks to stop (ms); default 5 minutes. */
  timeoutMs?: number;
  /** How often the tasks are looked at meanwhile (ms); default 100. */
  intervalMs?: number;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Removes one stack; true when everything went. */
export async function removeStack(c: DaemonClient, ns: string, o: RemoveOptions = {}): Promise<boolean> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const labels = { [LABEL_NAMESPACE]: ns };
  const byName = <T extends { Spec?: { Name?: string } }>(list: T[] | undefined): T[] =>
    (list ?? []).sort((a, b) => (a.Spec?.Name ?? '').localeCompare(b.Spec?.Name ?? ''));
  const [services, nets, secs, confs] = await Promise.all([
    stackServices(c, ns),
    c.control.listNetworks({ Filters: { Labels: labels } }),
    c.control.listSecrets({ Filters: { Labels: labels } }),
    c.control.listConfigs({ Filters: { Labels: labels } }),
  ]);
  const networks = byName(nets.Networks);
  const secrets = byName(secs.Secrets);
  const configs = byName(confs.Configs);
  if (services.length + networks.length + secrets.length + configs.length === 0) {
    err.write(`Nothing found in stack: ${ns}\n`);
    return true;
  }
  let ok = true;
  const remove = async (kind: string, id: string, name: string, fn: () => Promise<unknown>): Promise<void> => {
    out.write(`Removing ${kind} ${name}\n`);
    try {
      await fn();
    } catch (e) {
      ok = false;
      err.write(`Failed to remove ${kind} ${id}: ${errorMessage(e)}\n`);
    }
  };
  // Every service at once: the leader commits the removals side by side, not one after another,
  // and every task gets the news at about the same time. The lines come in Docker's order.
  for (const s of services) out.write(`Removing service ${s.Spec?.Name ?? ''}\n`);
  const results = await Promise.allSettled(services.map((s) => c.control.removeService({ ServiceID: s.ID ?? '' })));
  const removed: string[] = [];
  for (const [i, r] of results.entries()) {
    const id = services[i]?.ID ?? '';
    if (r.status === 'fulfilled') removed.push(id);
    else {
      ok = false;
      err.write(`Failed to remove service ${id}: ${errorMessage(r.reason)}\n`);
    }
  }
  if (removed.length > 0) {
    // Until every task of the removed services has ended: then no task holds an address on the
    // stack's networks any more, and they can go.
    const deadline = Date.now() + (o.timeoutMs ?? 300_000);
    for (;;) {
      const left = ((await c.control.listTasks({ Filters: { ServiceIDs: removed } })).Tasks ?? []).filter(
        (t) => removed.includes(t.ServiceID ?? '') && !isTerminalTaskState(t.Status?.State ?? ''),
      );
      if (left.length === 0) break;
      if (Date.now() > deadline) {
        err.write(`Timed out waiting for ${left.length} task(s) of stack ${ns} to stop\n`);
        break;
      }
      await sleep(o.intervalMs ?? 100);
    }
  }
  for (const n of networks)
    await remove('network', n.ID ?? '', n.Spec?.Name ?? '', () => c.control.removeNetwork({ NetworkID: n.ID ?? '' }));
  for (const s of secrets)
    await remove('secret', s.ID ?? '', s.Spec?.Name ?? '', () => c.control.removeSecret({ SecretID: s.ID ?? '' }));
  for (const s of configs)
    await remove('config', s.ID ?? '', s.Spec?.Name ?? '', () => c.control.removeConfig({ ConfigID: s.ID ?? '' }));
  if (!ok) err.write(`Failed to remove some resources from stack: ${ns}\n`);
  return ok;
}
