import type { Command } from 'commander';

/**
 * Usage errors as docker's CLI prints them: one line and a hint (`shoal: unknown flag: --foo`,
 * then `See 'shoal node ls --help'.`), not the whole usage. The same rule engine-image's branch
 * applies to the whole program; applied here to the cluster commands' subtrees so that they
 * behave so on their own (applying both is harmless: the later one sets the same).
 */
export function usageLine(text: string): string {
  return text.replace(/^error: unknown option '([^']*)'/, 'shoal: unknown flag: $1').replace(/^error: /, 'shoal: ');
}

export function oneLineUsageErrors(cmd: Command, path: string): void {
  cmd.showHelpAfterError(`See '${path} --help'.`);
  cmd.configureOutput({ outputError: (str, write) => write(usageLine(str)) });
  for (const sub of cmd.commands) oneLineUsageErrors(sub, `${path} ${sub.name()}`);
}
