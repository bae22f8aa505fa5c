// Test support for the worker agent tests: an in-memory dispatcher link (the test plays the
// manager's side of Assignments and UpdateTaskStatus) and task builders. The engine, images and
// containers stay real.
import type { AssignmentsMessage, AssignmentChange, Task, TaskSpec, TaskStatusUpdate } from '@shoal/api';
import type { DispatcherLink } from '@shoal/worker';

/** The manager's side of one session, in memory. */
export class FakeDispatcher implements DispatcherLink {
  readonly updates: TaskStatusUpdate[] = [];
  /** UpdateTaskStatus calls, each with its batch size. */
  readonly batches: number[] = [];
  private readonly pending: AssignmentsMessage[] = [];
  private wakeup: (() => void) | undefined;
  private ended = false;
  private seq = 0;

  push(type: 'complete' | 'incremental', changes: AssignmentChange[]): void {
    const applies = String(this.seq);
    this.seq++;
    this.pending.push({
      Type: type,
      AppliesTo: type === 'complete' ? '' : applies,
      ResultsIn: String(this.seq),
      Changes: changes,
    });
    this.wakeup?.();
  }

  /** A message as given (to test sequence checks). */
  pushRaw(msg: AssignmentsMessage): void {
    this.pending.push(msg);
    this.wakeup?.();
  }

  end(): void {
    this.ended = true;
    this.wakeup?.();
  }

  async *assignments(signal: AbortSignal): AsyncIterable<AssignmentsMessage> {
    const onAbort = (): void => this.wakeup?.();
    signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        const m = this.pending.shift();
        if (m) {
          yield m;
          continue;
        }
        if (this.ended || signal.aborted) return;
        await new Promise<void>((resolve) => (this.wakeup = resolve));
        this.wakeup = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  updateTaskStatus(updates: TaskStatusUpdate[]): Promise<void> {
    this.batches.push(updates.length);
    this.updates.push(...updates);
    return Promise.resolve();
  }

  /** The states reported for a task, in order. */
  states(taskId: string): string[] {
    return this.updates.filter((u) => u.TaskID === taskId).map((u) => u.Status?.State ?? '');
  }

  last(taskId: string): TaskStatusUpdate | undefined {
    return this.updates.filter((u) => u.TaskID === taskId).at(-1);
  }
}

export function update(task: Task): AssignmentChange {
  return { Action: 'update', Assignment: { Task: task } };
}

export function removal(task: Task): AssignmentChange {
  return { Action: 'remove', Assignment: { Task: task } };
}

let counter = 0;

/** A task of service `service` in slot `slot`, assigned to `nodeId`, desired running. */
export function makeTask(nodeId: string, service: string, slot: number, spec: TaskSpec): Task {
  const id = `t${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return {
    ID: id,
    Name: `${service}.${slot}.${id}`,
    ServiceID: `svc${service}`,
    ServiceName: service,
    Slot: slot,
    NodeID: nodeId,
    Spec: spec,
    Status: { State: 'assigned', Message: 'scheduler assigned task to node' },
    DesiredState: 'running',
  };
}

/** Polls `check` until it returns a value (generous limit; not a speed assertion). */
export async function until<T>(check: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
