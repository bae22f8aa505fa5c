import { Command, CommanderError } from 'commander';
import { ShoalError, errnoCode, errorMessage } from '@shoal/common';
import { commands } from './commands/index.js';

/**
 * Usage errors as Docker's CLI prints them: one line saying what was wrong and a hint,
 * `shoal: unknown flag: --foo` then `See 'shoal container run --help'.`, not the whole usage.
 */
export function usageError(text: string): string {
  return text.replace(/^error: unknown option '([^']*)'/, 'shoal: unknown flag: $1').replace(/^error: /, 'shoal: ');
}

function hintOnError(cmd: Command, path: string): void {
  cmd.showHelpAfterError(`See '${path} --help'.`);
  cmd.configureOutput({ outputError: (str, write) => write(usageError(str)) });
  for (const sub of cmd.commands) hintOnError(sub, `${path} ${sub.name()}`);
}

/** Builds the `shoal` program with every command registered. */
export function buildProgram(): Command {
  const program = new Command('shoal')
    .description('Shoal: a declarative multi-host container orchestrator')
    // Options belong to the command they follow: `container exec C sh -c X` passes `-c` to sh.
    .enablePositionalOptions()
    .exitOverride();
  for (const register of commands) register(program);
  hintOnError(program, 'shoal');
  return program;
}

let pipeHandled = false;

/**
 * A reader that goes away (`shoal container ls -q | head -1`) ends the CLI quietly, as SIGPIPE
 * ends Docker's: exit status 141 (128 + SIGPIPE), no stack trace. Node ignores SIGPIPE, so the
 * failed write arrives as an EPIPE error on the stream.
 */
function quietOnBrokenPipe(): void {
  if (pipeHandled) return;
  pipeHandled = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: Error) => {
      if (errnoCode(err) !== 'EPIPE') throw err;
      process.exit(141);
    });
  }
}

/** Runs the CLI; resolves to the process exit code. Errors become one clear line on stderr. */
export async function main(argv: string[]): Promise<number> {
  quietOnBrokenPipe();
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
