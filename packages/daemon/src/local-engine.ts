/**
 * The host's container engine as shoald holds it: opened on `<data-root>/engine` and
 * `<run-root>/engine` (the defaults of `shoal container`, so the daemonless CLI and shoald share
 * one data root), with the collector role (exits collected as they happen, health checks) and
 * the restart supervisor (standalone containers' `--restart` policies, Docker's rules; see
 * docs/engine.md). While shoald runs, `shoal container run -d --restart always ...` is
 * supervised by it; without shoald nothing is restarted.
 */
import { join } from 'node:path';
import type { Logger } from '@shoal/common';
import { Engine, type EngineOptions } from '@shoal/engine';

export function openLocalEngine(
  engineRoot: string,
  runRoot: string,
  log: Logger,
  rejoin?: EngineOptions['rejoin'],
): Promise<Engine> {
  return Engine.open({
    dataRoot: engineRoot,
    runRoot: join(runRoot, 'engine'),
    collector: true,
    supervise: true,
    ...(rejoin ? { rejoin } : {}),
    logger: log.child({ component: 'engine' }),
  });
}
