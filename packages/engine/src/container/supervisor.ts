/**
 * Restart policies carried out (Docker's restart manager, for one data root). It runs in the
 * engine process that holds the collector role and was opened with `supervise: true` (shoald);
 * without such a process nothing is restarted, as with Docker when dockerd is down.
 *
 * - When it begins (it took the role: shoald started, maybe after a reboot), every exited
 *   container whose policy says so is started at once, as Docker does at daemon start: `always`
 *   (even one a user stopped), `unless-stopped` unless a user stopped it, `on-failure` after a
 *   non-zero exit with retries left. Such a start resets the restart count, as Docker's.
 * - Afterwards each exit is decided once (an exit is known by its `finishedAt`; it may have been
 *   collected by this process, told through `exited`, or by another one, found by the 1 s scan):
 *   a container a user stopped stays stopped; otherwise the policy decides, and the start
 *   follows after Docker's backoff (100 ms, doubling up to 1 min, back to 100 ms once a run
 *   lasted 10 s). Each restart adds one to `restartCount`.
 */
import type { Logger } from '@shoal/common';
import { ContainerNotFoundError, ContainerStateError } from '../errors.js';
import { nextDelay, shouldRestart } from './restart-policy.js';
import type { ContainerStore } from './store.js';
import type { ContainerRecord } from './types.js';

export interface RestartSupervisorDeps {
  store: ContainerStore;
  /** True while this process holds the collector role. */
  collecting: () => boolean;
  /** Starts an exited container again; `reset` for a start when supervision begins. */
  restart: (id: string, reset: boolean) => Promise<void>;
  log: Logger;
}

export class RestartSupervisor {
  /** Per container: the exit (finishedAt) already decided. */
  private readonly decided = new Map<string, string>();
  /** Per container: the last backoff delay. */
  private readonly delays = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private interval: NodeJS.Timeout | undefined;
  private begun = false;
  private scanning = false;
  private closed = false;

  constructor(private readonly deps: RestartSupervisorDeps) {}

  start(): void {
    this.interval = setInterval(() => void this.scan(), 1000);
    this.interval.unref();
    void this.scan();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.interval);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** An exit this process collected. */
  exited(rec: ContainerRecord): void {
    if (this.begun && !this.closed) this.consider(rec);
  }

  private async scan(): Promise<void> {
    if (this.scanning || this.closed || !this.deps.collecting()) return;
    this.scanning = true;
    try {
      const recs = await this.deps.store.all();
      if (!this.begun) {
        this.begun = true;
        for (const r of recs) await this.begin(r);
        return;
      }
      for (const r of recs) this.consider(r);
    } catch (err) {
      this.deps.log.warn({ err }, 'restart supervisor scan');
    } finally {
      this.scanning = false;
    }
  }

  /** Supervision begins: Docker's daemon-start rule, no backoff. */
  private async begin(r: ContainerRecord): Promise<void> {
    if (r.status !== 'exited' || !r.restartPolicy || r.restartPolicy.name === 'no') return;
    this.decided.set(r.id, r.finishedAt ?? '');
    if (!shouldRestart(r.restartPolicy, r.exitCode ?? 255, r.manuallyStopped ?? false, r.restartCount ?? 0)) return;
    this.deps.log.info({ id: r.id, policy: r.restartPolicy.name }, 'starting a container by its restart policy');
    await this.deps.restart(r.id, true).catch((err: unknown) => this.failed(r.id, err));
  }

  private consider(r: ContainerRecord): void {
    if (r.status !== 'exited' || !r.restartPolicy || r.restartPolicy.name === 'no' || r.lease) return;
    const exit = r.finishedAt ?? '';
    if (this.decided.get(r.id) === exit || this.timers.has(r.id)) return;
    this.decided.set(r.id, exit);
    if (r.manuallyStopped) return;
    if (!shouldRestart(r.restartPolicy, r.exitCode ?? 255, false, r.restartCount ?? 0)) {
      this.delays.delete(r.id);
      return;
    }
    const ran = r.startedAt && r.finishedAt ? Date.parse(r.finishedAt) - Date.parse(r.startedAt) : 0;
    const delay = nextDelay(this.delays.get(r.id) ?? 0, ran);
    this.delays.set(r.id, delay);
    this.deps.log.info(
      { id: r.id, exitCode: r.exitCode, delayMs: delay },
      'restarting a container by its restart policy',
    );
    const t = setTimeout(() => {
      this.timers.delete(r.id);
      if (this.closed || !this.deps.collecting()) return;
      void this.deps.restart(r.id, false).catch((err: unknown) => this.failed(r.id, err));
    }, delay);
    this.timers.set(r.id, t);
  }

  /** A restart that did not happen: removed, stopped or busy meanwhile, or a failed start (retried by the scan). */
  private failed(id: string, err: unknown): void {
    if (err instanceof ContainerNotFoundError) {
      this.decided.delete(id);
      this.delays.delete(id);
      return;
    }
    if (err instanceof ContainerStateError) {
      this.deps.log.debug({ id, err: err.message }, 'no restart');
      return;
    }
    this.deps.log.warn({ id, err }, 'restart failed');
  }
}
