/**
 * Batches task status updates to the dispatcher. Reports queue in order and go out at once, in
 * up to MAX_IN_FLIGHT UpdateTaskStatus calls at a time; while that many are in flight the next
 * ones gather into the following batch (at most MAX_BATCH per call). A call returns once the
 * manager committed it, so a RUNNING report no longer waits for the commit of the call before it
 * (the manager keeps the furthest state per task whatever the order the calls land in). A failed
 * call keeps its batch at the head of the queue for the next session, so no state is lost across
 * a manager change.
 */
import type { TaskStatus, TaskStatusUpdate } from '@shoal/api';
import { errorMessage, type Logger } from '@shoal/common';
import type { DispatcherLink } from './dispatcher-link.js';

const MAX_BATCH = 500;
/** Calls in flight at once (the dispatcher gathers what arrives during a commit into one more). */
const MAX_IN_FLIGHT = 4;

export class StatusReporter {
  /** In report order (`seq`): a failed call's updates go back to their places. */
  private queue: { seq: number; u: TaskStatusUpdate }[] = [];
  private seq = 0;
  private link: DispatcherLink | undefined;
  private inFlight = 0;
  /** Updates in the calls in flight. */
  private sending = 0;
  private idle: (() => void)[] = [];

  constructor(private readonly log: Logger) {}

  report(taskId: string, status: TaskStatus): void {
    this.queue.push({ seq: this.seq++, u: { TaskID: taskId, Status: status } });
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

  /** Updates not yet sent, or sent and not acknowledged by a manager. */
  get pending(): number {
    return this.queue.length + this.sending;
  }

  /** Resolves once the queue is empty (sent and acknowledged). */
  drained(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private kick(): void {
    while (this.link && this.queue.length > 0 && this.inFlight < MAX_IN_FLIGHT) {
      const link = this.link;
      const batch = this.queue.splice(0, MAX_BATCH);
      this.inFlight++;
      this.sending += batch.length;
      void this.send(link, batch).finally(() => {
        this.inFlight--;
        this.sending -= batch.length;
        this.kick();
        if (this.queue.length === 0 && this.inFlight === 0) for (const r of this.idle.splice(0)) r();
      });
    }
  }

  private async send(link: DispatcherLink, batch: { seq: number; u: TaskStatusUpdate }[]): Promise<void> {
    try {
      await link.updateTaskStatus(batch.map((b) => b.u));
    } catch (err) {
      // The session is broken: keep the batch for the next one, in report order with the rest.
      this.queue = [...batch, ...this.queue].sort((x, y) => x.seq - y.seq);
      this.log.warn({ err: errorMessage(err), updates: batch.length }, 'task status updates not delivered: kept');
      if (this.link === link) this.link = undefined;
    }
  }
}
