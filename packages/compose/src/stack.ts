import { InvalidArgumentError } from '@shoal/common';
import { checkStack } from './checks.js';
import { convertStack, type StackSpecs } from './convert.js';
import type { Warning } from './errors.js';
import { loadCompose, type LoadOptions, type LoadedCompose } from './loader.js';

/** A stack ready to deploy: the loaded files, Docker's warnings and every spec, all checked. */
export interface PreparedStack {
  loaded: LoadedCompose;
  specs: StackSpecs;
  warnings: Warning[];
}

/** Docker's stack name check: not empty, not only blanks or quotes. */
export function validateStackName(name: string): void {
  if (name.replace(/[\s"']/g, '') === '') throw new InvalidArgumentError(`invalid stack name: ${JSON.stringify(name)}`);
}

/**
 * Load, validate, convert and check: everything `stack deploy` does before it creates
 * anything. Throws one ComposeError with every problem (file:line:column each).
 */
export function prepareStack(
  namespace: string,
  opts: LoadOptions & { readFile?: (path: string) => Buffer },
): PreparedStack {
  validateStackName(namespace);
  const loaded = loadCompose(opts);
  const specs = convertStack(loaded.config, {
    namespace,
    locate: loaded.locate,
    ...(opts.readFile ? { readFile: opts.readFile } : {}),
  });
  checkStack(specs, loaded.config, loaded.locate);
  return { loaded, specs, warnings: loaded.warnings };
}
