/**
 * `--with-registry-auth`: the credentials for the image's registry from the docker client's
 * config file (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`: the `auths` entries
 * written by `docker login`), encoded as Docker's X-Registry-Auth (base64url of the JSON
 * AuthConfig). Credential helpers (`credsStore`) are not supported: that is said in one line.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, errnoCode } from '@shoal/common';

const DOCKER_HUB = 'https://index.docker.io/v1/';

/** The registry host of an image reference (`docker.io` images use Docker Hub's key). */
export function registryOf(image: string): string {
  const first = image.split('/')[0] ?? '';
  const hasDomain = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return hasDomain ? first : DOCKER_HUB;
}

interface ConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** The encoded auth for `image`, or undefined when the config has none for its registry. */
export function registryAuthFor(image: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env['DOCKER_CONFIG'] ?? join(homedir(), '.docker');
  const path = join(dir, 'config.json');
  let cfg: ConfigFile;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8')) as ConfigFile;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new InvalidArgumentError(`--with-registry-auth: cannot read ${path}: ${(err as Error).message}`);
  }
  const registry = registryOf(image);
  const entry =
    cfg.auths?.[registry] ??
    Object.entries(cfg.auths ?? {}).find(([k]) => k.replace(/^https?:\/\//, '').replace(/\/.*$/, '') === registry)?.[1];
  if (!entry) {
    if (cfg.credHelpers?.[registry] || cfg.credsStore)
      throw new InvalidArgumentError(
        `--with-registry-auth: the credentials for ${registry} are in a credential helper, which shoal does not support; put them in ${path} "auths"`,
      );
    return undefined;
  }
  const decoded = entry.auth ? Buffer.from(entry.auth, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const auth = {
    username: colon < 0 ? '' : decoded.slice(0, colon),
    password: colon < 0 ? '' : decoded.slice(colon + 1),
    serveraddress: registry,
    ...(entry.identitytoken ? { identitytoken: entry.identitytoken } : {}),
  };
  return Buffer.from(JSON.stringify(auth)).toString('base64url');
}
