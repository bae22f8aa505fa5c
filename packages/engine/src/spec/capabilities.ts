/**
 * Linux capabilities: Docker's default set of 14, the full list the kernel knows, and cap-add /
 * cap-drop resolution (names upper-cased, `CAP_` added, `ALL` accepted). As in Docker, add `ALL`
 * starts from every capability, drop `ALL` from none, and a capability both added and dropped stays.
 */
import { readFileSync } from 'node:fs';
import { errnoCode } from '@shoal/common';
import { InvalidSpecError, UnknownCapabilityError } from '../errors.js';

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
 * The capabilities this process can hand on: its bounding set (an engine running inside a
 * container may lack some, and runc fails to apply a capability outside it), cached.
 */
let available: Set<string> | undefined;
export function engineCapabilities(): Set<string> {
  if (available) return available;
  let mask = -1n;
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m?.[1]) mask = BigInt(`0x${m[1]}`);
  } catch (err) {
    // no /proc (not Linux): assume everything
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  available = new Set(ALL_CAPABILITIES.filter((_, bit) => mask < 0n || ((mask >> BigInt(bit)) & 1n) === 1n));
  return available;
}

/**
 * The final capability set: the defaults, plus `add`, minus `drop`. `add: ['ALL']` starts from
 * every capability, `drop: ['ALL']` from none (then `add` puts individual ones back). Only
 * capabilities in `available` (default: the engine's bounding set) are given: `ALL` and the
 * defaults are cut down to it, an explicit add outside it is an error. Sorted in kernel order.
 */
export function resolveCapabilities(
  add: readonly string[] = [],
  drop: readonly string[] = [],
  availableCaps: ReadonlySet<string> = engineCapabilities(),
): string[] {
  const adds = add.map((c) => normaliseCapability(c, 'capAdd'));
  const drops = drop.map((c) => normaliseCapability(c, 'capDrop'));
  for (const a of adds) {
    if (a !== 'ALL' && !availableCaps.has(a) && !drops.includes(a)) {
      throw new InvalidSpecError('capAdd', `${a} is not in the engine's own capability bounding set`);
    }
  }
  let set: Set<string>;
  if (adds.includes('ALL')) {
    set = drops.includes('ALL') ? new Set() : new Set(ALL_CAPABILITIES);
    for (const d of drops) set.delete(d);
  } else {
    set = drops.includes('ALL') ? new Set() : new Set(DEFAULT_CAPABILITIES);
    for (const d of drops) set.delete(d);
    for (const a of adds) set.add(a);
  }
  return ALL_CAPABILITIES.filter((c) => set.has(c) && availableCaps.has(c));
}
