/**
 * Validation of user sysctls: only keys the kernel namespaces per container may be set, otherwise
 * a container could change the host. net.* needs the container's own network namespace.
 */
import { InvalidSysctlError } from '../errors.js';

const IPC_KEYS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

const KEY = /^[a-z0-9_]+(\.[a-zA-Z0-9_\-/:]+)+$/;

/** Checks each key and value; throws on the first that is not allowed. */
export function validateSysctls(sysctls: Readonly<Record<string, string>>, privateNetns: boolean): void {
  for (const [key, value] of Object.entries(sysctls)) {
    if (!KEY.test(key)) throw new InvalidSysctlError(key, 'is not a sysctl name (e.g. net.ipv4.ip_forward)');
    if (typeof value !== 'string' || /[\n\0]/.test(value)) {
      throw new InvalidSysctlError(key, 'value must be a single-line string');
    }
    if (key.startsWith('net.')) {
      if (!privateNetns) throw new InvalidSysctlError(key, 'net.* sysctls need the container’s own network namespace');
      continue;
    }
    if (IPC_KEYS.has(key) || key.startsWith('fs.mqueue.')) continue;
    throw new InvalidSysctlError(
      key,
      'is not namespaced (allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)',
    );
  }
}
