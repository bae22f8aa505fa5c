import type { Command } from 'commander';

/**
 * A top-level verb of the `shoal` CLI (`lab`, `image`, `container`, ...). Each lives in its own
 * file under `commands/` and is listed once in `commands/index.ts`.
 */
export type CommandModule = (program: Command) => void;
