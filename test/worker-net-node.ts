// One "node" of test/worker-network.test.ts: a real engine and Agent with overlay networking,
// run by the test inside a lab host's network namespace (as shoald runs there), driven over the
// IPC channel: the test plays the dispatcher (assignments in, status updates out) and asks for
// execs in task containers. Not a test itself.
import type { AssignmentChange, TaskStatusUpdate } from '@shoal/api';
import { createLogger, silentLogger } from '@shoal/common';
import { Engine } from '@shoal/engine';
import { Agent } from '@shoal/worker';
import { FakeDispatcher } from './worker-support.js';

type Request =
  | { op: 'assign'; type: 'complete' | 'incremental'; changes: AssignmentChange[] }
  | { op: 'exec'; id: number; taskId: string; argv: string[] }
  | { op: 'sandboxes'; id: number }
  | { op: 'stop'; id: number };

const env = (k: string): string => process.env[k] ?? '';
const send = (m: unknown): void => {
  process.send?.(m);
};

const engine = await Engine.open({
  dataRoot: `${env('NODE_DIR')}/data`,
  runRoot: `${env('NODE_DIR')}/run`,
  cgroupParent: env('CGROUP_PARENT'),
  collector: true,
});
const agent = new Agent({
  engine,
  node: { id: env('NODE_ID'), hostname: env('NODE_ID') },
  logger: process.env['NODE_LOG'] ? createLogger(env('NODE_ID'), { level: 'debug' }) : silentLogger(),
  insecureRegistries: () => [env('REGISTRY')],
  network: { hostTag: env('HOST_TAG'), vtepAddress: env('VTEP'), gatewaySubnet: env('GW_SUBNET') },
});
await agent.start();
const link = new FakeDispatcher();
const reported = link.updateTaskStatus.bind(link);
link.updateTaskStatus = (updates: TaskStatusUpdate[]) => {
  send({ op: 'status', updates });
  return reported(updates);
};
const ac = new AbortController();
const session = agent.runSession(link, ac.signal).catch((err: unknown) => send({ op: 'error', err: String(err) }));

process.on('message', (raw) => {
  const m = raw as Request;
  void (async () => {
    if (m.op === 'assign') return link.push(m.type, m.changes);
    try {
      if (m.op === 'exec') {
        const c = agent.containerOf(m.taskId);
        if (!c) throw new Error(`task ${m.taskId} has no container`);
        const r = await engine.exec(c, m.argv);
        send({ op: 'reply', id: m.id, value: { exitCode: r.exitCode, output: r.output } });
      } else if (m.op === 'sandboxes') {
        await agent.network?.settled();
        send({ op: 'reply', id: m.id, value: agent.network?.sandboxed() ?? [] });
      } else if (m.op === 'stop') {
        ac.abort();
        await session;
        await agent.stop();
        for (const c of await engine.list({ all: true })) await engine.remove(c.id, { force: true });
        await engine.close();
        send({ op: 'reply', id: m.id, value: true });
        process.disconnect();
      }
    } catch (err) {
      send({ op: 'reply', id: (m as { id: number }).id, error: String(err) });
    }
  })();
});
send({ op: 'ready' });
