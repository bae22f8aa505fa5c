// `stack rm` against a stand-in for the daemon (the Control calls only): the order of its calls
// and what it waits for. The lab tests (test/stack-lab, test/examples-lab) run it for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { Task } from '@shoal/api';
import { LABEL_NAMESPACE } from '@shoal/compose';
import type { DaemonClient } from '../daemon/client.js';
import { removeStack } from './remove.js';

function text(s: PassThrough): string {
  return (s.read() as Buffer | null)?.toString() ?? '';
}

test('stack rm: every service removal is sent at once; networks go once the tasks ended, before they are deleted', async () => {
  const labels = { [LABEL_NAMESPACE]: 'app' };
  const calls: string[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  let taskLists = 0;
  // the tasks: running at first, then ended (shutdown) but not deleted yet, for as long as asked
  const tasks = (): Task[] => {
    taskLists++;
    const state = taskLists < 3 ? 'running' : 'shutdown';
    return ['a', 'b', 'c'].map((s) => ({
      ID: `t${s}`,
      ServiceID: s,
      DesiredState: 'remove',
      Status: { State: state },
    }));
  };
  const control = {
    listServices: () =>
      Promise.resolve({
        Services: ['c', 'a', 'b'].map((s) => ({ ID: s, Spec: { Name: `app_${s}`, Labels: labels } })),
      }),
    listNetworks: () => Promise.resolve({ Networks: [{ ID: 'n1', Spec: { Name: 'app_default', Labels: labels } }] }),
    listSecrets: () => Promise.resolve({ Secrets: [] }),
    listConfigs: () => Promise.resolve({ Configs: [] }),
    removeService: async (req: { ServiceID?: string }) => {
      calls.push(`service ${req.ServiceID}`);
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return {};
    },
    listTasks: () => Promise.resolve({ Tasks: tasks() }),
    removeNetwork: (req: { NetworkID?: string }) => {
      calls.push(`network ${req.NetworkID} after ${taskLists} task lists`);
      return Promise.resolve({});
    },
  };
  const c = { host: 'test', control, close: () => undefined } as unknown as DaemonClient;
  const out = new PassThrough();
  const err = new PassThrough();
  assert.equal(await removeStack(c, 'app', { out, err, intervalMs: 1 }), true);
  assert.equal(mostInFlight, 3, 'the three removals were in flight together');
  assert.deepEqual(calls, ['service a', 'service b', 'service c', 'network n1 after 3 task lists']);
  assert.equal(
    text(out),
    'Removing service app_a\nRemoving service app_b\nRemoving service app_c\nRemoving network app_default\n',
  );
  assert.equal(text(err), '');
});

test('stack rm: a service that cannot be removed is reported after the lines, the rest still goes', async () => {
  const control = {
    listServices: () => Promise.resolve({ Services: ['a', 'b'].map((s) => ({ ID: s, Spec: { Name: `app_${s}` } })) }),
    listNetworks: () => Promise.resolve({ Networks: [] }),
    listSecrets: () => Promise.resolve({ Secrets: [] }),
    listConfigs: () => Promise.resolve({ Configs: [] }),
    removeService: (req: { ServiceID?: string }) =>
      req.ServiceID === 'a' ? Promise.reject(new Error('no such service')) : Promise.resolve({}),
    listTasks: () => Promise.resolve({ Tasks: [] }),
  };
  const c = { host: 'test', control, close: () => undefined } as unknown as DaemonClient;
  const out = new PassThrough();
  const err = new PassThrough();
  assert.equal(await removeStack(c, 'app', { out, err, intervalMs: 1 }), false);
  assert.equal(text(out), 'Removing service app_a\nRemoving service app_b\n');
  assert.equal(
    text(err),
    'Failed to remove service a: no such service\nFailed to remove some resources from stack: app\n',
  );
});
