// The verdict table alone (no runc, no containers): which facts make a record busy, dead,
// adoptable or half made. The rule under test is issue 7's: a record without a shim pid and
// without runc state is not dead while its creator lives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { ContainerLease, ContainerRecord } from '../container/types.js';
import type { RuncState } from '../runtime/runc.js';
import { selfIdentity } from './proc.js';
import type { ExitRecord } from './shim.js';
import { judge, view, type Verdict } from './verdict.js';

/** A process that has exited: its pid and start time no longer name a live process. */
function deadProcess(): { pid: number; start: number } {
  const r = spawnSync('sh', ['-c', 'echo $$; cut -d" " -f22 /proc/$$/stat'], { encoding: 'utf8' });
  const [pid, start] = r.stdout.trim().split('\n').map(Number);
  return { pid: pid ?? 0, start: start ?? 0 };
}

const me = selfIdentity();
const dead = deadProcess();
const EXIT: ExitRecord = { exitCode: 3, signal: 0, exitedAt: '2026-01-01T00:00:00.000Z' };

function lease(
  owner: { pid: number; start: number },
  op: ContainerLease['op'],
  mode?: 'run' | 'create',
): ContainerLease {
  return { pid: owner.pid, start: owner.start, op, ...(mode ? { mode } : {}), since: '2026-01-01T00:00:00.000Z' };
}

function rec(extra: Partial<ContainerRecord>): ContainerRecord {
  return { id: 'a'.repeat(64), name: 'x', status: 'created', autoRemove: false, ...extra } as ContainerRecord;
}

function state(status: RuncState['status'] | undefined): () => Promise<RuncState | undefined> {
  return () => Promise.resolve(status ? ({ id: 'a', pid: 42, status } as RuncState) : undefined);
}

async function verdict(
  r: ContainerRecord,
  exit: ExitRecord | undefined,
  runc: RuncState['status'] | undefined,
): Promise<Verdict> {
  let runcAsked = false;
  const v = await judge(r, {
    exit: () => Promise.resolve(exit),
    runcState: () => {
      runcAsked = true;
      return state(runc)();
    },
  });
  // a running container with a live shim is judged without runc (list and inspect stay cheap)
  if (v.kind === 'settled' && r.shimPid === me.pid && r.shimStart === me.start) assert.equal(runcAsked, false);
  return v;
}

test('a record being created by a live process is busy, whatever else is true', async () => {
  // no shim pid, no runc state: what the old refresh() took for a dead container
  const r = rec({ lease: lease(me, 'create', 'run') });
  assert.equal((await verdict(r, undefined, undefined)).kind, 'busy');
  assert.equal((await verdict(r, EXIT, 'stopped')).kind, 'busy');
  assert.deepEqual(view(r, await verdict(r, undefined, undefined)), r, 'observing shows it as recorded');
});

test('a record whose creator died: adopt a live shim, remove what never ran', async () => {
  const shim = me; // a live process stands in for a live shim
  const withShim = rec({ lease: lease(dead, 'create', 'run'), shimPid: shim.pid, shimStart: shim.start });
  assert.deepEqual(await verdict(withShim, undefined, 'running'), {
    kind: 'adopt',
    status: 'running',
    pid: 42,
    monitorLost: false,
  });
  assert.equal((await verdict(withShim, undefined, 'created')).kind, 'pending', 'runc run -d between create and start');
  assert.equal((await verdict(withShim, undefined, undefined)).kind, 'pending', 'runc not run yet');
  const created = rec({ lease: lease(dead, 'create', 'create'), shimPid: shim.pid, shimStart: shim.start });
  assert.equal((await verdict(created, undefined, 'created')).kind, 'adopt');
  const noShim = rec({ lease: lease(dead, 'create', 'run'), shimPid: dead.pid, shimStart: dead.start });
  assert.equal((await verdict(noShim, undefined, undefined)).kind, 'half-made');
  assert.equal((await verdict(rec({ lease: lease(dead, 'create', 'run') }), undefined, undefined)).kind, 'half-made');
  assert.deepEqual(await verdict(noShim, EXIT, undefined), { kind: 'exited', exit: EXIT }, 'it ran and exited');
  const v = await verdict(withShim, undefined, 'running');
  const seen = view(withShim, v);
  assert.equal(seen.status, 'running');
  assert.equal(seen.lease, undefined);
});

test('a running record: dead only on exit.json, or with its shim gone and runc not running it', async () => {
  const live = rec({ status: 'running', shimPid: me.pid, shimStart: me.start });
  assert.equal((await verdict(live, undefined, undefined)).kind, 'settled');
  assert.deepEqual(await verdict(live, EXIT, undefined), { kind: 'exited', exit: EXIT });
  const lost = rec({ status: 'running', shimPid: dead.pid, shimStart: dead.start });
  assert.equal((await verdict(lost, undefined, 'running')).kind, 'monitor-lost');
  assert.equal((await verdict({ ...lost, monitorLost: true }, undefined, 'running')).kind, 'settled');
  assert.equal((await verdict(lost, undefined, 'creating')).kind, 'pending');
  const v = await verdict(lost, undefined, 'stopped');
  assert.equal(v.kind === 'exited' && v.exit.exitCode, 255, 'nothing saw the exit: unknown');
  // a reused pid (same pid, another start time) is not the shim
  const reused = rec({ status: 'running', shimPid: me.pid, shimStart: me.start + 1 });
  assert.equal((await verdict(reused, undefined, undefined)).kind, 'exited');
});

test('removals: a dead remover is finished, an exited auto-remove container is removed', async () => {
  const r = rec({ status: 'running', shimPid: me.pid, shimStart: me.start, lease: lease(dead, 'remove') });
  assert.equal((await verdict(r, undefined, 'running')).kind, 'remove');
  assert.equal((await verdict({ ...r, lease: lease(me, 'remove') }, undefined, 'running')).kind, 'busy');
  assert.equal((await verdict(rec({ status: 'exited', autoRemove: true }), undefined, undefined)).kind, 'remove');
  assert.equal((await verdict(rec({ status: 'exited' }), undefined, undefined)).kind, 'settled');
  // a live waiter (run --rm in the foreground) removes it itself; a dead one leaves it to anyone
  const waited = rec({ status: 'exited', autoRemove: true, waiter: { pid: me.pid, start: me.start } });
  assert.equal((await verdict(waited, undefined, undefined)).kind, 'settled');
  assert.equal((await verdict({ ...waited, waiter: dead }, undefined, undefined)).kind, 'remove');
  // a starter that died: adopt what runc says
  const s = rec({ status: 'created', shimPid: me.pid, shimStart: me.start, lease: lease(dead, 'start') });
  assert.equal((await verdict(s, undefined, 'running')).kind, 'adopt');
  assert.deepEqual(await verdict(s, undefined, 'created'), {
    kind: 'adopt',
    status: 'created',
    pid: 42,
    monitorLost: false,
  });
});
