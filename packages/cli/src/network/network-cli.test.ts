/**
 * `shoal network` and `service create --network/--endpoint-mode` against a test double of
 * shoald (a grpc-js Control server on a unix socket over an in-memory list of networks; the
 * manager's own behaviour is tested in packages/manager). The CLI runs as its own process; the
 * double records every call so that bad input is seen to make none.
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
  SwarmService,
  unaryHandler,
  type CreateNetworkRequest,
  type CreateServiceRequest,
  type Network,
  type Node,
  type RemoveNetworkRequest,
  type Task,
} from '@shoal/api';
import { ShoalError } from '@shoal/common';

function handle<Req, Res>(fn: (req: Req) => Res): ReturnType<typeof unaryHandler<Req, Res>> {
  return unaryHandler<Req, Res>((req) => Promise.resolve().then(() => fn(req)));
}

class FakeDaemon {
  readonly calls: string[] = [];
  readonly created: CreateNetworkRequest[] = [];
  readonly services: CreateServiceRequest[] = [];
  readonly networks = new Map<string, Network>();
  /** Network IDs the double says are in use (rm refused). */
  readonly inUse = new Set<string>();
  /** What ListNodes and ListTasks answer (for `Peers`); unset: those calls are not served. */
  placement: { nodes: Node[]; tasks: Task[] } | undefined;
  /** The node this daemon runs on (Swarm.Info). */
  nodeId = 'h1-id';
  private readonly server = new Server();

  constructor(readonly socket: string) {
    const control = {
      listNetworks: handle(() => ({ Networks: [...this.networks.values()] })),
      createNetwork: handle((req: CreateNetworkRequest) => {
        this.calls.push(`CreateNetwork ${req.Spec?.Name ?? ''}`);
        this.created.push(req);
        const id = `${(req.Spec?.Name ?? 'x').padEnd(4, 'x')}${'0123456789abcdef'.repeat(2)}`.slice(0, 25);
        const n: Network = {
          ID: id,
          Version: { Index: 1 },
          CreatedAt: '2026-11-29T00:00:00Z',
          Spec: req.Spec ?? {},
          DriverState: {
            Name: 'overlay',
            Options: {
              ...req.Spec?.DriverConfiguration?.Options,
              'com.docker.network.driver.overlay.vxlanid_list': '4096',
            },
          },
          IPAMOptions: {
            Driver: { Name: 'default' },
            Configs: req.Spec?.IPAMOptions?.Configs ?? [{ Subnet: '198.19.128.0/24', Gateway: '198.19.128.1' }],
          },
        };
        this.networks.set(id, n);
        return { Network: n };
      }),
      removeNetwork: handle((req: RemoveNetworkRequest) => {
        this.calls.push(`RemoveNetwork ${req.NetworkID ?? ''}`);
        const n = this.networks.get(req.NetworkID ?? '');
        if (n === undefined)
          throw new ShoalError('MANAGER_NETWORK_NOT_FOUND', `network ${req.NetworkID} not found`, {
            kind: 'not-found',
          });
        if (this.inUse.has(n.ID ?? ''))
          throw new ShoalError(
            'MANAGER_NETWORK_IN_USE',
            `network ${n.Spec?.Name} is in use by service web: remove it first`,
            { kind: 'failed-precondition' },
          );
        this.networks.delete(n.ID ?? '');
        return {};
      }),
      listNodes: handle(() => {
        if (this.placement === undefined) throw new ShoalError('TEST_UNSERVED', 'not served', { kind: 'internal' });
        return { Nodes: this.placement.nodes };
      }),
      listTasks: handle(() => {
        if (this.placement === undefined) throw new ShoalError('TEST_UNSERVED', 'not served', { kind: 'internal' });
        return { Tasks: this.placement.tasks };
      }),
      createService: handle((req: CreateServiceRequest) => {
        this.calls.push('CreateService');
        this.services.push(req);
        return { Service: { ID: 'svc1' }, Warnings: [] };
      }),
    };
    this.server.addService(ControlService, control);
    this.server.addService(SwarmService, { info: handle(() => ({ NodeID: this.nodeId })) });
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

async function withDaemon(t: {
  after(fn: () => Promise<void>): void;
}): Promise<{ d: FakeDaemon; run: (args: string[], stdin?: string) => Promise<Run> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-netcli-'));
  const d = new FakeDaemon(join(dir, 'shoal.sock'));
  t.after(async () => {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await d.start();
  const main = new URL('../main.js', import.meta.url).pathname;
  const run = (args: string[], stdin?: string): Promise<Run> =>
    new Promise((resolve, reject) => {
      const c = spawn(process.execPath, [main, ...args], {
        stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: {
          ...process.env,
          SHOAL_DEBUG: '',
          SHOAL_HOST: `unix://${d.socket}`,
          // the engine `network inspect` reads container IDs from: an empty one of this test
          SHOAL_DATA_ROOT: join(dir, 'data'),
          SHOAL_RUN_ROOT: join(dir, 'run'),
        },
      });
      let stdout = '';
      let stderr = '';
      c.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
      c.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
      if (stdin !== undefined) c.stdin?.end(stdin);
      c.on('error', reject);
      c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  return { d, run };
}

test('network create sends the flags; ls, inspect in docker shapes; rm in use refused; prune', async (t) => {
  const { d, run } = await withDaemon(t);
  const c = await run([
    'network',
    'create',
    '-d',
    'overlay',
    '--subnet',
    '198.19.140.0/24',
    '--gateway',
    '198.19.140.254',
    '--ip-range',
    '198.19.140.128/25',
    '--attachable',
    '--internal',
    '--opt',
    'mtu=1400',
    '--label',
    'tier=back',
    'back',
  ]);
  assert.equal(c.stderr, '');
  assert.equal(c.code, 0);
  const id = c.stdout.trim();
  assert.ok(d.networks.has(id), 'prints the ID');
  assert.deepEqual(JSON.parse(JSON.stringify(d.created[0]?.Spec)), {
    Name: 'back',
    Labels: { tier: 'back' },
    DriverConfiguration: { Name: 'overlay', Options: { mtu: '1400' } },
    IPv6Enabled: false,
    Internal: true,
    Attachable: true,
    Ingress: false,
    IPAMOptions: {
      Driver: { Name: 'default', Options: {} },
      Configs: [{ Subnet: '198.19.140.0/24', Gateway: '198.19.140.254', Range: '198.19.140.128/25' }],
    },
    Scope: 'swarm',
  });
  assert.equal((await run(['network', 'create', 'front'])).code, 0);
  assert.equal(d.created[1]?.Spec?.DriverConfiguration?.Name, 'overlay', 'overlay by default');

  // Bad input: one line, exit 2, no call.
  const calls = d.calls.length;
  const bad = await run(['network', 'create', '--gateway', '198.19.5.1', 'x']);
  assert.equal(bad.stderr, 'shoal: every --gateway and --ip-range must have a corresponding --subnet\n');
  assert.equal(bad.code, 2);
  assert.equal(d.calls.length, calls);

  const ls = await run(['network', 'ls']);
  const lines = ls.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
  assert.match(lines[1] ?? '', new RegExp(`^${id.slice(0, 12)}\\s+back\\s+overlay\\s+swarm$`));
  assert.match(lines[2] ?? '', /^\S{12}\s+front\s+overlay\s+swarm$/);
  assert.equal((await run(['network', 'ls', '-q', '--filter', 'label=tier=back'])).stdout, `${id.slice(0, 12)}\n`);
  assert.equal(
    (await run(['network', 'ls', '--format', '{{.Name}} {{.Internal}}'])).stdout,
    'back true\nfront false\n',
  );
  const badFilter = await run(['network', 'ls', '--filter', 'color=red']);
  assert.equal(badFilter.stderr, "shoal: invalid filter 'color'\n");

  const insp = await run(['network', 'inspect', 'back']);
  assert.equal(insp.code, 0);
  const [j] = JSON.parse(insp.stdout) as Record<string, unknown>[];
  assert.deepEqual(j, {
    Name: 'back',
    Id: id,
    Created: '2026-11-29T00:00:00Z',
    Scope: 'swarm',
    Driver: 'overlay',
    EnableIPv6: false,
    IPAM: {
      Driver: 'default',
      Options: null,
      Config: [{ Subnet: '198.19.140.0/24', IPRange: '198.19.140.128/25', Gateway: '198.19.140.254' }],
    },
    Internal: true,
    Attachable: true,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: null,
    Options: { mtu: '1400', 'com.docker.network.driver.overlay.vxlanid_list': '4096' },
    Labels: { tier: 'back' },
  });
  assert.equal((await run(['network', 'inspect', '-f', '{{.Scope}}', id.slice(0, 6)])).stdout, 'swarm\n');
  const missing = await run(['network', 'inspect', 'nope']);
  assert.equal(missing.stderr, 'shoal: no such network: nope\n');
  assert.equal(missing.code, 3);

  d.inUse.add(id);
  const busy = await run(['network', 'rm', 'back']);
  assert.equal(busy.stderr, 'Error response from daemon: network back is in use by service web: remove it first\n');
  assert.equal(busy.code, 5);
  assert.ok(d.networks.has(id));

  const pruned = await run(['network', 'prune', '-f']);
  assert.equal(pruned.stdout, 'Deleted Networks:\nfront\n');
  assert.deepEqual(
    [...d.networks.values()].map((n) => n.Spec?.Name),
    ['back'],
  );
  const asked = await run(['network', 'prune'], 'n\n');
  assert.match(asked.stderr, /Are you sure you want to continue\? \[y\/N\]/);
  d.inUse.clear();
  const rmOk = await run(['network', 'rm', 'back']);
  assert.equal(rmOk.stdout, 'back\n');
  assert.equal(d.networks.size, 0);
});

test('network inspect lists the nodes the network is on as Peers', async (t) => {
  const { d, run } = await withDaemon(t);
  const created = await run(['network', 'create', 'app']);
  assert.equal(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  const node = (name: string, state: string, addr: string): Node => ({
    ID: `${name}-id`,
    Description: { Hostname: name },
    Status: { State: state, Addr: addr },
  });
  const task = (nodeId: string, state: string, networkId: string): Task => ({
    ID: `t-${nodeId}-${state}`,
    NodeID: nodeId,
    Status: { State: state },
    NetworksAttachments: [{ Network: { ID: networkId }, Addresses: ['198.19.128.5/24'] }],
  });
  d.placement = {
    nodes: [
      node('h2', 'ready', '198.18.0.12'),
      node('h1', 'ready', '198.18.0.11'),
      node('h3', 'down', '198.18.0.13'),
      node('h4', 'ready', '198.18.0.14'),
      { ...node('h5', 'ready', '198.18.0.15'), Attachments: [{ Network: { ID: id }, Addresses: ['198.19.128.9/24'] }] },
    ],
    tasks: [
      task('h1-id', 'running', id),
      task('h2-id', 'assigned', id),
      task('h3-id', 'running', id), // its node is down
      task('h4-id', 'complete', id), // stopped
      task('h4-id', 'running', 'othernet'),
    ],
  };
  const insp = await run(['network', 'inspect', 'app']);
  assert.equal(insp.code, 0, insp.stderr);
  const [j] = JSON.parse(insp.stdout) as Record<string, unknown>[];
  assert.deepEqual(j?.['Peers'], [
    { Name: 'h1', IP: '198.18.0.11' },
    { Name: 'h2', IP: '198.18.0.12' },
    { Name: 'h5', IP: '198.18.0.15' },
  ]);
  assert.deepEqual(Object.keys(j ?? {}).slice(-2), ['Labels', 'Peers'], "Docker's key order");
  // On no node: no Peers key, as Docker's.
  d.placement = { nodes: [node('h1', 'ready', '198.18.0.11')], tasks: [] };
  const none = JSON.parse((await run(['network', 'inspect', 'app'])).stdout) as Record<string, unknown>[];
  assert.equal(none[0]?.['Peers'], undefined);
});

test("network inspect lists as Containers the plain and task containers of the daemon's node only, as Docker's", async (t) => {
  const { d, run } = await withDaemon(t);
  const created = await run(['network', 'create', '--attachable', 'att']);
  assert.equal(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  const attachment = (container: string, nodeId: string, addr: string, state = 'running'): Task => ({
    ID: `t-${container}`,
    NodeID: nodeId,
    Spec: { Runtime: 'attachment', NetworkAttachmentSpec: { ContainerID: container } },
    Status: { State: state },
    NetworksAttachments: [{ Network: { ID: id }, Addresses: [addr] }],
  });
  d.placement = {
    nodes: [
      { ID: 'h1-id', Description: { Hostname: 'h1' }, Status: { State: 'ready', Addr: '198.18.0.11' } },
      { ID: 'h2-id', Description: { Hostname: 'h2' }, Status: { State: 'ready', Addr: '198.18.0.12' } },
    ],
    tasks: [
      attachment('c1', 'h1-id', '198.19.128.4/24'),
      attachment('c2', 'h2-id', '198.19.128.5/24'),
      attachment('c3', 'h1-id', '198.19.128.6/24', 'complete'), // stopped: given back
      {
        ID: 'task1',
        NodeID: 'h1-id',
        ServiceID: 'svc-id',
        ServiceName: 'web',
        Slot: 2,
        Status: { State: 'running', ContainerStatus: { ContainerID: 'f'.repeat(64) } },
        NetworksAttachments: [{ Network: { ID: id }, Addresses: ['198.19.128.7/24'] }],
      },
    ],
  };
  const containers = async (): Promise<unknown> => {
    const insp = await run(['network', 'inspect', '-f', '{{json .Containers}}', 'att']);
    assert.equal(insp.code, 0, insp.stderr);
    return JSON.parse(insp.stdout);
  };
  // c1 is not in this engine (its name is its key then); the service task's container by its ID
  assert.deepEqual(await containers(), {
    ['f'.repeat(64)]: {
      Name: 'web.2.task1',
      EndpointID: 'task1',
      MacAddress: '02:42:c6:13:80:07',
      IPv4Address: '198.19.128.7/24',
      IPv6Address: '',
    },
    c1: {
      Name: 'c1',
      EndpointID: 't-c1',
      MacAddress: '02:42:c6:13:80:04',
      IPv4Address: '198.19.128.4/24',
      IPv6Address: '',
    },
  });
  d.nodeId = 'h2-id';
  assert.deepEqual(Object.keys((await containers()) as object), ['c2']);
  d.nodeId = 'h3-id';
  assert.equal(await containers(), null);
});

test('service create --network NAME[,alias=X] and --endpoint-mode reach the daemon', async (t) => {
  const { d, run } = await withDaemon(t);
  const r = await run([
    'service',
    'create',
    '-d',
    '--name',
    'db',
    '--network',
    'back',
    '--network',
    'name=front,alias=database,alias=pg',
    '--endpoint-mode',
    'dnsrr',
    'busybox:1',
  ]);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  const spec = d.services[0]?.Spec;
  assert.deepEqual(spec?.TaskTemplate?.Networks, [
    { Target: 'back', Aliases: [], DriverOpts: {} },
    { Target: 'front', Aliases: ['database', 'pg'], DriverOpts: {} },
  ]);
  assert.equal(spec?.EndpointSpec?.Mode, 'dnsrr');
  const calls = d.calls.length;
  const bad = await run(['service', 'create', '-d', '--network', 'alias=x', 'busybox:1']);
  assert.match(bad.stderr, /^shoal: invalid argument "alias=x" for "--network" flag: network name is missing/);
  assert.equal(bad.code, 2);
  assert.equal(d.calls.length, calls);
});
