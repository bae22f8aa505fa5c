/**
 * Health checks, run by the engine process inside the container (runc exec), Docker's way:
 * status `starting` until the first success (failures inside the start period do not count),
 * then `healthy`, and `unhealthy` once `retries` probes in a row have failed. A probe that runs
 * longer than `timeout` is killed and counts as a failure. The last five probes are kept.
 */
import type { Logger } from '@shoal/common';
import { healthArgv } from '../container/config.js';
import type { HealthcheckConfig, HealthProbe, HealthState } from '../container/types.js';

export const HEALTH_LOG_SIZE = 5;
const OUTPUT_MAX = 4096;

export interface HealthDeps {
  /** Runs argv in the container; resolves with exit code and combined output. */
  exec(
    argv: string[],
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<{ exitCode: number; output: string; timedOut: boolean }>;
  /** Persists the new state (the engine merges it into the container's record). */
  save(state: HealthState): Promise<void>;
  log: Logger;
}

/** Folds one probe into the state (pure: unit-testable). */
export function applyProbe(
  prev: HealthState,
  probe: HealthProbe,
  hc: HealthcheckConfig,
  inStartPeriod: boolean,
): HealthState {
  const log = [...prev.log, probe].slice(-HEALTH_LOG_SIZE);
  if (probe.exitCode === 0) return { status: 'healthy', failingStreak: 0, log };
  if (inStartPeriod && prev.status === 'starting') return { ...prev, log };
  const failingStreak = prev.failingStreak + 1;
  const status = failingStreak >= (hc.retries ?? 3) ? 'unhealthy' : prev.status;
  return { status, failingStreak, log };
}

export class HealthRunner {
  private readonly ac = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private state: HealthState;
  private readonly startedAt: number;

  constructor(
    readonly containerId: string,
    readonly hc: HealthcheckConfig,
    private readonly deps: HealthDeps,
    startedAt: string,
    initial?: HealthState,
  ) {
    this.startedAt = Date.parse(startedAt) || Date.now();
    this.state = initial ?? { status: 'starting', failingStreak: 0, log: [] };
  }

  get current(): HealthState {
    return this.state;
  }

  private inStartPeriod(now = Date.now()): boolean {
    return now - this.startedAt < (this.hc.startPeriodMs ?? 0);
  }

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.ac.signal.aborted) return;
    const delay = this.inStartPeriod() ? (this.hc.startIntervalMs ?? 5000) : (this.hc.intervalMs ?? 30_000);
    this.timer = setTimeout(() => void this.probe(), delay);
    this.timer.unref();
  }

  /** Runs one probe now and records it. */
  async probe(): Promise<HealthState> {
    const timeoutMs = this.hc.timeoutMs ?? 30_000;
    const inStart = this.inStartPeriod();
    const start = new Date();
    let probe: HealthProbe;
    try {
      const r = await this.deps.exec(healthArgv(this.hc), timeoutMs, this.ac.signal);
      const output = r.timedOut ? `Health check exceeded timeout (${timeoutMs} ms)` : r.output.slice(0, OUTPUT_MAX);
      probe = {
        start: start.toISOString(),
        end: new Date().toISOString(),
        exitCode: r.timedOut ? -1 : r.exitCode,
        output,
      };
    } catch (err) {
      probe = {
        start: start.toISOString(),
        end: new Date().toISOString(),
        exitCode: -1,
        output: String(err).slice(0, OUTPUT_MAX),
      };
    }
    if (this.ac.signal.aborted) return this.state;
    this.state = applyProbe(this.state, probe, this.hc, inStart);
    try {
      await this.deps.save(this.state);
    } catch (err) {
      this.deps.log.warn({ err, id: this.containerId }, 'cannot save health state');
    }
    this.schedule();
    return this.state;
  }

  stop(): void {
    this.ac.abort();
    clearTimeout(this.timer);
  }
}
