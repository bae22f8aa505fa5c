/**
 * Node loss on a lab of 2 (h1 manager, h2 worker) with a 60 s heartbeat period, so that missed
 * heartbeats alone (period x 3 = 180 s) cannot explain anything seen here: kill -9 of the
 * worker's shoald and a cut of its link each mark it down as a lost session ("session lost and
 * not reopened"), and an orderly restart (SIGTERM, then start) keeps the node and its task (no
 * replacement is made). Real shoald processes, the real CLI, the lab registry's busybox. The lab
 * goes in `after`, also when the test fails. Root only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@shoal/common';
import { pushTestImages, readLabState, TestImages } from '@shoal/testkit';
import { cliMain, labTestRig } from './lab-test-rig.js';

const { labName, shoal } = await labTestRig({ rootPrefix: 'shoal-folab-', labPrefix: 'fo' });
/** `session lost and not reopened` (@shoal/manager DOWN_SESSION_LOST): the tests read the CLI. */
const SESSION_LOST = 'session lost and not reopened';

let last = '';
async function ok(host: string, args: string[]): Promise<string> {
  const r = await shoal(['lab', 'exec', labName, host, '--', process.execPath, cliMain, ...args]);
  last = `${args.join(' ')} -> ${r.stdout}${r.stderr}`;
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  try {
    return await waitFor(fn, { timeoutMs: 90_000, intervalMs: 300 });
  } catch (err) {
    throw new Error(`${what}: ${String(err)}; last seen: ${last}`, { cause: err });
  }
}

/** h2's `State|Message` as the manager shows it (an empty message is left out of the object). */
const h2Status = async (): Promise<string> =>
  (await ok('h1', ['node', 'inspect', '--format', '{{.Status.State}}|{{.Status.Message}}', 'h2']))
    .trim()
    .replace('<no value>', '');

interface TaskLine {
  id: string;
  desired: string;
  current: string;
}

/** Every task of `web`, history included (states lower-cased, the current one without its age). */
const webTasks = async (): Promise<TaskLine[]> =>
  (await ok('h1', ['service', 'ps', '--no-trunc', '--format', '{{.ID}}|{{.DesiredState}}|{{.CurrentState}}', 'web']))
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id = '', desired = '', current = ''] = l.split('|');
      return { id, desired: desired.toLowerCase(), current: (current.split(' ')[0] ?? '').toLowerCase() };
    });
const runningOnly = (ts: TaskLine[], id?: string): boolean =>
  ts.length === 1 &&
  ts[0]?.desired === 'running' &&
  ts[0].current === 'running' &&
  (id === undefined || ts[0].id === id);

async function lab(args: string[]): Promise<void> {
  const r = await shoal(['lab', ...args]);
  assert.equal(r.code, 0, `lab ${args.join(' ')}: ${r.stderr}`);
}

test('node loss: kill -9 and a cut link are lost sessions (down long before 3 periods); a restart keeps the node', async () => {
  const up = await shoal(['lab', 'up', '--name', labName, '--hosts', '2', '--managers', '1']);
  assert.equal(up.code, 0, up.stderr);
  const state = await readLabState(labName);
  assert.ok(state?.registry, 'the lab has a registry');
  const image = (await pushTestImages(state.registry.url)).find((p) => p.ref === TestImages.busybox)?.remoteRef;
  assert.ok(image, 'busybox pushed');
  await ok('h1', ['swarm', 'update', '--dispatcher-heartbeat', '60s']);
  await until('h2 ready', async () => ((await h2Status()).startsWith('ready|') ? true : undefined));
  await ok('h1', [
    'service',
    'create',
    '-d',
    '--name',
    'web',
    '--constraint',
    'node.hostname==h2',
    image,
    'sleep',
    '3600',
  ]);
  const [first] = await until('web running on h2', async () => {
    const ts = await webTasks();
    return runningOnly(ts) ? ts : undefined;
  });
  const taskId = first?.id ?? '';

  // An orderly restart: the node says it is stopping, keeps its heartbeat deadline, and its
  // task is neither replaced nor restarted.
  await lab(['stop', labName, 'h2']);
  await lab(['start', labName, 'h2']);
  await until('h2 back with its task', async () => (runningOnly(await webTasks(), taskId) ? true : undefined));
  assert.equal(await h2Status(), 'ready|', 'the restart did not mark h2 down');

  // kill -9: the kernel closes its connections; the session is lost and not reopened.
  await lab(['stop', labName, 'h2', '--signal', 'KILL']);
  assert.equal(
    await until('h2 down', async () => ((await h2Status()).startsWith('down|') ? h2Status() : undefined)),
    `down|${SESSION_LOST}`,
  );
  const replaced = await webTasks();
  assert.ok(
    replaced.some((t) => t.id === taskId && t.desired === 'shutdown'),
    `the task of the lost node is shut down: ${JSON.stringify(replaced)}`,
  );
  await lab(['start', labName, 'h2']);
  await until('h2 ready again', async () => ((await h2Status()).startsWith('ready|') ? true : undefined));

  // A cut link: no RST, no FIN; the cluster port's keepalive PINGs end the session.
  await lab(['cut', labName, 'h2']);
  try {
    assert.equal(
      await until('h2 down after the cut', async () =>
        (await h2Status()).startsWith('down|') ? h2Status() : undefined,
      ),
      `down|${SESSION_LOST}`,
    );
  } finally {
    await lab(['heal', labName, 'h2']);
  }
  await until('h2 ready after the heal', async () => ((await h2Status()).startsWith('ready|') ? true : undefined));
});
