import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Creates the structured logger every Shoal component uses. Level comes from `SHOAL_LOG_LEVEL`
 * (default `info`; tests usually set `silent` or `warn`). Output is JSON lines on stderr so that
 * command output on stdout stays clean.
 */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env['SHOAL_LOG_LEVEL'] ?? 'info';
  return pino({ name, level, base: { pid: process.pid }, ...options }, pino.destination(2));
}

/** A logger that drops everything: for unit tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
