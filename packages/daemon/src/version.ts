import { readFileSync } from 'node:fs';

/** The version of this Shoal build, read from the package manifest. */
export function shoalVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
