/**
 * Batches task status updates to the dispatcher. Reports queue in order; those made in one turn
 * of the event loop go in one call (a task's STARTING and RUNNING together: RUNNING does not wait
 * for a round trip), and while one UpdateTaskStatus call is in flight the next ones gather into
 * the following batch (at most MAX_BATCH per call). A failed call keeps its batch at the head of
 * the queue for the next session, so no state is lost across a manager change.
 */
import type { TaskStatus, TaskStatusUpdate } from '@shoal/api';
import { errorMessage, type Logger } from '@shoal/common';
import type { DispatcherLink } from './dispatcher-link.js';

const MAX_BATCH = 500;

export class StatusReporter {
  private queue: TaskStatusUpdate[] = [];
  private link: DispatcherLink | undefined;
  private flushing: Promise<void> | undefined;
  private idle: (() => void)[] = [];

  constructor(private readonly log: Logger) {}

  report(taskId: string, status: TaskStatus): void {
    this.queue.push({ TaskID: taskId, Status: status });
    this.kick();
  }

  /** Sends through `link` from now on (a new session). */
  attach(link: DispatcherLink): void {
    this.link = link;
    this.kick();
  }

  detach(link: DispatcherLink): void {
    if (this.link === link) this.link = undefined;
  }

  /** Updates not yet acknowledged by a manager. */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once the queue is empty (sent and acknowledged). */
  drained(): Promise<void> {
    if (this.queue.length === 0 && !this.flushing) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private kick(): void {
    if (this.flushing || !this.link || this.queue.length === 0) return;
    // from the end of this turn of the loop: reports made together (STARTING then RUNNING) go in one call
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.flush())
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.length === 0) for (const r of this.idle.splice(0)) r();
      });
  }

  private async flush(): Promise<void> {
    while (this.link && this.queue.length > 0) {
      const link = this.link;
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await link.updateTaskStatus(batch);
      } catch (err) {
        // The session is broken: keep the batch first in line for the next one.
        this.queue.unshift(...batch);
        this.log.warn({ err: errorMessage(err), updates: batch.length }, 'task status updates not delivered: kept');
        if (this.link === link) this.link = undefined;
        return;
      }
    }
  }
}
