/**
 * Parity with Docker's default seccomp profile: a reference table of it (testdata/seccomp/
 * docker-default.json, with its source, commit and licence) is evaluated here the way Docker
 * evaluates it (includes/excludes on caps, arches and kernel), and for each architecture,
 * capability set and kernel every syscall must be decided exactly as Shoal's resolved profile
 * decides it: same action, errno and argument filters.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, resolveCapabilities } from '../spec/capabilities.js';
import type { OciSeccomp, SeccompArg } from '../spec/oci.js';
import { resolveSeccomp, seccompArchitectures } from './profile.js';

interface RefCondition {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

interface RefRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
  includes?: RefCondition;
  excludes?: RefCondition;
}

interface Reference {
  source: string;
  commit: string;
  licence: string;
  defaultAction: string;
  defaultErrnoRet: number;
  archMap: { architecture: string; subArchitectures: string[] | null }[];
  syscalls: RefRule[];
}

const REF = JSON.parse(
  readFileSync(new URL('../../testdata/seccomp/docker-default.json', import.meta.url), 'utf8'),
) as Reference;

/** Node's process.arch → the arch names of Docker's profile (libseccomp's). */
const DOCKER_ARCH: Record<string, { name: string; native: string }> = {
  x64: { name: 'amd64', native: 'SCMP_ARCH_X86_64' },
  ia32: { name: 'x86', native: 'SCMP_ARCH_X86' },
  arm64: { name: 'arm64', native: 'SCMP_ARCH_AARCH64' },
  arm: { name: 'arm', native: 'SCMP_ARCH_ARM' },
  s390x: { name: 's390x', native: 'SCMP_ARCH_S390X' },
  riscv64: { name: 'riscv64', native: 'SCMP_ARCH_RISCV64' },
  ppc64: { name: 'ppc64le', native: 'SCMP_ARCH_PPC64LE' },
  loong64: { name: 'loongarch64', native: 'SCMP_ARCH_LOONGARCH64' },
};

function kernelAtLeast(kernel: [number, number], min: string): boolean {
  const [maj = 0, minor = 0] = min.split('.').map(Number);
  return kernel[0] > maj || (kernel[0] === maj && kernel[1] >= minor);
}

/** Docker's evaluation of its profile (moby/profiles seccomp_linux.go semantics, written here). */
function dockerResolve(arch: string, caps: readonly string[], kernel: [number, number]): RefRule[] {
  const a = DOCKER_ARCH[arch]?.name ?? arch;
  return REF.syscalls.filter((r) => {
    const ex = r.excludes;
    if (ex?.arches?.includes(a)) return false;
    if (ex?.caps?.some((c) => caps.includes(c))) return false;
    if (ex?.minKernel && kernelAtLeast(kernel, ex.minKernel)) return false;
    const inc = r.includes;
    if (inc?.arches && !inc.arches.includes(a)) return false;
    if (inc?.caps && !inc.caps.every((c) => caps.includes(c))) return false;
    if (inc?.minKernel && !kernelAtLeast(kernel, inc.minKernel)) return false;
    return true;
  });
}

/** The architectures Docker's archMap gives; with no entry, the native one only (what libseccomp does). */
function dockerArches(arch: string): string[] {
  const native = DOCKER_ARCH[arch]?.native ?? '';
  const m = REF.archMap.find((e) => e.architecture === native);
  return m ? [m.architecture, ...(m.subArchitectures ?? [])] : [native];
}

const argKey = (args: readonly SeccompArg[] | RefRule['args'] = []): string =>
  args.map((x) => `${x.index}:${x.op}:${x.value}:${x.valueTwo ?? 0}`).join('&');

/** Per syscall name: the sorted set of "action/errno/args" of every rule naming it. */
function decisions(rules: { names: string[]; action: string; errnoRet?: number; args?: RefRule['args'] }[]) {
  const out = new Map<string, string[]>();
  for (const r of rules) {
    const errno = r.action === 'SCMP_ACT_ERRNO' ? String(r.errnoRet ?? 1) : '';
    const key = `${r.action}/${errno}/${argKey(r.args)}`;
    for (const n of r.names) {
      const list = out.get(n) ?? [];
      if (!list.includes(key)) list.push(key);
      out.set(n, list);
    }
  }
  for (const l of out.values()) l.sort();
  return out;
}

function compare(ours: OciSeccomp, ref: RefRule[], label: string): void {
  assert.equal(ours.defaultAction, REF.defaultAction, `${label}: default action`);
  assert.equal(ours.defaultErrnoRet, REF.defaultErrnoRet, `${label}: default errno`);
  const mine = decisions(ours.syscalls);
  const theirs = decisions(ref);
  const names = new Set([...mine.keys(), ...theirs.keys()]);
  const diffs: string[] = [];
  for (const n of [...names].sort()) {
    const a = JSON.stringify(mine.get(n) ?? []);
    const b = JSON.stringify(theirs.get(n) ?? []);
    if (a !== b) diffs.push(`${n}: shoal ${a} docker ${b}`);
  }
  assert.deepEqual(diffs, [], `${label}: syscalls decided differently from Docker's default profile`);
}

const allCaps = new Set<string>(ALL_CAPABILITIES);
const capSets: [string, string[]][] = [
  ['default', [...DEFAULT_CAPABILITIES]],
  ['none', []],
  ['all', [...ALL_CAPABILITIES]],
  ...ALL_CAPABILITIES.map((c): [string, string[]] => [`+${c}`, resolveCapabilities([c], [], allCaps)]),
  ...DEFAULT_CAPABILITIES.map((c): [string, string[]] => [`-${c}`, resolveCapabilities([], [c], allCaps)]),
];
const ARCHES = ['x64', 'arm64', 'arm', 'ia32', 's390x', 'riscv64', 'ppc64'];
const KERNELS: [number, number][] = [
  [4, 4],
  [4, 8],
  [5, 10],
  [6, 18],
];

describe("seccomp parity with Docker's default profile", () => {
  it('the reference table names its source, commit and licence', () => {
    assert.match(REF.source, /^https:\/\/github\.com\/moby\/profiles\/blob\/[0-9a-f]{40}\/seccomp\/default\.json$/);
    assert.match(REF.commit, /^[0-9a-f]{40}$/);
    assert.match(REF.licence, /Apache-2\.0/);
    assert.ok(REF.syscalls.length > 20);
  });

  it('decides every syscall as Docker does, for each arch, capability set and kernel', () => {
    let checked = 0;
    for (const arch of ARCHES) {
      for (const kernel of KERNELS) {
        for (const [label, caps] of capSets) {
          const ours = resolveSeccomp({ capabilities: caps, arch, kernel });
          compare(ours, dockerResolve(arch, caps, kernel), `${arch} kernel ${kernel.join('.')} caps ${label}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 500, `${checked} combinations`);
  });

  it('this host: every decision for our arch, the engine’s default caps and this kernel equals the reference', () => {
    const caps = resolveCapabilities();
    const ours = resolveSeccomp({ capabilities: caps });
    compare(ours, dockerResolve(process.arch, caps, kernelOfHost()), 'this host');
  });

  it('filters the architectures Docker does (its archMap, else the native one)', () => {
    for (const arch of Object.keys(DOCKER_ARCH)) {
      assert.deepEqual(seccompArchitectures(arch), dockerArches(arch), arch);
    }
  });

  it('allows getrandom and denies io_uring for a default container, as Docker', () => {
    const p = resolveSeccomp({ capabilities: DEFAULT_CAPABILITIES, arch: 'x64', kernel: [6, 18] });
    const d = decisions(p.syscalls);
    assert.deepEqual(d.get('getrandom'), ['SCMP_ACT_ALLOW//']);
    for (const n of ['io_uring_setup', 'io_uring_enter', 'io_uring_register']) assert.equal(d.get(n), undefined, n);
  });
});

function kernelOfHost(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(readFileSync('/proc/sys/kernel/osrelease', 'utf8'));
  return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)];
}
