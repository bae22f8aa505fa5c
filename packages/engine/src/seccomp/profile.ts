/**
 * The default seccomp profile: an allow list on top of "everything else fails with EPERM", with
 * rules that depend on the container's capabilities, the CPU architecture and the kernel version.
 * `resolveSeccomp` evaluates those conditions once, when the spec is built, into the plain
 * `linux.seccomp` object runc reads, so the written profile is exactly what applies.
 *
 * Every decision equals that of Docker's current default profile (moby/profiles
 * seccomp/default.json): docker-parity.test.ts checks it against a reference table of that file
 * for each architecture, capability set and kernel. The data here is Shoal's own.
 */
import { release } from 'node:os';
import type { OciSeccomp, SeccompArg, SeccompSyscall } from '../spec/oci.js';
import { ALWAYS_ALLOWED } from './syscalls.js';

const EPERM = 1;
const ENOSYS = 38;

/** Namespace flags of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;
/** Address families a default container may not open: AF_ALG (kernel crypto) and AF_VSOCK. */
export const AF_ALG = 38;
export const AF_VSOCK = 40;

/** One rule of the profile before resolution. Every condition given must hold. */
export interface ProfileRule {
  names: string[];
  action: 'allow' | 'errno';
  errnoRet?: number;
  args?: SeccompArg[];
  /** Applies only when the container has every one of these capabilities (bounding set). */
  caps?: string[];
  /** Applies only when the container has none of these capabilities. */
  noCap?: string[];
  /** Applies only on these architectures (Node's `process.arch` names). */
  arches?: string[];
  /** Does not apply on these architectures. */
  notArches?: string[];
  /** Applies only on kernels at least this version. */
  minKernel?: [number, number];
}

/** personality(2) values that only select an execution domain (PER_LINUX, PER_LINUX32, ...), and a query. */
const PERSONALITY_VALUES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const S390 = ['s390', 's390x'];

/**
 * The conditional part of the profile. The decisions equal those of Docker's default profile
 * (checked against a reference table of it in profile.test.ts); the data is written here.
 */
export const DEFAULT_RULES: readonly ProfileRule[] = [
  { names: [...ALWAYS_ALLOWED], action: 'allow' },
  // reading another process's memory or tracing it is contained by the pid namespace since 4.8
  // (before, ptrace could be used to get around seccomp)
  { names: ['process_vm_readv', 'process_vm_writev', 'ptrace'], action: 'allow', minKernel: [4, 8] },
  // socket(2) for every family but AF_ALG and AF_VSOCK: three ranges, OR-ed (one rule per range)
  { names: ['socket'], action: 'allow', args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] },
  { names: ['socket'], action: 'allow', args: [{ index: 0, value: AF_ALG + 1, op: 'SCMP_CMP_EQ' }] },
  { names: ['socket'], action: 'allow', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] },
  ...PERSONALITY_VALUES.map((value): ProfileRule => ({
    names: ['personality'],
    action: 'allow',
    args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
  })),
  // architecture-specific calling conventions and helpers
  { names: ['sync_file_range2', 'swapcontext'], action: 'allow', arches: ['ppc64'] },
  {
    names: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'],
    action: 'allow',
    arches: ['arm', 'arm64'],
  },
  { names: ['arch_prctl'], action: 'allow', arches: ['x64'] },
  { names: ['modify_ldt'], action: 'allow', arches: ['x64', 'ia32'] },
  { names: ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], action: 'allow', arches: S390 },
  { names: ['riscv_flush_icache'], action: 'allow', arches: ['riscv64'] },
  // capability-gated groups
  { names: ['open_by_handle_at'], action: 'allow', caps: ['CAP_DAC_READ_SEARCH'] },
  {
    names: [
      'bpf',
      'clone',
      'clone3',
      'fanotify_init',
      'fsconfig',
      'fsmount',
      'fsopen',
      'fspick',
      'lookup_dcookie',
      'lsm_get_self_attr',
      'lsm_list_modules',
      'lsm_set_self_attr',
      'mount',
      'mount_setattr',
      'move_mount',
      'open_tree',
      'perf_event_open',
      'quotactl',
      'quotactl_fd',
      'setdomainname',
      'sethostname',
      'setns',
      'syslog',
      'umount',
      'umount2',
      'unshare',
    ],
    action: 'allow',
    caps: ['CAP_SYS_ADMIN'],
  },
  // clone without namespace flags (s390 passes the flags second); clone3 hides its flags in
  // memory, so say "not implemented" and libc falls back to clone
  {
    names: ['clone'],
    action: 'allow',
    noCap: ['CAP_SYS_ADMIN'],
    notArches: S390,
    args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
  },
  {
    names: ['clone'],
    action: 'allow',
    noCap: ['CAP_SYS_ADMIN'],
    arches: S390,
    args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
  },
  { names: ['clone3'], action: 'errno', errnoRet: ENOSYS, noCap: ['CAP_SYS_ADMIN'] },
  { names: ['reboot'], action: 'allow', caps: ['CAP_SYS_BOOT'] },
  { names: ['chroot'], action: 'allow', caps: ['CAP_SYS_CHROOT'] },
  { names: ['delete_module', 'init_module', 'finit_module'], action: 'allow', caps: ['CAP_SYS_MODULE'] },
  { names: ['acct'], action: 'allow', caps: ['CAP_SYS_PACCT'] },
  {
    names: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'],
    action: 'allow',
    caps: ['CAP_SYS_PTRACE'],
  },
  { names: ['iopl', 'ioperm'], action: 'allow', caps: ['CAP_SYS_RAWIO'] },
  {
    names: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
    action: 'allow',
    caps: ['CAP_SYS_TIME'],
  },
  { names: ['vhangup'], action: 'allow', caps: ['CAP_SYS_TTY_CONFIG'] },
  {
    names: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'],
    action: 'allow',
    caps: ['CAP_SYS_NICE'],
  },
  { names: ['syslog'], action: 'allow', caps: ['CAP_SYSLOG'] },
  { names: ['bpf'], action: 'allow', caps: ['CAP_BPF'] },
  { names: ['perf_event_open'], action: 'allow', caps: ['CAP_PERFMON'] },
];

/** libseccomp architecture names for a Node `process.arch`, native first. */
export function seccompArchitectures(arch: string): string[] {
  switch (arch) {
    case 'x64':
      return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'ia32':
      return ['SCMP_ARCH_X86'];
    case 'arm64':
      return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    case 'arm':
      return ['SCMP_ARCH_ARM'];
    case 'riscv64':
      return ['SCMP_ARCH_RISCV64'];
    case 's390x':
      return ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'];
    case 'ppc64':
      return ['SCMP_ARCH_PPC64LE'];
    case 'loong64':
      return ['SCMP_ARCH_LOONGARCH64'];
    default:
      return [];
  }
}

/** `[major, minor]` of a kernel release string like `6.18.0-1-amd64`. */
export function kernelVersion(rel = release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)];
}

export interface ResolveOptions {
  /** The container's final capability set (bounding). */
  capabilities: readonly string[];
  /** Node `process.arch` name; default this machine's. */
  arch?: string;
  /** Kernel version; default this machine's. */
  kernel?: [number, number];
  rules?: readonly ProfileRule[];
}

/** The profile with every condition evaluated: what goes into `linux.seccomp`. */
export function resolveSeccomp(opts: ResolveOptions): OciSeccomp {
  const caps = new Set(opts.capabilities);
  const arch = opts.arch ?? process.arch;
  const [kmaj, kmin] = opts.kernel ?? kernelVersion();
  const syscalls: SeccompSyscall[] = [];
  for (const rule of opts.rules ?? DEFAULT_RULES) {
    if (rule.caps && !rule.caps.every((c) => caps.has(c))) continue;
    if (rule.noCap?.some((c) => caps.has(c))) continue;
    if (rule.arches && !rule.arches.includes(arch)) continue;
    if (rule.notArches?.includes(arch)) continue;
    if (rule.minKernel) {
      const [maj, min] = rule.minKernel;
      if (kmaj < maj || (kmaj === maj && kmin < min)) continue;
    }
    const out: SeccompSyscall = {
      names: [...rule.names],
      action: rule.action === 'allow' ? 'SCMP_ACT_ALLOW' : 'SCMP_ACT_ERRNO',
    };
    if (rule.action === 'errno') out.errnoRet = rule.errnoRet ?? EPERM;
    if (rule.args) out.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(out);
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: seccompArchitectures(arch),
    syscalls,
  };
}

/** Every syscall name the resolved profile allows without argument conditions. */
export function allowedNames(profile: OciSeccomp): Set<string> {
  const out = new Set<string>();
  for (const s of profile.syscalls) {
    if (s.action === 'SCMP_ACT_ALLOW' && !s.args) for (const n of s.names) out.add(n);
  }
  return out;
}
