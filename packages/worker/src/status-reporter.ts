/**
 * Batches task status updates to the dispatcher. Reports queue in order; those made in one turn
 * of the event loop go in one call (a task's STARTING and RUNNING together: RUNNING does not wait
 * for a round trip). Up to MAX_IN_FLIGHT UpdateTaskStatus calls go at a time; while that many are
 * in flight the next reports gather into the following batch (at most MAX_BATCH per call). A call
 * returns once the manager committed it; the manager keeps the furthest state per task whatever
 * the order the calls land in. A failed call puts its batch back in report order for the next
 * session, so no state is lost across a manager change.
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
  /** A pump is due at the end of this turn. */
  private scheduled = false;

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
    if (this.queue.length === 0 && this.inFlight === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private kick(): void {
    if (this.scheduled || !this.link || this.queue.length === 0) return;
    // from the end of this turn of the loop: reports made together (STARTING then RUNNING) go in one call
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
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
