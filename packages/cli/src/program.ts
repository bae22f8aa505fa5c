import { Command, CommanderError } from 'commander';
import { ShoalError, errorMessage } from '@shoal/common';
import { commands } from './commands/index.js';

/** Builds the `shoal` program with every command registered. */
export function buildProgram(): Command {
  const program = new Command('shoal')
    .description('Shoal: a declarative multi-host container orchestrator')
    .showHelpAfterError()
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

/** Runs the CLI; resolves to the process exit code. Errors become one clear line on stderr. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const code = err instanceof ShoalError ? ` [${err.code}]` : '';
    process.stderr.write(`shoal: ${errorMessage(err)}${code}\n`);
    if (process.env['SHOAL_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    return 1;
  }
}
