/**
 * @module @shoal/cli
 * The `shoal` admin CLI. `buildProgram()` exposes the commander program for tests.
 */
export { buildProgram, main } from './program.js';
export type { CommandModule } from './command.js';
