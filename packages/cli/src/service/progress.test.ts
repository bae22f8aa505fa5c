/** When `service create` stops waiting: the convergence of each service mode, from tasks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Service, Task } from '@shoal/api';
import type { DaemonClient } from '../daemon/client.js';
import { convergence, waitOnService } from './progress.js';

const t = (id: string, slot: number, state: string, desired = 'running', node = '', created = 0): Task => ({
  ID: id,
  ServiceID: 's',
  Slot: slot,
  NodeID: node,
  DesiredState: desired,
  CreatedAt: new Date(1_700_000_000_000 + created * 1000).toISOString(),
  Status: { State: state },
});

const svc = (mode: NonNullable<Service['Spec']>['Mode']): Service => ({ ID: 's', Spec: { Name: 'x', Mode: mode } });

test('replicated: converged when every slot 1..N has a running task; the newest task of a slot counts', () => {
  const s = svc({ Replicated: { Replicas: 2 } });
  assert.equal(convergence(s, []).done, false);
  const half = convergence(s, [t('a', 1, 'running'), t('b', 2, 'failed')]);
  assert.deepEqual([half.running, half.desired, half.done], [1, 2, false]);
  assert.equal(half.slots.get('2')?.state, 'failed');
  const replaced = convergence(s, [
    t('a', 1, 'running'),
    t('b', 2, 'failed', 'shutdown'),
    t('c', 2, 'running', 'running', '', 5),
  ]);
  assert.deepEqual([replaced.running, replaced.done], [2, true]);
  // unset replicas means 1; other services' tasks are not counted
  const one = convergence(svc({ Replicated: {} }), [{ ...t('z', 1, 'running'), ServiceID: 'other' }]);
  assert.deepEqual([one.desired, one.done], [1, false]);
  // scaled to 0: done at once
  assert.equal(convergence(svc({ Replicated: { Replicas: 0 } }), []).done, true);
});

test('global: one slot per node; jobs: done on completions, not on running', () => {
  const g = svc({ Global: {} });
  assert.equal(convergence(g, []).done, false);
  const nodes = convergence(g, [t('a', 0, 'running', 'running', 'n1'), t('b', 0, 'starting', 'running', 'n2')]);
  assert.deepEqual([nodes.running, nodes.desired, nodes.done], [1, 2, false]);
  assert.equal(
    convergence(g, [t('a', 0, 'running', 'running', 'n1'), t('b', 0, 'running', 'running', 'n2')]).done,
    true,
  );

  const job = svc({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 3 } });
  const running = convergence(job, [t('a', 1, 'running', 'complete'), t('b', 2, 'running', 'complete')]);
  assert.deepEqual([running.job, running.done, running.desired], [true, false, 3]);
  const finished = convergence(job, [
    t('a', 1, 'complete', 'complete'),
    t('b', 2, 'complete', 'complete'),
    t('c', 3, 'complete', 'complete'),
  ]);
  assert.deepEqual([finished.completed, finished.done], [3, true]);
  const gj = svc({ GlobalJob: {} });
  assert.equal(
    convergence(gj, [t('a', 0, 'complete', 'complete', 'n1'), t('b', 0, 'running', 'complete', 'n2')]).done,
    false,
  );
  assert.equal(
    convergence(gj, [t('a', 0, 'complete', 'complete', 'n1'), t('b', 0, 'complete', 'complete', 'n2')]).done,
    true,
  );
});

test('on a terminal the progress is redrawn in place, a failed slot showing its error', async () => {
  const states = [
    ['pending', 'pending'],
    ['running', 'failed'],
    ['running', 'running'],
  ];
  let call = 0;
  const client = {
    control: {
      getService: () => Promise.resolve({ Service: svc({ Replicated: { Replicas: 2 } }) }),
      listTasks: () => {
        const now = states[Math.min(call++, states.length - 1)] ?? [];
        return Promise.resolve({
          Tasks: now.map((st, i) => ({
            ...t(`t${i}-${call}`, i + 1, st),
            Status: { State: st, Err: st === 'failed' ? 'task: non-zero exit (1)' : '' },
          })),
        });
      },
    },
  } as unknown as DaemonClient;
  let text = '';
  const out = {
    isTTY: true,
    write: (s: string) => {
      text += s;
      return true;
    },
  } as unknown as NodeJS.WritableStream & { isTTY: boolean };
  await waitOnService(client, 's', { quiet: false, out, intervalMs: 1 });
  // ESC[3A moves up over the 3 lines drawn; ESC[2K clears a line before it is written
  const frames = text.replaceAll('\x1b[2K', '<clear>').split('\x1b[3A');
  assert.equal(frames.length, 3, JSON.stringify(text));
  assert.match(frames[0] ?? '', /^<clear>overall progress: 0 out of 2 tasks\n<clear>1\/2: pending +\[=+> +\]\n/);
  assert.match(frames[1] ?? '', /<clear>2\/2: task: non-zero exit \(1\) \[/);
  assert.match(frames[2] ?? '', /overall progress: 2 out of 2 tasks\n.*verify: Service x converged\n$/s);
});
