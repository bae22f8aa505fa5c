/** Resolution of the default seccomp profile against capabilities, architecture and kernel. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, resolveCapabilities } from '../spec/capabilities.js';
import { AF_ALG, AF_VSOCK, CLONE_NAMESPACE_FLAGS, allowedNames, resolveSeccomp } from './profile.js';
import type { OciSeccomp } from '../spec/oci.js';

/** Capability sets independent of what this host's engine may hold. */
const caps = (add: string[] = [], drop: string[] = []): string[] =>
  resolveCapabilities(add, drop, new Set(ALL_CAPABILITIES));

const defaults = resolveSeccomp({ capabilities: DEFAULT_CAPABILITIES, arch: 'x64', kernel: [6, 1] });

function rulesFor(p: OciSeccomp, name: string) {
  return p.syscalls.filter((s) => s.names.includes(name));
}

/** Whether socket(family) would be allowed by the resolved rules. */
function socketAllowed(p: OciSeccomp, family: number): boolean {
  return rulesFor(p, 'socket').some((r) => {
    if (r.action !== 'SCMP_ACT_ALLOW') return false;
    return (r.args ?? []).every((a) => {
      switch (a.op) {
        case 'SCMP_CMP_EQ':
          return family === a.value;
        case 'SCMP_CMP_LT':
          return family < a.value;
        case 'SCMP_CMP_GT':
          return family > a.value;
        case 'SCMP_CMP_GE':
          return family >= a.value;
        case 'SCMP_CMP_LE':
          return family <= a.value;
        case 'SCMP_CMP_NE':
          return family !== a.value;
        case 'SCMP_CMP_MASKED_EQ':
          return (family & a.value) === (a.valueTwo ?? 0);
      }
    });
  });
}

describe('seccomp profile resolution', () => {
  it('defaults to EPERM on x86_64, x86 and x32 and allows ordinary syscalls', () => {
    assert.equal(defaults.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(defaults.defaultErrnoRet, 1);
    assert.deepEqual(defaults.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const allowed = allowedNames(defaults);
    for (const n of ['read', 'write', 'openat', 'execve', 'futex', 'epoll_wait', 'arch_prctl', 'ptrace', 'chroot']) {
      assert.ok(allowed.has(n), n);
    }
    assert.ok(allowed.size > 300, `${allowed.size} names`);
  });

  it('blocks escape-prone syscalls for a default container', () => {
    const allowed = allowedNames(defaults);
    for (const n of [
      'mount',
      'umount2',
      'pivot_root',
      'unshare',
      'setns',
      'keyctl',
      'add_key',
      'request_key',
      'bpf',
      'perf_event_open',
      'fanotify_init',
      'init_module',
      'finit_module',
      'delete_module',
      'kexec_load',
      'reboot',
      'swapon',
      'acct',
      'quotactl',
      'syslog',
      'settimeofday',
      'clock_settime',
      'iopl',
      'ioperm',
      'open_by_handle_at',
      'kcmp',
      'pidfd_getfd',
      'userfaultfd',
      'io_uring_setup',
      'socket',
      'personality',
      'clone',
    ]) {
      assert.ok(!allowed.has(n), n);
    }
  });

  it('allows clone only without namespace flags and makes clone3 ENOSYS', () => {
    assert.deepEqual(rulesFor(defaults, 'clone'), [
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
    ]);
    assert.deepEqual(rulesFor(defaults, 'clone3'), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
  });

  it('allows only fixed personality values and no AF_ALG / AF_VSOCK sockets', () => {
    const values = rulesFor(defaults, 'personality').map((r) => r.args?.[0]?.value);
    assert.deepEqual(values, [0, 8, 0x20000, 0x20008, 0xffffffff]);
    for (const fam of [1, 2, 10, 16, 17, 39, 41, 44]) assert.ok(socketAllowed(defaults, fam), `family ${fam}`);
    assert.ok(!socketAllowed(defaults, AF_ALG));
    assert.ok(!socketAllowed(defaults, AF_VSOCK));
  });

  it('opens capability-gated groups when the capability is added', () => {
    const admin = resolveSeccomp({ capabilities: caps(['SYS_ADMIN']), arch: 'x64', kernel: [6, 1] });
    const allowed = allowedNames(admin);
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'bpf', 'sethostname'])
      assert.ok(allowed.has(n), n);
    assert.ok(!rulesFor(admin, 'clone3').some((r) => r.action === 'SCMP_ACT_ERRNO'), 'no ENOSYS rule with SYS_ADMIN');
    assert.ok(!rulesFor(admin, 'clone').some((r) => r.args), 'clone unrestricted');
    // as in Docker, CAP_SYS_ADMIN does not bring back AF_ALG or AF_VSOCK
    assert.ok(!socketAllowed(admin, AF_VSOCK) && !socketAllowed(admin, AF_ALG));

    const ptrace = allowedNames(resolveSeccomp({ capabilities: caps(['SYS_PTRACE']), arch: 'x64' }));
    for (const n of ['kcmp', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd']) assert.ok(ptrace.has(n), n);
    assert.ok(!ptrace.has('mount'));
    const time = allowedNames(resolveSeccomp({ capabilities: caps(['SYS_TIME']), arch: 'x64' }));
    assert.ok(time.has('clock_settime') && time.has('settimeofday'));
    const module = allowedNames(resolveSeccomp({ capabilities: caps(['SYS_MODULE']), arch: 'x64' }));
    assert.ok(module.has('finit_module'));
    const noChroot = allowedNames(resolveSeccomp({ capabilities: caps([], ['SYS_CHROOT']), arch: 'x64' }));
    assert.ok(!noChroot.has('chroot'), 'chroot follows CAP_SYS_CHROOT');
  });

  it('applies architecture and kernel conditions', () => {
    const arm = resolveSeccomp({ capabilities: DEFAULT_CAPABILITIES, arch: 'arm64', kernel: [6, 1] });
    assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    assert.ok(!allowedNames(arm).has('arch_prctl'));
    assert.ok(allowedNames(arm).has('cacheflush'));
    assert.ok(!allowedNames(defaults).has('cacheflush'));
    const old = resolveSeccomp({ capabilities: DEFAULT_CAPABILITIES, arch: 'x64', kernel: [4, 4] });
    assert.ok(!allowedNames(old).has('ptrace'), 'ptrace needs 4.8 without CAP_SYS_PTRACE');
    assert.ok(!allowedNames(old).has('process_vm_readv'), 'process_vm_readv needs 4.8 without CAP_SYS_PTRACE');
    assert.ok(allowedNames(defaults).has('process_vm_readv'), 'process_vm_readv on 4.8+ (as Docker)');
  });
});
