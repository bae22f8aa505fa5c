/**
 * The `-c` files of `stack deploy` and `stack config`: read (`-` is stdin), loaded and checked by
 * @shoal/compose. A ComposeError is printed with every problem on its own line
 * (file:line:column: message), Docker's warnings go to stderr.
 */
import { readFileSync } from 'node:fs';
import { ComposeError, formatDiagnostic, type ComposeFileInput, type Warning } from '@shoal/compose';
import { InvalidArgumentError } from '@shoal/common';

/** Docker's `-c a.yml,b.yml` and repeated `-c` both give several files. */
export function composeFiles(values: readonly string[]): (string | ComposeFileInput)[] {
  const files = values.flatMap((v) => v.split(',')).filter((v) => v !== '');
  if (files.length === 0) throw new InvalidArgumentError('Please specify a Compose file (with --compose-file)');
  return files.map((f) => (f === '-' ? { path: '-', content: readFileSync(0) } : f));
}

export function printWarnings(warnings: readonly Warning[], err: NodeJS.WritableStream = process.stderr): void {
  for (const w of warnings) {
    const at = w.pos !== undefined && w.pos.line > 0 ? `${w.pos.file}:${w.pos.line}:${w.pos.column}: ` : '';
    err.write(`${at}${w.message}\n`);
  }
}

/**
 * Runs `fn` (loading Compose files). A ComposeError is printed as Docker prints a rejected file
 * set, every problem on its own line with file:line:column, and gives exit status 1 and
 * undefined: the caller then sends nothing to the daemon.
 */
export function loadOrReport<T>(fn: () => T, err: NodeJS.WritableStream = process.stderr): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof ComposeError)) throw e;
    for (const d of e.diagnostics) err.write(`${formatDiagnostic(d)}\n`);
    process.exitCode = 1;
    return undefined;
  }
}
