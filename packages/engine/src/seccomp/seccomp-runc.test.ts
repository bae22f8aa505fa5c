/**
 * The resolved profile as runc/libseccomp load it: a small static probe (compiled here with gcc)
 * makes the syscalls whose rules have argument filters or special errnos, once under the default
 * profile and once unconfined, so each difference is the profile's doing. A static Go program
 * using crypto/rand (built with the Go toolchain when one is installed) must run under the
 * default profile, as it does under Docker's.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { after, before, describe, it } from 'node:test';
import { buildSpec } from '../spec/build-spec.js';
import { RuncHarness, writeBusyboxLayer } from '../spec/test-harness.js';

const PROBE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
static void report(const char *name, long r) {
  if (r < 0) printf("%s=%d\n", name, errno); else printf("%s=ok\n", name);
  if (r > 2) close((int)r);
}
int main(void) {
  report("inet", socket(AF_INET, SOCK_STREAM, 0));
  report("unix", socket(AF_UNIX, SOCK_STREAM, 0));
  report("netlink", socket(AF_NETLINK, SOCK_RAW, 0));
  report("alg", socket(38, SOCK_SEQPACKET, 0));
  report("vsock", socket(40, SOCK_STREAM, 0));
  report("clone3", syscall(SYS_clone3, NULL, 0));
  report("personality_query", syscall(SYS_personality, 0xffffffffUL));
  report("personality_odd", syscall(SYS_personality, 0x0400000UL));
  report("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
  report("io_uring", syscall(SYS_io_uring_setup, 1, NULL));
  report("unshare_uts", syscall(SYS_unshare, 0x04000000));
  char buf[16];
  report("getrandom", syscall(SYS_getrandom, buf, sizeof buf, 0));
  report("getrandom_nonblock", syscall(SYS_getrandom, buf, sizeof buf, 1));
  pid_t p = fork();
  if (p == 0) _exit(0);
  report("fork", p);
  return 0;
}
`;

/**
 * crypto/rand, then getrandom(2) straight from Go: Go 1.24+ reads crypto/rand only through
 * getrandom and dies with "crypto/rand: failed to read random data" when it fails; older Go
 * (Debian's 1.19) falls back to /dev/urandom, so the direct call is what shows the profile.
 */
const GO_PROGRAM = `package main

import (
\t"crypto/rand"
\t"encoding/hex"
\t"fmt"
\t"os"
\t"runtime"
\t"syscall"
\t"unsafe"
)

func main() {
\tb := make([]byte, 16)
\tif _, err := rand.Read(b); err != nil {
\t\tpanic(err)
\t}
\tfmt.Println("random", hex.EncodeToString(b))
\tnr := map[string]uintptr{"amd64": 318, "arm64": 278, "386": 355, "arm": 384, "riscv64": 278, "s390x": 349, "ppc64le": 359}[runtime.GOARCH]
\t_, _, e := syscall.Syscall(nr, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0)
\tif e != 0 {
\t\tfmt.Println("getrandom", e.Error())
\t\tos.Exit(3)
\t}
\tfmt.Println("getrandom ok")
}
`;

function has(tool: string, arg: string): boolean {
  try {
    execFileSync(tool, [arg], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // only "not installed" means absent; a tool that is there but fails is a broken host
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
const hasGcc = (): boolean => has('gcc', '--version');
const hasGo = (): boolean => has('go', 'version');

describe('seccomp profile loaded by runc', { timeout: 120_000, skip: hasGcc() ? false : 'gcc not installed' }, () => {
  let h: RuncHarness;
  let layer: string;
  before(async () => {
    h = await RuncHarness.create();
    layer = join(h.work, 'layer');
    writeBusyboxLayer(layer);
    mkdirSync(join(layer, 'usr', 'bin'), { recursive: true });
    writeFileSync(join(h.work, 'probe.c'), PROBE);
    execFileSync('gcc', ['-static', '-O1', '-o', join(layer, 'usr', 'bin', 'probe'), join(h.work, 'probe.c')]);
  });
  after(async () => {
    await h.cleanup();
  });

  async function probe(seccomp: 'default' | 'unconfined'): Promise<Map<string, string>> {
    const id = h.newId(`probe-${seccomp}`);
    try {
      const rootfs = await h.rootfs(id, [layer]);
      const spec = await buildSpec(
        { id, args: ['/usr/bin/probe'], seccomp },
        {},
        { rootfs, dataRoot: h.dataRoot, cgroupParent: h.cgroupParent },
      );
      const r = await h.runToExit(id, spec);
      assert.equal(r.code, 0, r.stderr);
      return new Map(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => l.split('=') as [string, string]),
      );
    } finally {
      await h.remove(id);
    }
  }

  it('allows getrandom; denies AF_ALG/AF_VSOCK, odd personalities, keyctl, io_uring with EPERM, clone3 with ENOSYS', async () => {
    const confined = await probe('default');
    const open = await probe('unconfined');
    const EPERM = '1';
    // allowed under the profile
    for (const k of ['inet', 'unix', 'netlink', 'personality_query', 'fork', 'getrandom', 'getrandom_nonblock']) {
      assert.equal(confined.get(k), 'ok', k);
    }
    // blocked by the profile, and not for another reason: unconfined gives something else
    for (const k of ['alg', 'vsock', 'personality_odd', 'keyctl', 'io_uring']) {
      assert.equal(confined.get(k), EPERM, k);
      assert.notEqual(open.get(k), EPERM, `${k} unconfined`);
    }
    assert.equal(confined.get('clone3'), '38', 'clone3 says ENOSYS so libc falls back to clone');
    assert.notEqual(open.get('clone3'), '38');
    // unshare is not on the allow list (the kernel would refuse it too without CAP_SYS_ADMIN)
    assert.equal(confined.get('unshare_uts'), EPERM);
  });

  it(
    'runs a static Go binary that reads crypto/rand and calls getrandom',
    { skip: hasGo() ? false : 'no Go toolchain' },
    async () => {
      const src = join(h.work, 'gorand');
      mkdirSync(src, { recursive: true });
      writeFileSync(join(src, 'main.go'), GO_PROGRAM);
      const goLayer = join(h.work, 'go-layer');
      mkdirSync(join(goLayer, 'usr', 'bin'), { recursive: true });
      execFileSync('go', ['build', '-o', join(goLayer, 'usr', 'bin', 'gorand'), 'main.go'], {
        cwd: src,
        env: {
          ...process.env,
          CGO_ENABLED: '0',
          GO111MODULE: 'off',
          GOCACHE: join(h.work, 'gocache'),
          GOPATH: join(h.work, 'gopath'),
        },
      });
      const id = h.newId('gorand');
      try {
        const rootfs = await h.rootfs(id, [layer, goLayer]);
        const spec = await buildSpec(
          { id, args: ['/usr/bin/gorand'] },
          {},
          { rootfs, dataRoot: h.dataRoot, cgroupParent: h.cgroupParent },
        );
        assert.ok(spec.linux.seccomp, 'the default profile is applied');
        const r = await h.runToExit(id, spec);
        assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /^random [0-9a-f]{32}\ngetrandom ok\n$/);
      } finally {
        await h.remove(id);
      }
    },
  );
});
