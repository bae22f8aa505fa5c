/**
 * A service's registry credentials (`--with-registry-auth`): Docker's X-Registry-Auth, the JSON
 * `{"username","password","serveraddress"}` in base64url (standard base64 is accepted too).
 */
import type { Credentials } from '@shoal/engine';
import { RegistryAuthError } from './errors.js';

export function decodeRegistryAuth(encoded: string): Credentials | undefined {
  if (encoded.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(encoded.trim(), 'base64url').toString('utf8'));
  } catch (err) {
    if (err instanceof SyntaxError) throw new RegistryAuthError('not base64url-encoded JSON', { cause: err });
    throw err;
  }
  if (typeof parsed !== 'object' || parsed === null) throw new RegistryAuthError('not a JSON object');
  const o = parsed as Record<string, unknown>;
  const username = typeof o['username'] === 'string' ? o['username'] : '';
  const password = typeof o['password'] === 'string' ? o['password'] : '';
  if (username === '' && password === '') return undefined;
  return { username, password };
}
