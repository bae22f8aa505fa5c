import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ComposeError } from '../errors.js';
import { loadCompose, type LoadOptions, type LoadedCompose } from '../loader.js';
import { prepareStack, type PreparedStack } from '../stack.js';

/** Writes `files` into a fresh temp dir, runs `fn(dir)`, and removes the dir even on failure. */
export function withFiles<T>(files: Record<string, string>, fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-compose-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Loads one in-memory file named `docker-stack.yml` (no disk). */
export function load(yaml: string, env: Record<string, string> = {}, extra: Partial<LoadOptions> = {}): LoadedCompose {
  return loadCompose({ files: [{ path: '/stack/docker-stack.yml', content: yaml }], env, ...extra });
}

/** Prepares a stack `st` from one in-memory file. */
export function prepare(
  yaml: string,
  env: Record<string, string> = {},
  extra: Partial<LoadOptions> = {},
): PreparedStack {
  return prepareStack('st', {
    files: [{ path: '/stack/docker-stack.yml', content: yaml }],
    env,
    readFile: (p) => Buffer.from(`data of ${p}`),
    ...extra,
  });
}

/** The diagnostics of the ComposeError `fn` throws, as `line:col path: message` strings (throws if none). */
export function errorsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ComposeError) return e.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`);
    throw e;
  }
  throw new Error('expected a ComposeError, got success');
}

/** Only the messages of the ComposeError `fn` throws. */
export function messagesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ComposeError) return e.diagnostics.map((d) => d.message);
    throw e;
  }
  throw new Error('expected a ComposeError, got success');
}
