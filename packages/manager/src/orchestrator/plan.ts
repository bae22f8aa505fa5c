/**
 * The writes of one orchestrator pass over one service, committed as one store transaction:
 * desired-state changes (with the version read), new tasks, deletions, the service's update
 * status; and when the pass wants to run again (a restart delay ending).
 */
import type { Tx } from '@shoal/store';
import type { StoredService, StoredTask } from '../services/objects.js';
import type { newTask } from './tasks.js';

export type NewTask = ReturnType<typeof newTask>;

export class Plan {
  readonly updates = new Map<string, StoredTask>();
  creates: NewTask[] = [];
  readonly removes = new Map<string, number>();
  service: StoredService | undefined;
  /** The earliest time (clock ms) the service needs another pass. */
  wakeAt: number | undefined;

  constructor(
    readonly now: number,
    readonly nowIso: string,
  ) {}

  /** The task as this plan leaves it. */
  view(t: StoredTask): StoredTask {
    return this.updates.get(t.ID) ?? t;
  }

  setDesired(t: StoredTask, state: string): void {
    const cur = this.updates.get(t.ID) ?? structuredClone(t);
    if (cur.DesiredState === state) return;
    cur.DesiredState = state;
    this.updates.set(t.ID, cur);
  }

  create(t: NewTask): void {
    this.creates.push(t);
  }

  remove(t: StoredTask): void {
    this.updates.delete(t.ID);
    this.removes.set(t.ID, t.Version.Index);
  }

  wake(at: number): void {
    if (this.wakeAt === undefined || at < this.wakeAt) this.wakeAt = at;
  }

  /** How many objects the plan writes. */
  get writes(): number {
    return this.updates.size + this.creates.length + this.removes.size + (this.service === undefined ? 0 : 1);
  }

  get empty(): boolean {
    return (
      this.updates.size === 0 && this.creates.length === 0 && this.removes.size === 0 && this.service === undefined
    );
  }

  apply(tx: Tx): void {
    if (this.service !== undefined) tx.update('service', this.service);
    for (const t of this.updates.values()) tx.update('task', t);
    for (const t of this.creates) tx.create('task', t);
    for (const [id, version] of this.removes) tx.remove('task', id, version);
  }
}
