/**
 * Where a task's start spends its time on this node: each step of the way from the assignment to
 * RUNNING is marked with the milliseconds since the runner took the task, and the whole is logged
 * once, as one `task start trace` line, when the task runs (or fails on the way). Steps: `pulled`
 * (the image is in the local store), `options` (create options built; the sandbox's namespace
 * exists), `bundle` (the engine mounted the rootfs and wrote the bundle), `sandbox` (the network
 * sandbox is wired and the node's peers, DNS and VIPs include it), `runtime` (runc ran: the
 * container's process runs), `running` (reported). Steps that run at once overlap: `bundle` and
 * `sandbox` are made side by side.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '@shoal/common';

export type StartStep = 'pulled' | 'options' | 'bundle' | 'sandbox' | 'runtime' | 'running';

export class StartTrace {
  private readonly t0 = performance.now();
  /** Wall-clock time the runner took the task (to line up with the managers' traces). */
  private readonly at = Date.now();
  private readonly marks: Partial<Record<StartStep, number>> = {};
  private logged = false;

  constructor(private readonly log: Logger) {}

  mark(step: StartStep): void {
    this.marks[step] ??= Math.round(performance.now() - this.t0);
  }

  /** Logs the trace once (at RUNNING, or at the failure that ended the start). */
  done(outcome: string): void {
    if (this.logged) return;
    this.logged = true;
    this.log.info(
      { at: this.at, steps: this.marks, outcome, ms: Math.round(performance.now() - this.t0) },
      'task start trace',
    );
  }
}
