/**
 * One network-attachment task on this node (`Spec.Runtime` "attachment": a plain container's
 * place on an attachable overlay, made by `shoal container run --network NAME`). It has no
 * container of its own: the runner builds the task's sandbox exactly as for a service task
 * (NetworkController.prepare) and reports RUNNING; the CLI then creates its container in that
 * namespace. Whoever asked for the attachment waits on `ready` for the create options.
 *
 * The sandbox stays while the task is assigned and a container uses it. The agent checks, while
 * attachments exist, which sandboxes a container of the engine is in (`claimed`): one whose
 * container is gone (removed: `container rm`, `--rm`, or never made because the CLI died within
 * the claim grace) is `orphaned()`: its sandbox goes and the task is reported COMPLETE, so the
 * managers delete it and give its address back. A desired state of shutdown/remove (or the task
 * leaving the assignments) also removes the sandbox.
 */
import { isTerminalTaskState, taskStateRank, type Task, type TaskStatus } from '@shoal/api';
import { errorMessage, type Logger } from '@shoal/common';
import { existsSync } from 'node:fs';
import { shouldRestart, type ContainerRecord } from '@shoal/engine';
import type { NetworkController, TaskNetworkOptions } from './network/network-controller.js';
import { wantsStop } from './task-runner.js';

export interface AttachmentRunnerContext {
  network: NetworkController;
  log: Logger;
  report(taskId: string, status: TaskStatus): void;
  /** The sandbox's namespace path on this node. */
  sandboxPath(taskId: string): string;
  now(): number;
}

/** True for a task that only holds a plain container's network attachment. */
export function isAttachmentTask(t: Task): boolean {
  return t.Spec?.Runtime === 'attachment' || t.Spec?.NetworkAttachmentSpec !== undefined;
}

/** True while a container keeps its network sandbox: not stopped for good (see the agent's checkClaims). */
export function holdsSandbox(
  rec: Pick<ContainerRecord, 'status' | 'restartPolicy' | 'exitCode' | 'manuallyStopped' | 'restartCount'>,
): boolean {
  if (rec.status !== 'exited') return true;
  return (
    rec.manuallyStopped !== true && shouldRestart(rec.restartPolicy, rec.exitCode ?? 0, false, rec.restartCount ?? 0)
  );
}

export class AttachmentRunner {
  private task: Task;
  private state: string;
  private loop: Promise<void> | undefined;
  private closed = false;
  private options: Promise<TaskNetworkOptions> | undefined;
  private readonly log: Logger;
  /** When the sandbox was made or taken back (ms), and whether a container was seen in it since. */
  private madeAt: number | undefined;
  private seenClaimed = false;

  constructor(
    private readonly ctx: AttachmentRunnerContext,
    task: Task,
  ) {
    this.task = task;
    this.state = task.Status?.State ?? 'assigned';
    this.log = ctx.log.child({ task: task.ID, attachment: task.Spec?.NetworkAttachmentSpec?.ContainerID ?? '' });
  }

  get taskId(): string {
    return this.task.ID ?? '';
  }

  /** The task as last assigned. */
  get current(): Task {
    return this.task;
  }

  get observedState(): string {
    return this.state;
  }

  get container(): string | undefined {
    return undefined;
  }

  /** The sandbox's create options once made (rejects when it cannot be made, or was taken back). */
  get ready(): Promise<TaskNetworkOptions> {
    this.start();
    return this.options ?? Promise.reject(new Error(`attachment ${this.taskId} has no sandbox to offer`));
  }

  /** True while the sandbox exists and is RUNNING (the agent then checks it is claimed). */
  get attached(): boolean {
    return this.madeAt !== undefined && this.state === 'running' && !this.closed;
  }

  start(): void {
    if (this.loop !== undefined) return;
    if (wantsStop(this.task.DesiredState) || isTerminalTaskState(this.state)) {
      this.loop = this.shutdown();
      return;
    }
    const path = this.ctx.sandboxPath(this.taskId);
    if (existsSync(path) && taskStateRank(this.state) >= taskStateRank('running')) {
      // an earlier agent made it (restart of shoald): take it back; its container is in it
      this.loop = this.ctx.network.adopt(this.task).then(
        () => {
          this.madeAt = this.ctx.now();
        },
        (err: unknown) => this.fail(err),
      );
      return;
    }
    const prep = this.ctx.network.prepare(this.task);
    // attached once wired and known to this node's peers and DNS, not when the namespace exists
    const made = prep.ready.then(() => prep.options);
    this.options = made;
    this.loop = made.then(
      () => {
        this.madeAt = this.ctx.now();
        this.advance('running', 'attached');
      },
      (err: unknown) => this.fail(err), // reported here; waiters get it from `ready`
    );
  }

  update(task: Task): void {
    this.task = task;
    const st = task.Status?.State;
    if (st && taskStateRank(st) > taskStateRank(this.state)) this.state = st;
    if (wantsStop(task.DesiredState) && !this.closed)
      void this.loop
        ?.then(() => this.shutdown())
        .catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'cannot remove the attachment sandbox'));
  }

  /**
   * The agent's claim check: `claimed` = some container of the engine is in the sandbox. Once a
   * container was seen and is gone, or none came within `graceMs` of the sandbox being made, the
   * attachment is over. Returns true when it ended it.
   */
  async checkClaim(claimed: boolean, graceMs: number): Promise<boolean> {
    if (!this.attached) return false;
    if (claimed) {
      this.seenClaimed = true;
      return false;
    }
    if (!this.seenClaimed && this.ctx.now() - (this.madeAt ?? 0) < graceMs) return false;
    this.log.info(
      { claimed: this.seenClaimed },
      this.seenClaimed ? 'the container of the attachment is gone' : 'no container came into the attachment',
    );
    await this.ctx.network.release(this.taskId);
    this.advance('complete', 'container gone');
    return true;
  }

  /** Ends the runner; with `remove` (the task left the assignments) the sandbox goes too. */
  async close(opts: { remove: boolean }): Promise<void> {
    this.closed = true;
    await this.loop;
    if (opts.remove) await this.ctx.network.release(this.taskId);
  }

  private async shutdown(): Promise<void> {
    await this.ctx.network.release(this.taskId);
    this.advance('shutdown', 'shutdown');
  }

  private fail(err: unknown): void {
    const msg = errorMessage(err);
    this.log.warn({ err: msg }, 'network attachment failed');
    this.advance('failed', this.state, msg);
  }

  private advance(state: string, message: string, err?: string): void {
    if (taskStateRank(state) <= taskStateRank(this.state)) return;
    if (isTerminalTaskState(this.state)) return;
    this.state = state;
    this.ctx.report(this.taskId, {
      Timestamp: new Date().toISOString(),
      State: state,
      Message: message,
      ...(err !== undefined ? { Err: err } : {}),
    });
  }
}
