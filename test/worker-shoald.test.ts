// The worker wiring in a real shoald: it opens the engine on <data-root>/engine with the collector
// role, runs the agent on its dispatcher session's Assignments stream over gRPC, and after a
// restart finds the task containers an earlier shoald left; one whose task the manager does not
// assign (here: no services exist, the dispatcher's complete set is empty) is stopped and removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { SwarmClient, unary } from '@shoal/api';
import { ContainerNotFoundError, Engine } from '@shoal/engine';
import { LAB_OVERLAY_POOL, pushTestImages, startRegistry } from '@shoal/testkit';
import { until } from './worker-support.js';

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

const root = new URL('../..', import.meta.url).pathname;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Shoald {
  proc: ChildProcess;
  logs: { msg?: string }[];
  exited: Promise<unknown>;
}

function shoald(args: string[]): Shoald {
  const proc = spawn(process.execPath, [join(root, 'packages/daemon/dist/main.js'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: { msg?: string }[] = [];
  let buf = '';
  proc.stderr.on('data', (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as { msg?: string });
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
        logs.push({ msg: line });
      }
    }
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  return { proc, logs, exited };
}

function logged(d: Shoald, msg: string): Promise<true> {
  return until(() => (d.logs.some((l) => l.msg === msg) ? true : undefined), `shoald log "${msg}"`);
}

test(
  'shoald runs the agent with the collector role and removes unassigned task containers after a restart',
  { timeout: 240_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-worker-shoald-'));
    const port = await freePort();
    const socket = join(dir, 'shoal.sock');
    const args = [
      '--data-root',
      join(dir, 'data'),
      '--run-root',
      join(dir, 'run'),
      '--socket',
      socket,
      '--listen-addr',
      `127.0.0.1:${port}`,
    ];
    const engineRoots = { dataRoot: join(dir, 'data', 'engine'), runRoot: join(dir, 'run', 'engine') };
    const reg = await startRegistry({ dir: join(dir, 'registry') });
    let running: Shoald | undefined;
    t.after(async () => {
      // SIGTERM first: a stopping agent with no task sandbox takes its node-wide networking (the
      // ingress sandbox every node has) down; SIGKILL would leave it in this machine's namespace
      if (running) {
        running.proc.kill('SIGTERM');
        const stopped = await Promise.race([running.exited.then(() => true), sleepMs(30_000).then(() => false)]);
        if (!stopped) running.proc.kill('SIGKILL');
        await running.exited;
      }
      const e = await Engine.open(engineRoots);
      for (const c of await e.list({ all: true })) await e.remove(c.id, { force: true });
      await e.close();
      await reg.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const [busybox] = await pushTestImages(reg.url, { only: ['shoal-test/busybox:1'] });

    running = shoald(args);
    await logged(running, 'shoald ready');
    const swarm = new SwarmClient(`unix:${socket}`, credentials.createInsecure());
    await unary(swarm.init.bind(swarm), { DefaultAddrPool: [LAB_OVERLAY_POOL], SubnetSize: 24 });
    swarm.close();
    await logged(running, 'dispatcher session open');
    const probe = await Engine.open({ ...engineRoots, collector: true, recover: false });
    assert.equal(probe.collecting, false, 'shoald holds the collector role of its engine data root');
    await probe.close();
    running.proc.kill('SIGTERM');
    await running.exited;
    running = undefined;

    // a task container left behind, of a task this cluster does not have
    const e = await Engine.open(engineRoots);
    await e.localImages().pull(busybox!.remoteRef);
    const id = await e.run({
      image: busybox!.remoteRef,
      name: 'ghost.1.ghosttask0000000000000',
      cmd: ['sleep', '1000'],
      stopTimeoutMs: 1000,
      labels: { 'com.docker.swarm.task.id': 'ghosttask0000000000000', 'com.docker.swarm.service.name': 'ghost' },
    });
    await e.close();

    running = shoald(args);
    await logged(running, 'found task containers of an earlier agent');
    await logged(running, 'dispatcher session open');
    await until(async () => {
      const look = await Engine.open({ ...engineRoots, recover: false });
      try {
        await look.inspect(id);
        return undefined;
      } catch (err) {
        if (err instanceof ContainerNotFoundError) return true;
        throw err;
      } finally {
        await look.close();
      }
    }, 'the unassigned task container removed');
    assert.ok(running.logs.some((l) => l.msg === 'the manager no longer assigns this task: removing its container'));
  },
);
