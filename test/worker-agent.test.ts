// The worker agent against the REAL engine (runc, overlayfs, cgroups, the shim) and real images
// from a docker-registry on loopback; only the dispatcher is a test double (FakeDispatcher plays
// the manager's side of Assignments and UpdateTaskStatus). Each test has its own engine data and
// run roots and cgroup parent, and removes everything it made, also on failure.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Task } from '@shoal/api';
import { silentLogger } from '@shoal/common';
import { ContainerNotFoundError, Engine } from '@shoal/engine';
import { Cgroup } from '@shoal/engine/internal';
import { pushTestImages, startRegistry, type RunningRegistry } from '@shoal/testkit';
import { Agent } from '@shoal/worker';
import { FakeDispatcher, makeTask, removal, until, update } from './worker-support.js';

let reg: RunningRegistry | undefined;
let regDir = '';
let busybox = '';

before(async () => {
  regDir = mkdtempSync(join(tmpdir(), 'shoal-worker-reg-'));
  reg = await startRegistry({ dir: regDir });
  const pushed = await pushTestImages(reg.url, {
    only: ['shoal-test/busybox:1'],
  });
  busybox = pushed[0]?.remoteRef ?? '';
  assert.match(busybox, /busybox/);
});

after(async () => {
  await reg?.stop();
  await rm(regDir, { recursive: true, force: true });
});

interface Node {
  dir: string;
  nodeId: string;
  cgroupParent: string;
  open(): Promise<{ engine: Engine; agent: Agent }>;
}

/** A node: engine roots in a temp dir, a cgroup parent of its own; `open` is one shoald lifetime. */
function node(t: TestContext, insecure: string[] = []): Node {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-worker-'));
  const hex = randomBytes(4).toString('hex');
  const cgroupParent = `/shoal-worker-${hex}`;
  const nodeId = `node${hex}`;
  const opened: { engine: Engine; agent: Agent }[] = [];
  t.after(async () => {
    for (const o of opened) await o.agent.stop();
    const engine = await Engine.open({ dataRoot: join(dir, 'data'), runRoot: join(dir, 'run'), cgroupParent });
    for (const c of await engine.list({ all: true })) await engine.remove(c.id, { force: true });
    for (const o of opened) await o.engine.close();
    await engine.close();
    await new Cgroup(cgroupParent).remove();
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 'no mounts left');
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir,
    nodeId,
    cgroupParent,
    async open() {
      const engine = await Engine.open({
        dataRoot: join(dir, 'data'),
        runRoot: join(dir, 'run'),
        cgroupParent,
        collector: true,
      });
      const agent = new Agent({
        engine,
        node: { id: nodeId, hostname: 'worker-host' },
        logger: silentLogger(),
        insecureRegistries: () => insecure,
      });
      await agent.start();
      opened.push({ engine, agent });
      return { engine, agent };
    },
  };
}

function session(agent: Agent): { link: FakeDispatcher; end(): Promise<void> } {
  const link = new FakeDispatcher();
  const ac = new AbortController();
  const done = agent.runSession(link, ac.signal);
  return {
    link,
    async end() {
      ac.abort();
      await done;
    },
  };
}

function reached(link: FakeDispatcher, task: Task, state: string): Promise<true> {
  return until(() => (link.states(task.ID!).includes(state) ? true : undefined), `${task.Name} ${state}`);
}

async function exec(engine: Engine, id: string, argv: string[]): Promise<string> {
  const r = await engine.exec(id, argv);
  assert.equal(r.exitCode, 0, `${argv.join(' ')}: ${r.output}`);
  return r.output;
}

test(
  'tasks run under runc: states, exit codes, pull errors, shutdown with the stop signal and grace',
  { timeout: 240_000 },
  async (t) => {
    const n = node(t);
    const { engine, agent } = await n.open();
    const s = session(agent);
    t.after(() => s.end());
    const grace = 1e9;
    const web = makeTask(n.nodeId, 'web', 2, {
      ContainerSpec: {
        Image: busybox,
        Args: ['sleep', '1000'],
        Hostname: '{{.Service.Name}}-{{.Task.Slot}}-{{.Node.ID}}',
        Env: ['SLOT={{.Task.Slot}}', 'PLAIN=yes'],
        Labels: { mine: 'yes' },
        StopGracePeriod: grace,
        Mounts: [{ Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1 << 20 } }],
      },
      Resources: { Limits: { MemoryBytes: 64 << 20 } },
    });
    const ok = makeTask(n.nodeId, 'job', 1, { ContainerSpec: { Image: busybox, Args: ['sh', '-c', 'exit 0'] } });
    const bad = makeTask(n.nodeId, 'job', 2, { ContainerSpec: { Image: busybox, Args: ['sh', '-c', 'exit 3'] } });
    const missing = makeTask(n.nodeId, 'gone', 1, {
      ContainerSpec: { Image: `${reg!.addr}/shoal-test/no-such-image:1`, Args: ['true'] },
    });
    const polite = makeTask(n.nodeId, 'polite', 1, {
      ContainerSpec: {
        Image: busybox,
        Args: ['sh', '-c', 'trap "exit 5" USR1; while true; do sleep 0.1; done'],
        StopSignal: 'SIGUSR1',
        StopGracePeriod: 60e9,
      },
    });
    s.link.push('complete', [update(web), update(ok), update(bad), update(missing), update(polite)]);

    await reached(s.link, web, 'running');
    assert.deepEqual(s.link.states(web.ID!), ['accepted', 'preparing', 'ready', 'starting', 'running']);
    const cs = s.link.last(web.ID!)?.Status?.ContainerStatus;
    assert.ok(cs?.ContainerID && cs.PID, 'RUNNING carries the container ID and PID');
    const runc = await engine.runc.state(cs.ContainerID);
    assert.equal(runc?.status, 'running', 'runc runs the container');
    assert.equal(runc?.pid, cs.PID);
    const rec = await engine.inspect(cs.ContainerID);
    assert.equal(rec.name, web.Name, 'container name = task name');
    assert.deepEqual(
      {
        svcId: rec.labels['com.docker.swarm.service.id'],
        svc: rec.labels['com.docker.swarm.service.name'],
        task: rec.labels['com.docker.swarm.task.id'],
        taskName: rec.labels['com.docker.swarm.task.name'],
        node: rec.labels['com.docker.swarm.node.id'],
        mine: rec.labels['mine'],
      },
      { svcId: web.ServiceID, svc: 'web', task: web.ID, taskName: web.Name, node: n.nodeId, mine: 'yes' },
    );
    assert.equal(rec.limits.memoryBytes, 64 << 20);
    assert.equal((await exec(engine, cs.ContainerID, ['hostname'])).trim(), `web-2-${n.nodeId}`);
    assert.equal((await exec(engine, cs.ContainerID, ['sh', '-c', 'echo $SLOT-$PLAIN'])).trim(), '2-yes');
    assert.match(await exec(engine, cs.ContainerID, ['sh', '-c', 'grep " /scratch " /proc/mounts']), /tmpfs/);

    await reached(s.link, ok, 'complete');
    assert.equal(s.link.last(ok.ID!)?.Status?.ContainerStatus?.ExitCode, 0);
    await reached(s.link, bad, 'failed');
    assert.equal(s.link.last(bad.ID!)?.Status?.Err, 'task: non-zero exit (3)');
    assert.equal(s.link.last(bad.ID!)?.Status?.ContainerStatus?.ExitCode, 3);
    await reached(s.link, missing, 'failed');
    assert.match(s.link.last(missing.ID!)?.Status?.Err ?? '', /no-such-image/);
    assert.ok(!s.link.states(missing.ID!).includes('starting'), 'a failed pull creates nothing');
    assert.ok(
      !(await engine.list({ all: true })).some((c) => c.name === missing.Name),
      'no container for the task whose pull failed',
    );

    // desired shutdown: sleep as PID 1 ignores SIGTERM, so it is killed when the 1 s grace is over
    await reached(s.link, polite, 'running');
    s.link.push('incremental', [
      update({ ...web, DesiredState: 'shutdown' }),
      update({ ...polite, DesiredState: 'shutdown' }),
    ]);
    await reached(s.link, web, 'shutdown');
    assert.equal(s.link.last(web.ID!)?.Status?.ContainerStatus?.ExitCode, 137, 'SIGKILL after the grace period');
    await reached(s.link, polite, 'shutdown');
    assert.equal(s.link.last(polite.ID!)?.Status?.ContainerStatus?.ExitCode, 5, 'the stop signal (USR1) was sent');
    assert.equal((await engine.inspect(cs.ContainerID)).status, 'exited');

    // tasks removed from the assignments: their containers go
    s.link.push('incremental', [removal(web), removal(ok), removal(bad), removal(missing), removal(polite)]);
    await until(async () => ((await engine.list({ all: true })).length === 0 ? true : undefined), 'containers removed');
    assert.ok(
      s.link.batches.some((b) => b > 1),
      'status updates went in batches',
    );
  },
);

test(
  'secrets and configs: right bytes and modes on a tmpfs, gone when the task ends',
  { timeout: 240_000 },
  async (t) => {
    const n = node(t);
    const { engine, agent } = await n.open();
    const s = session(agent);
    t.after(() => s.end());
    const marker = `shoal-secret-${randomBytes(12).toString('hex')}`;
    const secret = { ID: `sec${randomBytes(6).toString('hex')}`, Spec: { Name: 'dbpass', Data: Buffer.from(marker) } };
    const config = {
      ID: `cfg${randomBytes(6).toString('hex')}`,
      Spec: { Name: 'app.conf', Data: Buffer.from(`conf-${marker}`) },
    };
    const task = makeTask(n.nodeId, 'sec', 1, {
      ContainerSpec: {
        Image: busybox,
        Args: ['sleep', '1000'],
        StopGracePeriod: 1e9,
        Secrets: [
          { SecretID: secret.ID, SecretName: 'dbpass', File: { Name: 'dbpass', UID: '0', GID: '0', Mode: 0o444 } },
          { SecretID: secret.ID, SecretName: 'dbpass', File: { Name: 'owned', UID: '1000', GID: '1001', Mode: 0o400 } },
        ],
        Configs: [{ ConfigID: config.ID, ConfigName: 'app.conf', File: { Name: '/etc/app.conf', UID: '0', GID: '0' } }],
      },
    });
    const unknown = makeTask(n.nodeId, 'nosec', 1, {
      ContainerSpec: {
        Image: busybox,
        Args: ['sleep', '1000'],
        Secrets: [{ SecretID: 'missing0000', SecretName: 'nope', File: { Name: 'nope' } }],
      },
    });
    s.link.push('complete', [
      { Action: 'update', Assignment: { Secret: secret } },
      { Action: 'update', Assignment: { Config: config } },
      update(task),
      update(unknown),
    ]);
    await reached(s.link, task, 'running');
    const id = s.link.last(task.ID!)!.Status!.ContainerStatus!.ContainerID!;
    assert.equal(await exec(engine, id, ['cat', '/run/secrets/dbpass']), marker);
    assert.equal(await exec(engine, id, ['cat', '/etc/app.conf']), `conf-${marker}`);
    const ls = await exec(engine, id, ['ls', '-ln', '/run/secrets/dbpass', '/run/secrets/owned', '/etc/app.conf']);
    const modes: Record<string, string> = Object.fromEntries(
      ls
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .map((f): [string, string] => [f.at(-1) ?? '', `${f[0]} ${f[2]} ${f[3]}`]),
    );
    assert.deepEqual(modes, {
      '/run/secrets/dbpass': '-r--r--r-- 0 0',
      '/run/secrets/owned': '-r-------- 1000 1001',
      '/etc/app.conf': '-r--r--r-- 0 0',
    });
    // while it runs, the bytes live on a tmpfs only
    const secretMounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(n.dir) && l.includes('secrets'));
    assert.ok(secretMounts.length > 0 && secretMounts.every((l) => / - tmpfs /.test(l)), secretMounts.join('\n'));
    await reached(s.link, unknown, 'failed');
    assert.match(s.link.last(unknown.ID!)?.Status?.Err ?? '', /secret nope \(missing0000\) was not sent to this node/);

    s.link.push('incremental', [update({ ...task, DesiredState: 'shutdown' })]);
    await reached(s.link, task, 'shutdown');
    const grep = (): string => {
      try {
        return execFileSync('grep', ['-r', '-l', '-F', '-s', marker, n.dir], { encoding: 'utf8' });
      } catch (err) {
        if ((err as { status?: number }).status === 1) return ''; // grep: no match
        throw err;
      }
    };
    const secretsMounted = (): boolean =>
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .some((l) => l.includes(n.dir) && l.includes('secrets'));
    await until(() => (secretsMounted() ? undefined : true), 'secrets tmpfs unmounted');
    assert.equal(grep(), '', 'no copy of the secret under the data root or run root once the task ended');
    s.link.push('incremental', [removal(task), removal(unknown)]);
    await until(async () => ((await engine.list({ all: true })).length === 0 ? true : undefined), 'containers removed');
    assert.equal(grep(), '', 'none after removal either');
  },
);

test(
  "named volumes are the engine's: a second task reads what the first wrote, in use while mounted",
  { timeout: 240_000 },
  async (t) => {
    const n = node(t);
    const { engine, agent } = await n.open();
    const s = session(agent);
    t.after(() => s.end());
    const hex = randomBytes(4).toString('hex');
    const name = `data-${hex}`;
    const mark = `written-${hex}`;
    const mount = { Type: 'volume', Source: name, Target: '/data', VolumeOptions: { Labels: { tier: 'db' } } };
    const writer = makeTask(n.nodeId, 'vol', 1, {
      ContainerSpec: { Image: busybox, Args: ['sh', '-c', `echo ${mark} > /data/f`], Mounts: [mount] },
    });
    s.link.push('complete', [update(writer)]);
    await reached(s.link, writer, 'complete');
    s.link.push('incremental', [removal(writer)]);
    await until(async () => ((await engine.list({ all: true })).length === 0 ? true : undefined), 'writer removed');

    const vol = (await engine.volumes.list()).find((v) => v.Name === name);
    assert.equal(vol?.Labels?.['tier'], 'db', 'the volume was created with the mount labels');
    assert.equal(vol?.Driver, 'local');

    const reader = makeTask(n.nodeId, 'vol', 2, {
      ContainerSpec: { Image: busybox, Args: ['sleep', '1000'], StopGracePeriod: 1e9, Mounts: [mount] },
    });
    s.link.push('incremental', [update(reader)]);
    await reached(s.link, reader, 'running');
    const id = s.link.last(reader.ID!)!.Status!.ContainerStatus!.ContainerID!;
    assert.equal(
      (await exec(engine, id, ['cat', '/data/f'])).trim(),
      mark,
      "the second task sees the first one's file",
    );
    await assert.rejects(engine.volumes.remove(name), { code: 'ENGINE_VOLUME_IN_USE' });

    s.link.push('incremental', [update({ ...reader, DesiredState: 'shutdown' })]);
    await reached(s.link, reader, 'shutdown');
    s.link.push('incremental', [removal(reader)]);
    await until(async () => ((await engine.list({ all: true })).length === 0 ? true : undefined), 'reader removed');
    await engine.volumes.remove(name);
    assert.ok(!(await engine.volumes.list()).some((v) => v.Name === name));
  },
);

test(
  'a restarted agent re-adopts running containers: no restart, no duplicate; unassigned ones stop',
  { timeout: 240_000 },
  async (t) => {
    const n = node(t);
    const first = await n.open();
    const s1 = session(first.agent);
    const spec = { ContainerSpec: { Image: busybox, Args: ['sleep', '1000'], StopGracePeriod: 1e9 } };
    const keep = makeTask(n.nodeId, 'keep', 1, spec);
    const shut = makeTask(n.nodeId, 'keep', 2, spec);
    const dropped = makeTask(n.nodeId, 'keep', 3, spec);
    s1.link.push('complete', [update(keep), update(shut), update(dropped)]);
    for (const task of [keep, shut, dropped]) await reached(s1.link, task, 'running');
    const before = new Map(
      [keep, shut, dropped].map((task) => [task.ID!, s1.link.last(task.ID!)!.Status!.ContainerStatus!]),
    );
    const keepRec = await first.engine.inspect(before.get(keep.ID!)!.ContainerID!);

    // shoald goes away: the agent and the engine close, containers keep running under their shims
    await s1.end();
    await first.agent.stop();
    await first.engine.close();

    const second = await n.open();
    const s2 = session(second.agent);
    t.after(() => s2.end());
    const running = { State: 'running', ContainerStatus: before.get(keep.ID!) };
    s2.link.push('complete', [
      update({ ...keep, Status: running }),
      update({ ...shut, Status: { ...running, ContainerStatus: before.get(shut.ID!) }, DesiredState: 'shutdown' }),
    ]);
    await reached(s2.link, shut, 'shutdown');
    await until(async () => {
      try {
        await second.engine.inspect(before.get(dropped.ID!)!.ContainerID!);
        return undefined;
      } catch (err) {
        if (err instanceof ContainerNotFoundError) return true;
        throw err;
      }
    }, 'the unassigned task container removed');

    assert.equal(second.agent.containerOf(keep.ID!), keepRec.id, 'the same container was adopted');
    const now = await second.engine.inspect(keepRec.id);
    assert.equal(now.status, 'running');
    assert.equal(now.pid, keepRec.pid, 'not restarted: same PID');
    assert.equal(now.startedAt, keepRec.startedAt);
    assert.equal((await second.engine.runc.state(keepRec.id))?.status, 'running');
    const same = (await second.engine.list({ all: true })).filter((c) => c.name.startsWith('keep.1.'));
    assert.equal(same.length, 1, 'no duplicate container for the slot');
    assert.deepEqual(s2.link.states(keep.ID!), [], 'nothing to report: it was running and still is');
    assert.equal((await second.engine.inspect(before.get(shut.ID!)!.ContainerID!)).status, 'exited');
  },
);

test(
  'healthcheck: STARTING until healthy, then RUNNING; unhealthy -> FAILED and stopped',
  { timeout: 240_000 },
  async (t) => {
    const n = node(t);
    const { engine, agent } = await n.open();
    const s = session(agent);
    t.after(() => s.end());
    const hc = { Interval: 200e6, Timeout: 5e9, Retries: 2 };
    const slow = makeTask(n.nodeId, 'hc', 1, {
      ContainerSpec: {
        Image: busybox,
        Args: ['sleep', '1000'],
        StopGracePeriod: 1e9,
        Healthcheck: { Test: ['CMD-SHELL', 'test -e /tmp/ready'], ...hc },
      },
    });
    const sick = makeTask(n.nodeId, 'hc', 2, {
      ContainerSpec: {
        Image: busybox,
        Args: ['sleep', '1000'],
        StopGracePeriod: 1e9,
        Healthcheck: { Test: ['CMD', 'false'], ...hc },
      },
    });
    s.link.push('complete', [update(slow), update(sick)]);
    const id = await until(
      () =>
        s.link.updates.find(
          (u) => u.TaskID === slow.ID && u.Status?.State === 'starting' && u.Status.ContainerStatus?.ContainerID,
        )?.Status?.ContainerStatus?.ContainerID,
      'STARTING with its container',
    );
    // probes fail until /tmp/ready exists: whatever the timing, it cannot be RUNNING yet
    await until(async () => ((await engine.inspect(id)).health?.log.length ? true : undefined), 'a first probe');
    assert.ok(!s.link.states(slow.ID!).includes('running'), 'not RUNNING before healthy');
    await exec(engine, id, ['touch', '/tmp/ready']);
    await reached(s.link, slow, 'running');
    assert.equal((await engine.inspect(id)).health?.status, 'healthy');

    await reached(s.link, sick, 'failed');
    assert.equal(s.link.last(sick.ID!)?.Status?.Err, 'task: unhealthy container');
    assert.ok(!s.link.states(sick.ID!).includes('running'));
    const sickId = s.link.last(sick.ID!)!.Status!.ContainerStatus!.ContainerID!;
    await until(
      async () => ((await engine.inspect(sickId)).status === 'exited' ? true : undefined),
      'the unhealthy container stopped',
    );
  },
);

test(
  'registry auth: the service credentials pull from a registry that requires them',
  { timeout: 240_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-worker-authreg-'));
    const creds = { username: 'shoal', password: `pw-${randomBytes(6).toString('hex')}` };
    const authReg = await startRegistry({ dir, htpasswd: creds });
    t.after(async () => {
      await authReg.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const [pushed] = await pushTestImages(authReg.url, { only: ['shoal-test/busybox:1'], auth: creds });
    const image = pushed!.remoteRef;
    const n = node(t);
    const { agent } = await n.open();
    const s = session(agent);
    t.after(() => s.end());
    const auth = (c: { username: string; password: string }): string =>
      Buffer.from(JSON.stringify({ ...c, serveraddress: authReg.addr })).toString('base64url');
    const withAuth = makeTask(n.nodeId, 'priv', 1, {
      ContainerSpec: {
        Image: image,
        Args: ['sleep', '1000'],
        StopGracePeriod: 1e9,
        PullOptions: { RegistryAuth: auth(creds) },
      },
    });
    const wrong = makeTask(n.nodeId, 'priv', 2, {
      ContainerSpec: {
        Image: image,
        Args: ['true'],
        PullOptions: { RegistryAuth: auth({ ...creds, password: 'nope' }) },
      },
    });
    s.link.push('complete', [update(wrong)]);
    await reached(s.link, wrong, 'failed');
    assert.match(s.link.last(wrong.ID!)?.Status?.Err ?? '', /refused|unauthorized|authentication/i);
    s.link.push('incremental', [update(withAuth)]);
    await reached(s.link, withAuth, 'running');
  },
);

test(
  'desired READY creates without starting; RUNNING starts it; a lost assignments message ends the session',
  { timeout: 240_000 },
  async (t) => {
    const n = node(t);
    const { engine, agent } = await n.open();
    const link = new FakeDispatcher();
    const ac = new AbortController();
    const done = agent.runSession(link, ac.signal);
    t.after(async () => {
      ac.abort();
      await done.catch((err: unknown) => {
        if ((err as { code?: string }).code !== 'WORKER_ASSIGNMENTS_SEQUENCE') throw err;
      });
    });
    const task = {
      ...makeTask(n.nodeId, 'prep', 1, {
        ContainerSpec: { Image: busybox, Args: ['sleep', '1000'], StopGracePeriod: 1e9 },
      }),
      DesiredState: 'ready',
    };
    link.push('complete', [update(task)]);
    await reached(link, task, 'ready');
    const made = await until(
      async () => (await engine.list({ all: true })).find((c) => c.name === task.Name),
      'the container made',
    );
    assert.equal(made.status, 'created', 'made, not started');
    assert.ok(!link.states(task.ID!).includes('starting'));
    link.push('incremental', [update({ ...task, DesiredState: 'running' })]);
    await reached(link, task, 'running');
    assert.equal((await engine.inspect(made.id)).status, 'running');
    assert.equal(agent.containerOf(task.ID!), made.id, 'the same container was started');

    link.pushRaw({ Type: 'incremental', AppliesTo: 'not-what-we-hold', ResultsIn: 'x', Changes: [] });
    await assert.rejects(done, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'WORKER_ASSIGNMENTS_SEQUENCE');
      assert.match(err.message, /applies to "not-what-we-hold" but this node holds "2"/);
      return true;
    });
  },
);

test(
  'a new session (another manager) gets the updates the broken one could not deliver, and its complete set rules',
  { timeout: 240_000 },
  async (t) => {
    const n = node(t);
    const { engine, agent } = await n.open();
    const spec = { ContainerSpec: { Image: busybox, Args: ['sleep', '1000'], StopGracePeriod: 1e9 } };
    const a = makeTask(n.nodeId, 'fo', 1, spec);
    const b = makeTask(n.nodeId, 'fo', 2, spec);
    // session 1: assignments arrive, but every UpdateTaskStatus fails (the manager went away)
    const broken = new FakeDispatcher();
    broken.updateTaskStatus = () => Promise.reject(new Error('connection reset'));
    const ac1 = new AbortController();
    const s1 = agent.runSession(broken, ac1.signal);
    broken.push('complete', [update(a), update(b)]);
    await until(
      () => (agent.states().get(a.ID!) === 'running' && agent.states().get(b.ID!) === 'running' ? true : undefined),
      'both running',
    );
    assert.ok(agent.reporter.pending > 0, 'updates kept');
    ac1.abort();
    await s1;
    // session 2: its complete set has only `a`
    const s2 = session(agent);
    t.after(() => s2.end());
    s2.link.push('complete', [update(a)]);
    await reached(s2.link, a, 'running');
    assert.deepEqual(
      s2.link.states(a.ID!),
      ['accepted', 'preparing', 'ready', 'starting', 'running'],
      'nothing lost, in order',
    );
    await until(() => (agent.states().has(b.ID!) ? undefined : true), 'b, absent from the new complete set, dropped');
    await until(
      async () => ((await engine.list({ all: true })).some((c) => c.name === b.Name) ? undefined : true),
      'b removed',
    );
    assert.equal(
      (await engine.list({ all: true })).filter((c) => c.name === a.Name && c.status === 'running').length,
      1,
    );
  },
);
