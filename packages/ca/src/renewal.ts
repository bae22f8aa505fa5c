/**
 * Certificate renewal timing, as SwarmKit: a node renews at a random point between 50% and 80% of
 * its certificate's validity (spreading renewals of certificates issued together), at once if that
 * point has passed, and retries failures with backoff. Time comes from a Clock seam.
 */
import { Backoff, type BackoffOptions, type Clock, createLogger, errorMessage, type Logger } from '@shoal/common';

export const RENEW_MIN_FRACTION = 0.5;
export const RENEW_MAX_FRACTION = 0.8;
/** The longest delay a Node timer takes (2^31-1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The validity window of a certificate. */
export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The instant (ms since epoch) at which to renew: notBefore + validity * (0.5 + 0.3 * random()). */
export function renewalTime(v: Validity, random: () => number = Math.random): number {
  const from = v.notBefore.getTime();
  const span = v.notAfter.getTime() - from;
  const r = Math.min(Math.max(random(), 0), 1);
  return from + span * (RENEW_MIN_FRACTION + (RENEW_MAX_FRACTION - RENEW_MIN_FRACTION) * r);
}

/** Milliseconds from `now` until renewal (0 when due). */
export function renewalDelay(v: Validity, now: number, random: () => number = Math.random): number {
  return Math.max(0, renewalTime(v, random) - now);
}

/** True once `now` is at or past the earliest renewal point (50% of the validity). */
export function isRenewalDue(v: Validity, now: number): boolean {
  return now >= renewalTime(v, () => 0);
}

export interface CertRenewerOptions {
  /** Obtains a new certificate (CSR + RPC to a manager) and returns its validity. */
  readonly renew: () => Promise<Validity>;
  /** The validity of the certificate the node holds now. */
  readonly current: Validity;
  readonly clock: Clock;
  readonly random?: () => number;
  /** Retry backoff after a failed renewal; default 1 s doubling to 5 min. */
  readonly backoff?: BackoffOptions;
  readonly logger?: Logger;
}

/**
 * Renews the node certificate in the background: schedules a renewal at the random point of the
 * current certificate's validity, then of each new one; a failure is retried with backoff.
 * `renewNow()` forces a renewal (promote or demote: the new role needs a new certificate).
 */
export class CertRenewer {
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private timer: { cancel(): void } | undefined;
  private current: Validity;
  private running = false;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  /** Number of successful renewals, for status and tests. */
  renewals = 0;
  /** Number of failed attempts since the last success. */
  failures = 0;
  /** When the next attempt is due (ms since epoch), or undefined when stopped. */
  nextAttemptAt: number | undefined;

  constructor(private readonly opts: CertRenewerOptions) {
    this.current = opts.current;
    this.backoff = new Backoff(opts.backoff ?? { initialMs: 1000, maxMs: 5 * 60_000, random: opts.random });
    this.log = opts.logger ?? createLogger('ca-renewer');
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.schedule(renewalDelay(this.current, this.opts.clock.now(), this.opts.random));
  }

  stop(): void {
    this.stopped = true;
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    this.nextAttemptAt = undefined;
  }

  /** Renews now (after any renewal in flight); resolves when that attempt ends. */
  async renewNow(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    this.timer?.cancel();
    this.timer = undefined;
    await this.attempt();
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    this.timer?.cancel();
    const at = this.opts.clock.now() + delay;
    this.nextAttemptAt = at;
    this.wait(at);
  }

  /** Timers hold at most 2^31-1 ms (24.8 days; longer ones fire at once): wait in steps. */
  private wait(at: number): void {
    const left = at - this.opts.clock.now();
    const step = Math.min(Math.max(left, 0), MAX_TIMER_MS);
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.running || this.stopped) return;
      if (at - this.opts.clock.now() > 0) this.wait(at);
      else void this.attempt();
    }, step);
  }

  private attempt(): Promise<void> {
    const p = (async () => {
      try {
        const next = await this.opts.renew();
        this.current = next;
        this.renewals++;
        this.failures = 0;
        this.backoff.reset();
        if (this.stopped) return;
        const delay = renewalDelay(next, this.opts.clock.now(), this.opts.random);
        this.log.info({ notAfter: next.notAfter.toISOString(), nextInMs: delay }, 'node certificate renewed');
        this.schedule(delay);
      } catch (err) {
        this.failures++;
        if (this.stopped) return;
        const delay = this.backoff.next();
        this.log.warn(
          { err: errorMessage(err), retryInMs: delay, failures: this.failures },
          'certificate renewal failed',
        );
        this.schedule(delay);
      }
    })();
    this.inFlight = p;
    void p.finally(() => {
      if (this.inFlight === p) this.inFlight = undefined;
    });
    return p;
  }
}
