/**
 * Docker's restart policies of standalone containers: parsing (`--restart no|always|
 * unless-stopped|on-failure[:N]`), validation and the decision after an exit, with Docker's
 * backoff (100 ms doubling up to 1 min, back to 100 ms once a run lasted 10 s).
 */
import { InvalidSpecError } from '../errors.js';
import type { RestartPolicy } from './types.js';

const NAMES = ['no', 'always', 'unless-stopped', 'on-failure'] as const;

/** First delay, the doubling cap, and how long a run must last for the delay to start over. */
export const RESTART_BACKOFF = { firstMs: 100, maxMs: 60_000, resetAfterMs: 10_000 };

/** `--restart` as Docker parses it: `NAME[:N]`, N only for on-failure. */
export function parseRestartPolicy(value: string): RestartPolicy {
  const [name = '', count, ...rest] = value.split(':');
  if (rest.length) throw new InvalidSpecError('restart', `${JSON.stringify(value)}: expected NAME[:max-retries]`);
  const policy: RestartPolicy = { name: name as RestartPolicy['name'] };
  if (count !== undefined) {
    if (!/^-?\d+$/.test(count)) {
      throw new InvalidSpecError('restart', `${JSON.stringify(value)}: maximum retry count must be an integer`);
    }
    policy.maximumRetryCount = Number(count);
  }
  validateRestartPolicy(policy, false);
  return policy;
}

/** Docker's rules: a known name, a retry count only for on-failure and never negative, not with auto-remove. */
export function validateRestartPolicy(p: RestartPolicy, autoRemove: boolean): void {
  if (!(NAMES as readonly string[]).includes(p.name)) {
    throw new InvalidSpecError(
      'restart',
      `unknown policy ${JSON.stringify(p.name)}; use one of no, always, on-failure[:max-retries] or unless-stopped`,
    );
  }
  const n = p.maximumRetryCount;
  if (n !== undefined) {
    if (!Number.isInteger(n)) throw new InvalidSpecError('restart', 'maximum retry count must be an integer');
    if (n < 0) throw new InvalidSpecError('restart', 'maximum retry count cannot be negative');
    if (p.name !== 'on-failure' && n !== 0) {
      throw new InvalidSpecError(
        'restart',
        `maximum retry count can only be used with 'on-failure' (got ${p.name}:${n})`,
      );
    }
  }
  if (autoRemove && p.name !== 'no') throw new InvalidSpecError('restart', 'Conflicting options: --restart and --rm');
}

/** `on-failure:3`, `always`, `no`. */
export function formatRestartPolicy(p: RestartPolicy | undefined): string {
  if (!p) return 'no';
  return p.name === 'on-failure' && p.maximumRetryCount ? `${p.name}:${p.maximumRetryCount}` : p.name;
}

/**
 * Whether a container that exited should be started again (Docker's rule): `always` yes;
 * `unless-stopped` unless a user stopped it; `on-failure` on a non-zero exit while fewer than
 * the maximum restarts were made.
 */
export function shouldRestart(
  p: RestartPolicy | undefined,
  exitCode: number,
  manuallyStopped: boolean,
  restartCount: number,
): boolean {
  switch (p?.name) {
    case 'always':
      return true;
    case 'unless-stopped':
      return !manuallyStopped;
    case 'on-failure': {
      const max = p.maximumRetryCount ?? 0;
      return exitCode !== 0 && (max === 0 || restartCount < max);
    }
    case 'no':
    case undefined:
      return false;
  }
}

/** The next delay: doubled from the last (first 100 ms, at most 1 min), back to the first after a 10 s run. */
export function nextDelay(lastMs: number, ranMs: number): number {
  if (ranMs >= RESTART_BACKOFF.resetAfterMs || lastMs === 0) return RESTART_BACKOFF.firstMs;
  return Math.min(lastMs * 2, RESTART_BACKOFF.maxMs);
}
