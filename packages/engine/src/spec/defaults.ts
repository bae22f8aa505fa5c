/**
 * Docker's default confinement as data: the filesystem mounts every container gets, the /proc and
 * /sys paths it must not see (masked) or change (read-only), the device cgroup rules, the
 * namespaces and the sysctls that a private network namespace makes safe.
 */
import { readdirSync } from 'node:fs';
import { errnoCode } from '@shoal/common';
import type { OciDeviceRule, OciMount } from './oci.js';

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** The mounts of a default container, /proc first (order matters: runc mounts in order). */
export function defaultMounts(shmSize = DEFAULT_SHM_SIZE): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['ro', 'nosuid', 'noexec', 'nodev'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize}`],
    },
  ];
}

/** Mounts that stay writable with a read-only rootfs (everything else gets `ro`). */
export const WRITABLE_WITH_READONLY_ROOTFS = new Set(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue']);

/** /proc and /sys entries hidden from the container (bind of /dev/null or an empty tmpfs). */
export function maskedPaths(): string[] {
  const paths = [
    '/proc/acpi',
    '/proc/asound',
    '/proc/interrupts',
    '/proc/kcore',
    '/proc/keys',
    '/proc/latency_stats',
    '/proc/sched_debug',
    '/proc/scsi',
    '/proc/timer_list',
    '/proc/timer_stats',
    '/sys/devices/virtual/powercap',
    '/sys/firmware',
  ];
  // each CPU's thermal_throttle dir leaks host activity; list the CPUs this host has
  let cpus: string[];
  try {
    cpus = readdirSync('/sys/devices/system/cpu').filter((n) => /^cpu\d+$/.test(n));
  } catch (err) {
    // no sysfs mounted: no CPU directories to mask
    if (errnoCode(err) !== 'ENOENT') throw err;
    cpus = [];
  }
  cpus.sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  for (const c of cpus) paths.push(`/sys/devices/system/cpu/${c}/thermal_throttle`);
  return paths;
}

/** /proc entries mounted read-only. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Deny every device, then allow the few a process needs; /dev/fuse stays denied explicitly. */
export function defaultDeviceRules(): OciDeviceRule[] {
  const allow = (major: number, minor: number): OciDeviceRule => ({
    allow: true,
    type: 'c',
    major,
    minor,
    access: 'rwm',
  });
  return [
    { allow: false, access: 'rwm' },
    allow(1, 5), // /dev/zero
    allow(1, 3), // /dev/null
    allow(1, 9), // /dev/urandom
    allow(1, 8), // /dev/random
    allow(5, 0), // /dev/tty
    allow(5, 1), // /dev/console
    { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' }, // /dev/fuse
  ];
}

/** Sysctls set in every container that has its own network namespace. */
export const PRIVATE_NETNS_SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv4.ip_unprivileged_port_start': '0',
  'net.ipv4.ping_group_range': '0 2147483647',
};

/** The highest RLIMIT_NOFILE a container gets unless it asks (Docker's default). */
export const DEFAULT_NOFILE = 1048576;
