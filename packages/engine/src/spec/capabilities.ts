/**
 * Linux capabilities: Docker's default set of 14, the full list the kernel knows, and cap-add /
 * cap-drop resolution (names upper-cased, `CAP_` added, `ALL` accepted). As in Docker, add `ALL`
 * starts from every capability, drop `ALL` from none, and a capability both added and dropped stays.
 */
import { UnknownCapabilityError } from '../errors.js';

/** Every capability of Linux 6.x, numbered as in linux/capability.h. */
export const ALL_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

/** What a container gets by default (Docker's list). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

const KNOWN = new Set<string>(ALL_CAPABILITIES);

/** `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all become `CAP_NET_ADMIN`; `all` becomes `ALL`. */
export function normaliseCapability(name: string, field: string): string {
  const up = name.trim().toUpperCase();
  if (up === 'ALL' || up === 'CAP_ALL') return 'ALL';
  const cap = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!KNOWN.has(cap)) throw new UnknownCapabilityError(name, field);
  return cap;
}

/**
 * The final capability set: the defaults, plus `add`, minus `drop`. `add: ['ALL']` starts from
 * every capability, `drop: ['ALL']` from none (then `add` puts individual ones back). Sorted in
 * kernel order so the output is stable.
 */
export function resolveCapabilities(add: readonly string[] = [], drop: readonly string[] = []): string[] {
  const adds = add.map((c) => normaliseCapability(c, 'capAdd'));
  const drops = drop.map((c) => normaliseCapability(c, 'capDrop'));
  let set: Set<string>;
  if (adds.includes('ALL')) {
    set = new Set(ALL_CAPABILITIES);
    for (const d of drops) if (d !== 'ALL') set.delete(d);
    if (drops.includes('ALL')) set = new Set();
    return order(set);
  }
  set = drops.includes('ALL') ? new Set() : new Set(DEFAULT_CAPABILITIES);
  for (const d of drops) set.delete(d);
  for (const a of adds) set.add(a);
  return order(set);
}

function order(set: Set<string>): string[] {
  return ALL_CAPABILITIES.filter((c) => set.has(c));
}
