/**
 * Registry settings that apply to every user of a data root (shoald, `shoal image`, `shoal
 * container run`), like Docker's daemon.json: `<root>/registries.json`
 * `{ "insecureRegistries": ["198.18.0.1:5000"], "credentials": { "host:port": { "username", "password" } } }`
 * plus the environment variable `SHOAL_INSECURE_REGISTRIES` (comma separated). Options given in
 * code are merged on top (lists are joined, credentials given in code win).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, InvalidArgumentError } from '@shoal/common';
import type { Credentials } from './auth.js';
import type { RegistryClientOptions } from './registry-client.js';

export const REGISTRY_CONFIG_FILE = 'registries.json';

interface RegistryConfigFile {
  insecureRegistries?: unknown;
  credentials?: unknown;
}

/** Reads `<root>/registries.json` and the environment, merged with `given`. */
export function registryOptions(root: string, given: RegistryClientOptions = {}): RegistryClientOptions {
  const path = join(root, REGISTRY_CONFIG_FILE);
  let file: RegistryConfigFile = {};
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as RegistryConfigFile;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') {
      throw new InvalidArgumentError(`${path}: unreadable registry config: ${(err as Error).message}`, { cause: err });
    }
  }
  const insecure = new Set<string>(given.insecureRegistries ?? []);
  if (Array.isArray(file.insecureRegistries)) {
    for (const h of file.insecureRegistries) if (typeof h === 'string') insecure.add(h);
  }
  for (const h of (process.env['SHOAL_INSECURE_REGISTRIES'] ?? '').split(',')) if (h.trim()) insecure.add(h.trim());
  const credentials: Record<string, Credentials> = {};
  if (file.credentials && typeof file.credentials === 'object') {
    for (const [host, c] of Object.entries(file.credentials as Record<string, Partial<Credentials>>)) {
      if (typeof c?.username === 'string' && typeof c.password === 'string') {
        credentials[host] = { username: c.username, password: c.password };
      }
    }
  }
  Object.assign(credentials, given.credentials ?? {});
  return { ...given, insecureRegistries: [...insecure], credentials };
}
