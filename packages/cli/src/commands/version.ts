import type { Command } from 'commander';
import { readFileSync } from 'node:fs';

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('Show the Shoal version')
    .action(() => {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version: string;
      };
      process.stdout.write(`shoal ${pkg.version}\n`);
    });
}
