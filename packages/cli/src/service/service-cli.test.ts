/**
 * `shoal service`, `secret` and `config` against a test double of shoald's Control service (a
 * grpc-js server on a unix socket over in-memory objects; the real daemon's end-to-end test
 * comes with the manager side). The CLI runs as its own process, as users run it; the double
 * records every write so that bad input is seen to change nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import {
  ControlService,
  unaryHandler,
  type Config,
  type Node,
  type Secret,
  type Service,
  type ServiceSpec,
  type Task,
} from '@shoal/api';
import { ShoalError } from '@shoal/common';

/** Decoded wire objects carry unset fields as undefined: compared without them. */
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

const notFound = (msg: string): ShoalError => new ShoalError('STORE_NOT_FOUND', msg, { kind: 'not-found' });

function handle<Req, Res>(fn: (req: Req) => Res): ReturnType<typeof unaryHandler<Req, Res>> {
  return unaryHandler<Req, Res>((req) => Promise.resolve().then(() => fn(req)));
}

const HOURS_AGO = (h: number): string => new Date(Date.now() - h * 3600_000).toISOString();

/** The double: services, tasks, secrets, configs, nodes, and a log of writes. */
class FakeControl {
  readonly writes: string[] = [];
  readonly created: { Spec?: ServiceSpec; EncodedRegistryAuth?: string }[] = [];
  readonly updates: {
    ServiceID?: string;
    ServiceVersion?: { Index?: number };
    Spec?: ServiceSpec;
    Rollback?: string;
  }[] = [];
  services = new Map<string, Service>();
  tasks: Task[] = [];
  secrets: Secret[] = [];
  configs: Config[] = [];
  nodes: Node[] = [
    {
      ID: 'node1aaaaaaaaaaaaaaaaaaaaa',
      Description: { Hostname: 'h1' },
      Status: { State: 'ready' },
      Spec: { Availability: 'active' },
    },
    {
      ID: 'node2bbbbbbbbbbbbbbbbbbbbb',
      Description: { Hostname: 'h2' },
      Status: { State: 'ready' },
      Spec: { Availability: 'active' },
    },
  ];
  /** Task states played back one listTasks call at a time after a create (the wait's view). */
  script: Task[][] = [];
  private next = 1;
  private server = new Server();

  constructor(readonly socket: string) {
    const find = (ref: string): Service => {
      const s =
        this.services.get(ref) ??
        [...this.services.values()].find((x) => x.Spec?.Name === ref) ??
        [...this.services.values()].find((x) => (x.ID ?? '').startsWith(ref));
      if (!s) throw notFound(`service ${ref} not found`);
      return s;
    };
    const control = {
      getService: handle((req: { ServiceID?: string }) => ({ Service: find(req.ServiceID ?? '') })),
      listServices: handle(() => ({ Services: [...this.services.values()] })),
      createService: handle((req: { Spec?: ServiceSpec; EncodedRegistryAuth?: string }) => {
        this.writes.push(`CreateService ${req.Spec?.Name ?? ''}`);
        this.created.push(req);
        if ([...this.services.values()].some((s) => s.Spec?.Name === req.Spec?.Name))
          throw new ShoalError('STORE_NAME_CONFLICT', `service ${req.Spec?.Name ?? ''} already exists`, {
            kind: 'already-exists',
          });
        const id = `svc${this.next++}xxxxxxxxxxxxxxxxxxxxxx`;
        const svc: Service = { ID: id, Version: { Index: 1 }, Spec: req.Spec ?? {} };
        this.services.set(id, svc);
        this.script = this.script.map((step) => step.map((t) => ({ ...t, ServiceID: id })));
        return { Service: svc };
      }),
      updateService: handle(
        (req: { ServiceID?: string; ServiceVersion?: { Index?: number }; Spec?: ServiceSpec; Rollback?: string }) => {
          this.writes.push(`UpdateService ${req.ServiceID ?? ''}`);
          this.updates.push(req);
          const s = find(req.ServiceID ?? '');
          if (req.ServiceVersion?.Index !== s.Version?.Index)
            throw new ShoalError('STORE_VERSION_CONFLICT', 'update out of sequence', { kind: 'failed-precondition' });
          const spec = req.Rollback === 'previous' ? (s.PreviousSpec ?? {}) : (req.Spec ?? {});
          const updated: Service = {
            ...s,
            Version: { Index: (s.Version?.Index ?? 0) + 1 },
            Spec: spec,
            PreviousSpec: s.Spec,
          };
          this.services.set(s.ID ?? '', updated);
          return { Service: updated };
        },
      ),
      removeService: handle((req: { ServiceID?: string }) => {
        this.writes.push(`RemoveService ${req.ServiceID ?? ''}`);
        this.services.delete(find(req.ServiceID ?? '').ID ?? '');
        return {};
      }),
      listTasks: handle((req: { Filters?: { ServiceIDs?: string[]; NodeIDs?: string[] } }) => {
        const step = this.script.shift();
        if (step) this.tasks = step;
        return {
          Tasks: this.tasks
            .filter(
              (t) =>
                (req.Filters?.ServiceIDs ?? []).length === 0 ||
                (req.Filters?.ServiceIDs ?? []).includes(t.ServiceID ?? ''),
            )
            .filter(
              (t) => (req.Filters?.NodeIDs ?? []).length === 0 || (req.Filters?.NodeIDs ?? []).includes(t.NodeID ?? ''),
            ),
        };
      }),
      listNodes: handle(() => ({ Nodes: this.nodes })),
      getNode: handle((req: { NodeID?: string }) => {
        const n = this.nodes.find((x) => x.ID === req.NodeID || x.Description?.Hostname === req.NodeID);
        if (!n) throw notFound(`node ${req.NodeID ?? ''} not found`);
        return { Node: n };
      }),
      listSecrets: handle(() => ({
        Secrets: this.secrets.map((s) => ({ ...s, Spec: { ...s.Spec, Data: new Uint8Array() } })),
      })),
      createSecret: handle((req: { Spec?: Secret['Spec'] }) => {
        this.writes.push(`CreateSecret ${req.Spec?.Name ?? ''}`);
        const s: Secret = {
          ID: `sec${this.next++}yyyyyyyyyyyyyyyyyyyy`,
          Version: { Index: 1 },
          CreatedAt: HOURS_AGO(2),
          UpdatedAt: HOURS_AGO(2),
          Spec: req.Spec ?? {},
        };
        this.secrets.push(s);
        return { Secret: s };
      }),
      removeSecret: handle((req: { SecretID?: string }) => {
        this.writes.push(`RemoveSecret ${req.SecretID ?? ''}`);
        if (this.tasks.some((t) => t.Spec?.ContainerSpec?.Secrets?.some((r) => r.SecretID === req.SecretID)))
          throw new ShoalError('MANAGER_SECRET_IN_USE', `secret is in use by the following service: web`, {
            kind: 'failed-precondition',
          });
        this.secrets = this.secrets.filter((s) => s.ID !== req.SecretID);
        return {};
      }),
      listConfigs: handle(() => ({ Configs: this.configs })),
      createConfig: handle((req: { Spec?: Config['Spec'] }) => {
        this.writes.push(`CreateConfig ${req.Spec?.Name ?? ''}`);
        const s: Config = {
          ID: `cfg${this.next++}zzzzzzzzzzzzzzzzzzzz`,
          Version: { Index: 1 },
          CreatedAt: HOURS_AGO(3),
          UpdatedAt: HOURS_AGO(3),
          Spec: req.Spec ?? {},
        };
        this.configs.push(s);
        return { Config: s };
      }),
      removeConfig: handle((req: { ConfigID?: string }) => {
        this.writes.push(`RemoveConfig ${req.ConfigID ?? ''}`);
        this.configs = this.configs.filter((s) => s.ID !== req.ConfigID);
        return {};
      }),
    };
    this.server.addService(ControlService, control);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.server.bindAsync(`unix://${this.socket}`, ServerCredentials.createInsecure(), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function shoal(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<Run> {
  const main = new URL('../main.js', import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [main, ...args], {
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, SHOAL_DEBUG: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    c.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    if (stdin !== undefined) c.stdin?.end(stdin);
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function withDaemon(t: {
  after(fn: () => Promise<void>): void;
}): Promise<{ d: FakeControl; dir: string; run: (args: string[], stdin?: string) => Promise<Run> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-svccli-'));
  const d = new FakeControl(join(dir, 'shoal.sock'));
  t.after(async () => {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await d.start();
  return {
    d,
    dir,
    run: (args, stdin) => shoal(args, { SHOAL_HOST: `unix://${d.socket}`, DOCKER_CONFIG: join(dir, 'docker') }, stdin),
  };
}

function task(id: string, slot: number, state: string, extra: Partial<Task> = {}): Task {
  return {
    ID: id,
    ServiceID: 'svc1xxxxxxxxxxxxxxxxxxxxxx',
    Slot: slot,
    NodeID: 'node1aaaaaaaaaaaaaaaaaaaaa',
    DesiredState: 'running',
    CreatedAt: HOURS_AGO(3),
    Status: { State: state, Timestamp: HOURS_AGO(3) },
    Spec: { ContainerSpec: { Image: 'nginx:1.27@sha256:' + 'a'.repeat(64) } },
    ...extra,
  };
}

test('service create sends the spec built from the flags, with secret IDs resolved, and waits for the tasks', async (t) => {
  const { d, run } = await withDaemon(t);
  d.secrets.push({ ID: 'sec-id-1', Spec: { Name: 'db_pass' } });
  d.configs.push({ ID: 'cfg-id-1', Spec: { Name: 'nginx_conf' } });
  // what the wait sees, one listTasks call at a time: pending, one failed, then both running
  d.script = [
    [task('t1', 1, 'pending'), task('t2', 2, 'pending')],
    [
      task('t1', 1, 'running'),
      task('t2', 2, 'failed', { Status: { State: 'failed', Err: 'task: non-zero exit (1)' } }),
    ],
    [
      task('t1', 1, 'running'),
      task('t2', 2, 'failed', {
        DesiredState: 'shutdown',
        Status: { State: 'failed', Err: 'task: non-zero exit (1)' },
      }),
      task('t3', 2, 'running', { CreatedAt: HOURS_AGO(1) }),
    ],
  ];
  const r = await run([
    'service',
    'create',
    '--name',
    'web',
    '--replicas',
    '2',
    '--secret',
    'source=db_pass,target=pw,mode=0400',
    '--config',
    'source=nginx_conf,target=/etc/nginx/nginx.conf',
    '--reserve-memory',
    '64MiB',
    '-p',
    '8080:80',
    'nginx:1.27',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(d.created.length, 1);
  const spec = d.created[0]?.Spec;
  assert.deepEqual(plain(spec?.TaskTemplate?.ContainerSpec?.Secrets), [
    { File: { Name: 'pw', UID: '0', GID: '0', Mode: 0o400 }, SecretID: 'sec-id-1', SecretName: 'db_pass' },
  ]);
  assert.deepEqual(plain(spec?.TaskTemplate?.ContainerSpec?.Configs), [
    {
      File: { Name: '/etc/nginx/nginx.conf', UID: '0', GID: '0', Mode: 0o444 },
      ConfigID: 'cfg-id-1',
      ConfigName: 'nginx_conf',
    },
  ]);
  assert.equal(spec?.TaskTemplate?.Resources?.Reservations?.MemoryBytes, 64 * 1024 * 1024);
  assert.deepEqual(plain(spec?.Mode), { Replicated: { Replicas: 2 } });
  assert.deepEqual(plain(spec?.EndpointSpec?.Ports), [
    // the wire's zero value of the port's Name
    { Name: '', Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
  ]);
  // the ID, then docker's plain progress lines (no terminal), the task's error, and the end
  assert.equal(
    r.stdout,
    [
      'svc1xxxxxxxxxxxxxxxxxxxxxx',
      'overall progress: 0 out of 2 tasks',
      '1/2: pending',
      '2/2: pending',
      'overall progress: 1 out of 2 tasks',
      '1/2: running',
      '2/2: failed',
      '2/2: failed: task: non-zero exit (1)',
      'overall progress: 2 out of 2 tasks',
      '2/2: running',
      'verify: Service web converged',
      '',
    ].join('\n'),
  );

  // -d: the ID only, no wait; a duplicate name: the daemon's refusal and its exit code
  const again = await run(['service', 'create', '-d', '--name', 'web', 'nginx:1.27']);
  assert.equal(again.stderr, 'Error response from daemon: service web already exists\n');
  assert.equal(again.code, 4);
});

test('bad input to service, secret and config commands: one line, exit code, nothing written', async (t) => {
  const { d, run, dir } = await withDaemon(t);
  d.secrets.push({ ID: 'sec-id-1', Spec: { Name: 'db_pass' } });
  d.services.set('svc9', { ID: 'svc9', Version: { Index: 1 }, Spec: { Name: 'glob', Mode: { Global: {} } } });
  const cases: [string[], RegExp, number][] = [
    [
      ['service', 'create', '--bogus', 'nginx'],
      /^shoal: unknown flag: --bogus\nSee 'shoal service create --help'\.\n$/,
      1,
    ],
    [
      ['service', 'create', '--reserve-memory', '12XB', 'nginx'],
      /^shoal: invalid argument "12XB" for "--reserve-memory" flag: invalid size: '12XB'\n$/,
      2,
    ],
    [
      ['service', 'create', '--constraint', 'node.role=worker', 'nginx'],
      /^shoal: invalid argument "node.role=worker" for "--constraint" flag: expected KEY==VALUE or KEY!=VALUE\n$/,
      2,
    ],
    [
      ['service', 'create', '--mount', 'type=bind,target=/data', 'nginx'],
      /^shoal: invalid argument "type=bind,target=\/data" for "--mount" flag: a bind mount needs source/,
      2,
    ],
    [['service', 'create', '--mount', 'type=volume,src=x,dst=/a,bogus=1', 'nginx'], /unknown option 'bogus'/, 2],
    [
      ['service', 'create', '--secret', 'db_pass', '--secret', 'source=other,target=db_pass', 'nginx'],
      /^shoal: duplicate secret target for other not allowed/,
      2,
    ],
    [['service', 'create', '--secret', 'missing', 'nginx'], /^shoal: secret not found: missing\n$/, 3],
    [
      ['service', 'create', '--mode', 'global', '--replicas', '3', 'nginx'],
      /^shoal: --replicas can only be used with replicated or replicated-job mode/,
      2,
    ],
    [['service', 'create', '-d', 'nginx', '--name'], /./, 0], // after the image: the command's own args (docker's rule)
    [['service', 'scale', 'web'], /^shoal: invalid scale specifier 'web': expected SERVICE=REPLICAS\n$/, 2],
    [['service', 'scale', 'web=many'], /^shoal: invalid replicas value many/, 2],
    [['service', 'scale', 'glob=2'], /^shoal: scale can only be used with replicated or replicated-job mode/, 2],
    [['service', 'update', '--limit-memory', 'lots', 'glob'], /for "--limit-memory" flag: invalid size: 'lots'/, 2],
    [
      ['service', 'update', '--replicas', '2', 'glob'],
      /--replicas can only be used with replicated or replicated-job mode/,
      2,
    ],
    [['service', 'update', '--image', 'x', 'nosuch'], /^Error response from daemon: service nosuch not found\n$/, 3],
    [['service', 'rollback', 'glob'], /^shoal: service glob does not have a previous spec to roll back to\n$/, 5],
    [['service', 'ls', '--filter', 'colour=red'], /^shoal: invalid filter 'colour'\n$/, 2],
    [['service', 'ps', '--format', '{{.Nope', 'web'], /^shoal: .*template/i, 2],
    [
      ['secret', 'create', 'tpl', '-', '--template-driver', 'golang'],
      /^shoal: --template-driver "golang": templated secrets are not supported\n$/,
      2,
    ],
    [['secret', 'create', 'bad name!', '-'], /^shoal: invalid secret: Name: name "bad name!" is invalid/, 2],
    [
      ['secret', 'create', 'empty', join(dir, 'no-such-file')],
      /^shoal: cannot read the secret data from .*no-such-file: no such file\n$/,
      2,
    ],
    [['config', 'create', 'c', '-', '--template-driver', 'golang'], /templated configs are not supported/, 2],
    [['secret', 'inspect', 'nosuch'], /^shoal: no such secret: nosuch\n/, 3],
  ];
  for (const [args, re, code] of cases) {
    const r = await run(args, '');
    if (code === 0) continue;
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout.replace(/^\[\]\n$/, ''), '', args.join(' '));
  }
  // `create nginx --name` ran (nginx with the argument --name): the only write of all of them
  assert.deepEqual(d.writes, ['CreateService ']);
  assert.deepEqual(plain(d.created[0]?.Spec?.TaskTemplate?.ContainerSpec?.Args), ['--name']);
});

function seed(d: FakeControl): void {
  const base = (name: string, spec: Partial<ServiceSpec>, extra: Partial<Service> = {}): Service => ({
    Version: { Index: 7 },
    CreatedAt: HOURS_AGO(5),
    Spec: {
      Name: name,
      Labels: { tier: name === 'web' ? 'front' : 'back' },
      TaskTemplate: { ContainerSpec: { Image: 'nginx:1.27@sha256:' + 'a'.repeat(64) } },
      ...spec,
    },
    ...extra,
  });
  d.services.set('svc1xxxxxxxxxxxxxxxxxxxxxx', {
    ID: 'svc1xxxxxxxxxxxxxxxxxxxxxx',
    ...base(
      'web',
      {
        Mode: { Replicated: { Replicas: 3 } },
        EndpointSpec: {
          Ports: [
            { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
            { Protocol: 'tcp', TargetPort: 81, PublishedPort: 8081, PublishMode: 'ingress' },
          ],
        },
      },
      {
        ServiceStatus: { RunningTasks: 2, DesiredTasks: 3 },
        Endpoint: {
          Spec: {
            Ports: [
              { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
              { Protocol: 'tcp', TargetPort: 81, PublishedPort: 8081, PublishMode: 'ingress' },
            ],
          },
          Ports: [
            { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
            { Protocol: 'tcp', TargetPort: 81, PublishedPort: 8081, PublishMode: 'ingress' },
          ],
          VirtualIPs: [
            { NetworkID: 'ingressnetid', Addr: '198.19.128.2/24' },
            { NetworkID: 'appnetid', Addr: '198.19.129.2/24' },
          ],
        },
        PreviousSpec: {
          Name: 'web',
          TaskTemplate: { ContainerSpec: { Image: 'nginx:1.26' } },
          Mode: { Replicated: { Replicas: 1 } },
        },
      },
    ),
  });
  d.services.set('svc2yyyyyyyyyyyyyyyyyyyyyy', {
    ID: 'svc2yyyyyyyyyyyyyyyyyyyyyy',
    ...base(
      'batch',
      { Mode: { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 10 } } },
      {
        ServiceStatus: { RunningTasks: 2, DesiredTasks: 2, CompletedTasks: 3 },
      },
    ),
  });
  // no ServiceStatus from the daemon: counted from its tasks
  d.services.set('svc3zzzzzzzzzzzzzzzzzzzzzz', {
    ID: 'svc3zzzzzzzzzzzzzzzzzzzzzz',
    ...base('agent', { Mode: { Global: {} } }),
  });
  d.tasks = [
    task('task1aaaaaaaaaaaaaaaaaaaaa', 1, 'running', { Name: 'web.1.task1' }),
    task('task0aaaaaaaaaaaaaaaaaaaaa', 1, 'failed', {
      DesiredState: 'shutdown',
      CreatedAt: HOURS_AGO(4),
      // Its status changed after its replacement was made: ps still lists the newest task first.
      Status: { State: 'failed', Timestamp: HOURS_AGO(2), Err: 'task: non-zero exit (1): the story is long' },
    }),
    task('task2aaaaaaaaaaaaaaaaaaaaa', 2, 'running', {
      NodeID: 'node2bbbbbbbbbbbbbbbbbbbbb',
      Status: {
        State: 'running',
        Timestamp: HOURS_AGO(3),
        PortStatus: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 30080, PublishMode: 'host' }] },
      },
    }),
    task('task3aaaaaaaaaaaaaaaaaaaaa', 3, 'pending', {
      NodeID: '',
      Status: { State: 'pending', Timestamp: HOURS_AGO(3), Err: 'no suitable node (2 nodes insufficient memory)' },
    }),
    task('gtask1aaaaaaaaaaaaaaaaaaaa', 0, 'running', { ServiceID: 'svc3zzzzzzzzzzzzzzzzzzzzzz' }),
  ];
}

test('service ls: docker columns, job replicas, counted status, filters, -q and --format', async (t) => {
  const { d, run } = await withDaemon(t);
  seed(d);
  const ls = await run(['service', 'ls']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.equal(
    ls.stdout,
    [
      'ID             NAME      MODE             REPLICAS               IMAGE        PORTS',
      'svc3zzzzzzzz   agent     global           1/2                    nginx:1.27   ',
      'svc2yyyyyyyy   batch     replicated job   2/2 (3/10 completed)   nginx:1.27   ',
      'svc1xxxxxxxx   web       replicated       2/3                    nginx:1.27   *:8080-8081->80-81/tcp',
      '',
    ].join('\n'),
  );
  assert.equal((await run(['service', 'ls', '-q', '--filter', 'mode=global'])).stdout, 'svc3zzzzzzzzzzzzzzzzzzzzzz\n');
  assert.equal(
    (await run(['service', 'ls', '-f', 'label=tier=front', '--format', '{{.Name}}: {{.Replicas}}'])).stdout,
    'web: 2/3\n',
  );
  const json = await run(['service', 'ls', '--filter', 'name=we', '--format', 'json']);
  assert.deepEqual(JSON.parse(json.stdout), {
    ID: 'svc1xxxxxxxx',
    Name: 'web',
    Mode: 'replicated',
    Replicas: '2/3',
    Image: 'nginx:1.27',
    Ports: '*:8080-8081->80-81/tcp',
  });
  assert.deepEqual(d.writes, []);
});

test('service ps: slots with history lines, hostnames, docker states and quoted errors; filters; --no-trunc', async (t) => {
  const { d, run } = await withDaemon(t);
  seed(d);
  const ps = await run(['service', 'ps', 'web']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.equal(
    ps.stdout,
    [
      'ID             NAME        IMAGE        NODE      DESIRED STATE   CURRENT STATE         ERROR                              PORTS',
      'task1aaaaaaa   web.1       nginx:1.27   h1        Running         Running 3 hours ago                                      ',
      'task0aaaaaaa    \\_ web.1   nginx:1.27   h1        Shutdown        Failed 2 hours ago    "task: non-zero exit (1): the …"   ',
      'task2aaaaaaa   web.2       nginx:1.27   h2        Running         Running 3 hours ago                                      *:30080->80/tcp',
      'task3aaaaaaa   web.3       nginx:1.27             Running         Pending 3 hours ago   "no suitable node (2 nodes ins…"   ',
      '',
    ].join('\n'),
  );
  const running = await run(['service', 'ps', '-q', '--filter', 'desired-state=running', '--filter', 'node=h2', 'web']);
  assert.equal(running.stdout, 'task2aaaaaaa\n');
  const full = await run([
    'service',
    'ps',
    '--no-trunc',
    '--format',
    '{{.ID}} {{.Image}} {{.Error}}',
    '-f',
    'id=task0',
    'web',
  ]);
  assert.equal(
    full.stdout,
    `task0aaaaaaaaaaaaaaaaaaaaa nginx:1.27@sha256:${'a'.repeat(64)} "task: non-zero exit (1): the story is long"\n`,
  );
  // node ps shows the same rows for the node's tasks
  const onH2 = await run(['node', 'ps', 'h2']);
  assert.match(
    onH2.stdout,
    /^ID +NAME +IMAGE +NODE +DESIRED STATE +CURRENT STATE +ERROR +PORTS\ntask2aaaaaaa +web\.2 +nginx:1\.27 +h2 +Running +Running 3 hours ago +\*:30080->80\/tcp\n$/,
  );
  const none = await run(['service', 'ps', 'nosuch']);
  assert.equal(none.stderr, 'Error response from daemon: service nosuch not found\n');
  assert.equal(none.code, 3);
});

test("service inspect prints docker's JSON array, --format and --pretty", async (t) => {
  const { d, run } = await withDaemon(t);
  seed(d);
  const r = await run(['service', 'inspect', 'web']);
  assert.equal(r.code, 0, r.stderr);
  const arr = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.equal(arr.length, 1);
  assert.equal(arr[0]?.['ID'], 'svc1xxxxxxxxxxxxxxxxxxxxxx');
  assert.deepEqual(arr[0]?.['Version'], { Index: 7 });
  assert.deepEqual((arr[0]?.['Spec'] as { Mode: unknown }).Mode, { Replicated: { Replicas: 3 } });
  assert.deepEqual((arr[0]?.['Endpoint'] as { VirtualIPs: unknown }).VirtualIPs, [
    { NetworkID: 'ingressnetid', Addr: '198.19.128.2/24' },
    { NetworkID: 'appnetid', Addr: '198.19.129.2/24' },
  ]);
  assert.ok(r.stdout.startsWith('[\n    {\n        "ID": "svc1'), r.stdout.slice(0, 40));
  assert.equal(
    (await run(['service', 'inspect', '-f', '{{.Spec.Name}} {{.Version.Index}}', 'web', 'batch'])).stdout,
    'web 7\nbatch 7\n',
  );
  const pretty = await run(['service', 'inspect', '--pretty', 'web']);
  assert.match(
    pretty.stdout,
    /^ID:\t\tsvc1x+\nName:\t\tweb\nLabels:\n tier=front\nService Mode:\tReplicated\n Replicas:\t3\n/,
  );
  assert.match(
    pretty.stdout,
    /Ports:\n PublishedPort = 8080\n {2}Protocol = tcp\n {2}TargetPort = 80\n {2}PublishMode = ingress\n/,
  );
  const missing = await run(['service', 'inspect', 'web', 'nosuch']);
  assert.equal(missing.code, 3);
  assert.equal(missing.stderr, 'Error response from daemon: service nosuch not found\n');
  assert.equal((JSON.parse(missing.stdout) as unknown[]).length, 1);
});

test('scale, update with the current version, rollback, rm', async (t) => {
  const { d, run } = await withDaemon(t);
  seed(d);
  const sc = await run(['service', 'scale', '-d', 'web=5', 'batch=20']);
  assert.equal(sc.stdout, 'web scaled to 5\nbatch scaled to 20\n', sc.stderr);
  assert.deepEqual(plain(d.updates.map((u) => [u.ServiceID, u.ServiceVersion?.Index, u.Spec?.Mode])), [
    ['svc1xxxxxxxxxxxxxxxxxxxxxx', 7, { Replicated: { Replicas: 5 } }],
    ['svc2yyyyyyyyyyyyyyyyyyyyyy', 7, { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 20 } }],
  ]);
  const up = await run(['service', 'update', '-d', '--image', 'nginx:1.28', '--env-add', 'A=1', '--force', 'web']);
  assert.equal(up.stdout, 'web\n', up.stderr);
  const last = d.updates[d.updates.length - 1];
  assert.equal(last?.ServiceVersion?.Index, 8);
  assert.equal(last?.Spec?.TaskTemplate?.ContainerSpec?.Image, 'nginx:1.28');
  assert.deepEqual(last?.Spec?.TaskTemplate?.ContainerSpec?.Env, ['A=1']);
  assert.equal(last?.Spec?.TaskTemplate?.ForceUpdate, 1);
  assert.deepEqual(plain(last?.Spec?.Mode), { Replicated: { Replicas: 5 } });

  const rb = await run(['service', 'rollback', '-d', 'web']);
  assert.equal(rb.stdout, 'web\nrollback: manually requested rollback\n', rb.stderr);
  assert.equal(d.updates[d.updates.length - 1]?.Rollback, 'previous');
  assert.equal(
    d.services.get('svc1xxxxxxxxxxxxxxxxxxxxxx')?.Spec?.TaskTemplate?.ContainerSpec?.Image,
    'nginx:1.27@sha256:' + 'a'.repeat(64),
  );

  // waiting after an update the daemon paused: its message, and the exit code of its kind
  const web = d.services.get('svc1xxxxxxxxxxxxxxxxxxxxxx');
  if (web) web.UpdateStatus = { State: 'paused', Message: 'update paused due to failure of task t9' };
  const paused = await run(['service', 'update', '--env-add', 'B=2', 'web']);
  assert.match(paused.stdout, /^web\noverall progress: 2 out of 5 tasks\n1\/5: running\n/);
  assert.equal(paused.stderr, 'shoal: service web: update paused: update paused due to failure of task t9\n');
  assert.equal(paused.code, 5);

  const rmr = await run(['service', 'rm', 'batch', 'nosuch', 'agent']);
  assert.equal(rmr.stdout, 'batch\nagent\n');
  assert.equal(rmr.stderr, 'Error response from daemon: service nosuch not found\n');
  assert.equal(rmr.code, 3);
  assert.deepEqual(
    [...d.services.values()].map((s) => s.Spec?.Name),
    ['web'],
  );
});

test('secret and config: create from a file or stdin, ls, inspect without the data, rm refused while in use', async (t) => {
  const { d, run } = await withDaemon(t);
  const c = await run(['secret', 'create', '--label', 'env=prod', 'db_pass', '-'], 's3cr3t-bytes');
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /^sec\d+y+\n$/);
  assert.equal(Buffer.from(d.secrets[0]?.Spec?.Data ?? new Uint8Array()).toString(), 's3cr3t-bytes');
  assert.deepEqual(plain(d.secrets[0]?.Spec?.Labels), { env: 'prod' });

  const ls = await run(['secret', 'ls']);
  assert.equal(
    ls.stdout,
    `ID                         NAME      DRIVER    CREATED       UPDATED\n${d.secrets[0]?.ID ?? ''}   db_pass             2 hours ago   2 hours ago\n`,
  );
  const ins = await run(['secret', 'inspect', 'db_pass']);
  const obj = (JSON.parse(ins.stdout) as { ID: string; Spec: Record<string, unknown> }[])[0];
  assert.equal(obj?.ID, d.secrets[0]?.ID);
  assert.deepEqual(obj?.Spec, { Name: 'db_pass', Labels: { env: 'prod' } });
  assert.ok(!ins.stdout.includes(Buffer.from('s3cr3t-bytes').toString('base64')));
  assert.ok(!(await run(['secret', 'inspect', '--pretty', 'db_pass'])).stdout.includes('s3cr3t'));

  const cc = await run(['config', 'create', 'site', '-'], 'server { listen 80; }');
  assert.equal(cc.code, 0, cc.stderr);
  const ci = JSON.parse((await run(['config', 'inspect', 'site'])).stdout) as { Spec: { Data: string } }[];
  assert.equal(Buffer.from(ci[0]?.Spec.Data ?? '', 'base64').toString(), 'server { listen 80; }');
  assert.equal((await run(['config', 'ls', '--format', '{{.Name}}'])).stdout, 'site\n');

  d.tasks = [
    task('t1', 1, 'running', { Spec: { ContainerSpec: { Secrets: [{ SecretID: d.secrets[0]?.ID ?? '' }] } } }),
  ];
  const inUse = await run(['secret', 'rm', 'db_pass']);
  assert.equal(inUse.stderr, 'Error response from daemon: secret is in use by the following service: web\n');
  assert.equal(inUse.code, 5);
  d.tasks = [];
  assert.equal((await run(['secret', 'rm', 'db_pass'])).stdout, 'db_pass\n');
  assert.equal((await run(['config', 'rm', 'site'])).stdout, 'site\n');
  assert.deepEqual(d.secrets, []);
  assert.deepEqual(d.configs, []);
});
