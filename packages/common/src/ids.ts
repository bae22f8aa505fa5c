import { randomBytes } from 'node:crypto';

/** A random 64-bit id as 16 lowercase hex characters (node ids, raft member ids). */
export function randomId64(): string {
  return randomBytes(8).toString('hex');
}

/** A random object id as 25 lowercase base-36 characters, like SwarmKit's identity.NewID. */
export function newObjectId(): string {
  const bytes = randomBytes(16);
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n.toString(36).padStart(25, '0').slice(-25);
}

/** True if `name` is a valid identifier for labs, hosts and similar names: [a-z][a-z0-9-]{0,30}. */
export function isValidName(name: string): boolean {
  return /^[a-z][a-z0-9-]{0,30}$/.test(name) && !name.endsWith('-');
}
