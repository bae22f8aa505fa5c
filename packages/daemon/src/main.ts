#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * shoald: `shoald [--data-root DIR] [--listen-addr HOST:PORT] ...` (see config.ts). Logs JSON
 * to stderr; a bad flag or configuration file is one line on stderr and exit code 2.
 * The `#!` line gives Node 1 MB semi-spaces (about 10 MB less RSS idle; docs/daemon.md, Memory).
 */
import { createLogger } from '@shoal/common';
import { loadSettings, USAGE } from './config.js';
import { Daemon } from './daemon.js';
import { DaemonConfigError } from './errors.js';
import { shoalVersion } from './version.js';

async function main(): Promise<void> {
  let loaded: Awaited<ReturnType<typeof loadSettings>>;
  try {
    loaded = await loadSettings(process.argv.slice(2));
  } catch (err) {
    if (err instanceof DaemonConfigError) {
      process.stderr.write(`shoald: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  const { settings, flags, overridden } = loaded;
  if (flags.version) {
    process.stdout.write(`shoald ${shoalVersion()}\n`);
    return;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return;
  }
  const log = createLogger('shoald', { level: settings.logLevel });
  if (overridden.length > 0)
    log.info({ keys: overridden, file: settings.configFile }, 'flags override these keys of the configuration file');
  const daemon = new Daemon(settings, flags, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'signal received');
    daemon.stop().then(
      () => process.exit(process.exitCode ?? 0),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void daemon.reload());
  try {
    await daemon.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message, code: (err as { code?: string }).code }, 'shoald failed to start');
    process.stderr.write(`shoald: ${(err as Error).message}\n`);
    process.exitCode = 1;
    await daemon
      .stop()
      .catch((e: unknown) => log.warn({ err: (e as Error).message }, 'stop after a failed start failed'));
    process.exit(1);
  }
}

await main();
