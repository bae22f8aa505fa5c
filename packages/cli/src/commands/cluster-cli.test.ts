/**
 * `shoal swarm` and `shoal node` against a test double of shoald: a grpc-js server on a unix
 * socket implementing the Swarm and Control methods the CLI calls, over an in-memory cluster.
 * (The real daemon's end-to-end test is test/cluster-lab.test.ts.) The CLI runs as its own
 * process, as users run it; the double records every call so that bad input is seen to change
 * nothing.
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
  type Cluster,
  type Node,
  type SwarmInitRequest,
  type SwarmJoinRequest,
} from '@shoal/api';
import { ShoalError } from '@shoal/common';

const err = (kind: 'not-found' | 'failed-precondition' | 'invalid-argument', code: string, msg: string): ShoalError =>
  new ShoalError(code, msg, { kind });

/** A unary handler from a synchronous function (what it throws becomes the call's status). */
function handle<Req, Res>(fn: (req: Req) => Res): ReturnType<typeof unaryHandler<Req, Res>> {
  return unaryHandler<Req, Res>((req) => Promise.resolve().then(() => fn(req)));
}

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBfakefakefake\n-----END CERTIFICATE-----\n';

function makeNode(id: string, host: string, role: 'manager' | 'worker', leader = false): Node {
  return {
    ID: id,
    Version: { Index: 1 },
    CreatedAt: '2026-11-29T00:00:00Z',
    Spec: { Role: role, Availability: 'active', Labels: {} },
    Description: { Hostname: host, Engine: { EngineVersion: '0.1.0', Labels: { zone: host === 'h2' ? 'b' : 'a' } } },
    Status: { State: 'ready', Addr: '198.18.9.1' },
    ...(role === 'manager'
      ? { ManagerStatus: { Leader: leader, Reachability: 'reachable', Addr: `${host}:2377` } }
      : {}),
  };
}

/** The double: state plus a log of the calls that would change it. */
class FakeDaemon {
  readonly calls: string[] = [];
  initRequest?: SwarmInitRequest;
  joinRequest?: SwarmJoinRequest;
  nodes = new Map<string, Node>();
  cluster?: Cluster;
  selfId = '';
  unlockKey = '';
  locked = false;
  private server = new Server();

  constructor(readonly socket: string) {
    const swarm = {
      init: handle((req: SwarmInitRequest) => {
        this.calls.push('Init');
        if (this.cluster)
          throw err('failed-precondition', 'SWARM_ALREADY_MEMBER', 'This node is already part of a swarm.');
        this.initRequest = req;
        this.selfId = 'n1aaaaaaaaaaaaaaaaaaaaaaa';
        this.nodes.set(this.selfId, makeNode(this.selfId, 'h1', 'manager', true));
        this.unlockKey = req.AutoLockManagers ? 'SWMKEY-1-unlockkey1' : '';
        this.cluster = {
          ID: 'c1',
          Version: { Index: 1 },
          Spec: { Name: 'default', EncryptionConfig: { AutoLockManagers: req.AutoLockManagers ?? false } },
          JoinTokens: { Worker: 'SWMTKN-1-digest-worker1', Manager: 'SWMTKN-1-digest-manager1' },
          TLSInfo: { TrustRoot: PEM },
          DefaultAddrPool: req.DefaultAddrPool ?? [],
        };
        return { NodeID: this.selfId, UnlockKey: this.unlockKey };
      }),
      join: handle((req: SwarmJoinRequest) => {
        this.calls.push('Join');
        this.joinRequest = req;
        if (req.JoinToken !== 'SWMTKN-1-digest-worker1')
          throw err('invalid-argument', 'CA_TOKEN_INVALID', 'invalid join token');
        return { NodeID: 'n9' };
      }),
      leave: handle((req: { Force?: boolean }) => {
        this.calls.push('Leave');
        if (!req.Force)
          throw err(
            'failed-precondition',
            'SWARM_LAST_MANAGER',
            'You are attempting to leave the swarm on a node that is participating as a manager. Use --force to ignore this message.',
          );
        return {};
      }),
      unlock: handle((req: { UnlockKey?: string }) => {
        this.calls.push(`Unlock ${req.UnlockKey ?? ''}`);
        if (req.UnlockKey !== this.unlockKey) throw err('invalid-argument', 'SWARM_BAD_KEY', 'invalid key');
        this.locked = false;
        return {};
      }),
      info: handle(() => ({
        NodeID: this.selfId,
        NodeAddr: '198.18.9.1',
        LocalNodeState: this.cluster ? 'active' : 'inactive',
        ControlAvailable: true,
        RemoteManagers: [{ NodeID: this.selfId, Addr: '198.18.9.1:2377' }],
      })),
    };
    const find = (ref: string): Node => {
      const n =
        this.nodes.get(ref) ??
        [...this.nodes.values()].find((x) => x.Description?.Hostname === ref) ??
        [...this.nodes.values()].find((x) => (x.ID ?? '').startsWith(ref));
      if (!n) throw err('not-found', 'STORE_NOT_FOUND', `node ${ref} not found`);
      return n;
    };
    const control = {
      getNode: handle((req: { NodeID?: string }) => ({ Node: find(req.NodeID ?? '') })),
      listNodes: handle((req: { Filters?: { Roles?: string[] } }) => {
        this.calls.push(`ListNodes ${JSON.stringify(req.Filters?.Roles ?? [])}`);
        return { Nodes: [...this.nodes.values()] };
      }),
      updateNode: handle((req: { NodeID?: string; NodeVersion?: { Index?: number }; Spec?: Node['Spec'] }) => {
        this.calls.push('UpdateNode');
        const n = find(req.NodeID ?? '');
        if (req.NodeVersion?.Index !== n.Version?.Index)
          throw err('failed-precondition', 'STORE_VERSION_CONFLICT', 'update out of sequence');
        const role = req.Spec?.Role;
        const updated: Node = { ...n, Version: { Index: (n.Version?.Index ?? 0) + 1 }, Spec: req.Spec };
        if (role === 'manager' && !n.ManagerStatus) updated.ManagerStatus = { Reachability: 'reachable' };
        if (role === 'worker') delete updated.ManagerStatus;
        this.nodes.set(n.ID ?? '', updated);
        return { Node: updated };
      }),
      removeNode: handle((req: { NodeID?: string; Force?: boolean }) => {
        this.calls.push('RemoveNode');
        const n = find(req.NodeID ?? '');
        if (n.Status?.State === 'ready' && !req.Force)
          throw err(
            'failed-precondition',
            'MANAGER_NODE_READY',
            `node ${n.ID ?? ''} is not down and can't be removed (use --force)`,
          );
        this.nodes.delete(n.ID ?? '');
        return {};
      }),
      listTasks: handle(() => ({ Tasks: [] })),
      getCluster: handle(() => {
        if (!this.cluster) throw err('failed-precondition', 'SWARM_NOT_MEMBER', 'This node is not a swarm manager.');
        return { Cluster: this.cluster };
      }),
      updateCluster: handle(
        (req: {
          ClusterVersion?: { Index?: number };
          Spec?: Cluster['Spec'];
          Rotation?: { WorkerJoinToken?: boolean; ManagerJoinToken?: boolean; ManagerUnlockKey?: boolean };
        }) => {
          this.calls.push('UpdateCluster');
          const c = this.cluster;
          if (!c) throw err('failed-precondition', 'SWARM_NOT_MEMBER', 'This node is not a swarm manager.');
          if (req.ClusterVersion?.Index !== c.Version?.Index)
            throw err('failed-precondition', 'STORE_VERSION_CONFLICT', 'update out of sequence');
          const tokens = { ...c.JoinTokens };
          if (req.Rotation?.WorkerJoinToken) tokens.Worker = 'SWMTKN-1-digest-worker2';
          if (req.Rotation?.ManagerJoinToken) tokens.Manager = 'SWMTKN-1-digest-manager2';
          if (req.Rotation?.ManagerUnlockKey) this.unlockKey = 'SWMKEY-1-unlockkey2';
          if (req.Spec?.EncryptionConfig?.AutoLockManagers && !this.unlockKey) this.unlockKey = 'SWMKEY-1-unlockkey1';
          this.cluster = { ...c, Version: { Index: (c.Version?.Index ?? 0) + 1 }, Spec: req.Spec, JoinTokens: tokens };
          return { Cluster: this.cluster };
        },
      ),
      getUnlockKey: handle(() => ({ UnlockKey: this.unlockKey })),
    };
    this.server.addService(SwarmService, swarm);
    this.server.addService(ControlService, control);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.server.bindAsync(`unix://${this.socket}`, ServerCredentials.createInsecure(), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
  }

  /** A cluster of 5 made directly: h1 (self, leader), h2 and h3 managers, h4 and h5 workers. */
  seedCluster(): void {
    this.selfId = 'n1aaaaaaaaaaaaaaaaaaaaaaa';
    const ns = [
      makeNode('n1aaaaaaaaaaaaaaaaaaaaaaa', 'h1', 'manager', true),
      makeNode('n2bbbbbbbbbbbbbbbbbbbbbbb', 'h2', 'manager'),
      makeNode('n3ccccccccccccccccccccccc', 'h3', 'manager'),
      makeNode('n4ddddddddddddddddddddddd', 'h4', 'worker'),
      makeNode('n5eeeeeeeeeeeeeeeeeeeeeee', 'h5', 'worker'),
    ];
    for (const n of ns.reverse()) this.nodes.set(n.ID ?? '', n);
    this.cluster = {
      ID: 'c1',
      Version: { Index: 1 },
      Spec: { Name: 'default', EncryptionConfig: { AutoLockManagers: false } },
      JoinTokens: { Worker: 'SWMTKN-1-digest-worker1', Manager: 'SWMTKN-1-digest-manager1' },
      TLSInfo: { TrustRoot: PEM },
    };
  }

  /** The calls that change state (reads excluded). */
  writes(): string[] {
    return this.calls.filter((c) => !c.startsWith('ListNodes'));
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

async function withDaemon(
  t: { after(fn: () => Promise<void>): void },
  seed: boolean,
): Promise<{ d: FakeDaemon; run: (args: string[], stdin?: string) => Promise<Run> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-clustercli-'));
  const d = new FakeDaemon(join(dir, 'shoal.sock'));
  t.after(async () => {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await d.start();
  if (seed) d.seedCluster();
  return { d, run: (args, stdin) => shoal(args, { SHOAL_HOST: `unix://${d.socket}` }, stdin) };
}

test('no daemon on the socket: one line naming the socket, exit code of unavailable; -H wins over SHOAL_HOST', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-clustercli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sock = join(dir, 'none.sock');
  const r = await shoal(['node', 'ls'], { SHOAL_HOST: `unix://${sock}` });
  assert.equal(r.stderr, `Cannot connect to the Shoal daemon at unix://${sock}. Is shoald running?\n`);
  assert.equal(r.code, 7);
  assert.equal(r.stdout, '');
  const h = await shoal(['-H', `unix://${dir}/other.sock`, 'swarm', 'join-token', 'worker'], {
    SHOAL_HOST: `unix://${sock}`,
  });
  assert.equal(h.stderr, `Cannot connect to the Shoal daemon at unix://${dir}/other.sock. Is shoald running?\n`);
  const tcp = await shoal(['-H', 'tcp://198.18.0.1:2377', 'node', 'ls'], {});
  assert.match(tcp.stderr, /^shoal: invalid daemon host "tcp:\/\/198.18.0.1:2377": expected unix:\/\/\//);
  assert.equal(tcp.code, 2);
});

test('swarm init sends the flags and prints the join command; autolock prints the unlock key', async (t) => {
  const { d, run } = await withDaemon(t, false);
  const r = await run([
    'swarm',
    'init',
    '--advertise-addr',
    '198.18.9.1',
    '--listen-addr',
    '198.18.9.1',
    '--autolock',
    '--cert-expiry',
    '720h',
    '--default-addr-pool',
    '198.19.128.0/17',
    '--default-addr-pool-mask-length',
    '24',
    '--availability',
    'drain',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    {
      listen: d.initRequest?.ListenAddr,
      adv: d.initRequest?.AdvertiseAddr,
      lock: d.initRequest?.AutoLockManagers,
      pool: d.initRequest?.DefaultAddrPool,
      size: d.initRequest?.SubnetSize,
      avail: d.initRequest?.Availability,
      expiry: d.initRequest?.Spec?.CAConfig?.NodeCertExpiry,
    },
    {
      listen: '198.18.9.1:2377',
      adv: '198.18.9.1',
      lock: true,
      pool: ['198.19.128.0/17'],
      size: 24,
      avail: 'drain',
      expiry: 720 * 3600 * 1e9,
    },
  );
  assert.match(r.stdout, /^Swarm initialized: current node \(n1a+\) is now a manager\.\n/);
  assert.ok(
    r.stdout.includes(
      'To add a worker to this swarm, run the following command:\n\n    shoal swarm join --token SWMTKN-1-digest-worker1 198.18.9.1:2377\n',
    ),
    r.stdout,
  );
  assert.ok(r.stdout.includes("run 'shoal swarm join-token manager'"));
  assert.ok(r.stdout.includes('    SWMKEY-1-unlockkey1\n'));

  // Twice: the daemon's refusal, as docker prints it, with the exit code of its kind.
  const again = await run(['swarm', 'init']);
  assert.equal(again.stderr, 'Error response from daemon: This node is already part of a swarm.\n');
  assert.equal(again.code, 5);
});

test('bad input to swarm commands: one line, no call to the daemon', async (t) => {
  const { d, run } = await withDaemon(t, true);
  const cases: [string[], RegExp][] = [
    [['swarm', 'init', '--listen-addr', '198.18.9.1:99999'], /^shoal: invalid --listen-addr "198.18.9.1:99999": port/],
    [['swarm', 'init', '--advertise-addr', 'bad host!'], /^shoal: invalid --advertise-addr "bad host!"/],
    [['swarm', 'init', '--default-addr-pool', '198.19.1.0/16'], /host bits are set \(the network is 198.19.0.0\/16\)/],
    [
      ['swarm', 'init', '--default-addr-pool', '198.19.0.0/16', '--default-addr-pool-mask-length', '8'],
      /larger subnets/,
    ],
    [['swarm', 'init', '--availability', 'sleepy'], /^shoal: invalid --availability "sleepy"/],
    [['swarm', 'init', '--cert-expiry', '10m'], /^shoal: invalid --cert-expiry "10m": at least 1h/],
    [['swarm', 'join', '--token', 'SWMTKN-1-a-b', '198.18.9.1:0'], /port "0" is not a number from 1 to 65535/],
    [['swarm', 'join', '--token', 'nope', '198.18.9.1'], /^shoal: invalid join token "nope"/],
    [
      ['swarm', 'join', '198.18.9.1'],
      /^shoal: required option '--token <token>' not specified\nSee 'shoal swarm join --help'\.\n$/,
    ],
    [['swarm', 'join-token', 'admin'], /^shoal: unknown role "admin": expected worker or manager/],
    [
      ['swarm', 'join-token'],
      /^shoal: missing required argument 'worker\|manager'\nSee 'shoal swarm join-token --help'\.\n$/,
    ],
    [['swarm', 'update', '--autolock', 'maybe'], /^shoal: invalid --autolock "maybe": expected true or false/],
    [['swarm', 'init', '--bogus'], /^shoal: unknown flag: --bogus\nSee 'shoal swarm init --help'\.\n$/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length <= 2, true, r.stderr);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
  assert.deepEqual(d.writes(), []);
});

test('join-token: -q prints the token, --rotate replaces it; join, leave, unlock, unlock-key, ca', async (t) => {
  const { d, run } = await withDaemon(t, true);
  assert.equal((await run(['swarm', 'join-token', '-q', 'worker'])).stdout, 'SWMTKN-1-digest-worker1\n');
  const m = await run(['swarm', 'join-token', 'manager']);
  assert.equal(
    m.stdout,
    'To add a manager to this swarm, run the following command:\n\n    shoal swarm join --token SWMTKN-1-digest-manager1 198.18.9.1:2377\n\n',
  );
  const rot = await run(['swarm', 'join-token', '--rotate', 'worker']);
  assert.match(
    rot.stdout,
    /^Successfully rotated worker join token\.\n\n.*SWMTKN-1-digest-worker2 198\.18\.9\.1:2377/s,
  );
  assert.equal(d.cluster?.JoinTokens?.Manager, 'SWMTKN-1-digest-manager1');

  const j = await run(['swarm', 'join', '--token', 'SWMTKN-1-digest-worker1', '198.18.9.2']);
  assert.equal(j.stdout, 'This node joined a swarm as a manager.\n', j.stderr);
  assert.deepEqual(d.joinRequest?.RemoteAddrs, ['198.18.9.2:2377']);
  const bad = await run(['swarm', 'join', '--token', 'SWMTKN-1-digest-wrong', '198.18.9.2:2377']);
  assert.equal(bad.stderr, 'Error response from daemon: invalid join token\n');
  assert.equal(bad.code, 2);

  const leave = await run(['swarm', 'leave']);
  assert.match(leave.stderr, /^Error response from daemon: You are attempting to leave .* Use --force/);
  assert.equal(leave.code, 5);
  assert.equal((await run(['swarm', 'leave', '--force'])).stdout, 'Node left the swarm.\n');

  const noKey = await run(['swarm', 'unlock-key']);
  assert.equal(noKey.stderr, 'shoal: no unlock key is set (autolock is off)\n');
  const upd = await run(['swarm', 'update', '--autolock=true']);
  assert.match(upd.stdout, /^Swarm updated\.\n.*SWMKEY-1-unlockkey1/s, upd.stderr);
  assert.equal((await run(['swarm', 'unlock-key', '-q'])).stdout, 'SWMKEY-1-unlockkey1\n');
  const rk = await run(['swarm', 'unlock-key', '--rotate', '-q']);
  assert.equal(rk.stdout, 'SWMKEY-1-unlockkey2\n');
  assert.equal((await run(['swarm', 'unlock'], 'SWMKEY-1-unlockkey2\n')).code, 0);
  assert.ok(d.calls.includes('Unlock SWMKEY-1-unlockkey2'));
  const wrong = await run(['swarm', 'unlock'], 'SWMKEY-1-nope\n');
  assert.equal(wrong.stderr, 'Error response from daemon: invalid key\n');

  assert.equal((await run(['swarm', 'ca'])).stdout, PEM);
  const caRot = await run(['swarm', 'ca', '--rotate']);
  assert.match(caRot.stderr, /^shoal: swarm ca --rotate is not supported yet/);
  assert.notEqual(caRot.code, 0);
});

test('node ls: docker columns with * for self, sorted by hostname, -q, --filter, --format', async (t) => {
  const { run } = await withDaemon(t, true);
  const r = await run(['node', 'ls']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION$/);
  assert.equal(lines.length, 6);
  assert.match(lines[1] ?? '', /^n1a+ \*\s+h1\s+Ready\s+Active\s+Leader\s+0\.1\.0$/);
  assert.match(lines[2] ?? '', /^n2b+\s+h2\s+Ready\s+Active\s+Reachable\s+0\.1\.0$/);
  assert.match(lines[4] ?? '', /^n4d+\s+h4\s+Ready\s+Active\s+0\.1\.0$/);

  const q = await run(['node', 'ls', '-q', '--filter', 'role=manager']);
  assert.deepEqual(q.stdout.trim().split('\n'), [
    'n1aaaaaaaaaaaaaaaaaaaaaaa',
    'n2bbbbbbbbbbbbbbbbbbbbbbb',
    'n3ccccccccccccccccccccccc',
  ]);
  const lbl = await run(['node', 'ls', '--filter', 'label=zone=b', '--format', '{{.Hostname}}']);
  assert.equal(lbl.stdout, 'h2\n');
  const idf = await run(['node', 'ls', '-f', 'id=n4', '-f', 'id=n5', '--format', '{{.ID}}\t{{.Hostname}}']);
  assert.equal(idf.stdout, 'n4ddddddddddddddddddddddd\th4\nn5eeeeeeeeeeeeeeeeeeeeeee\th5\n');
  const nm = await run(['node', 'ls', '--filter', 'name=h3', '--format', 'json']);
  assert.deepEqual(JSON.parse(nm.stdout), {
    ID: 'n3ccccccccccccccccccccccc',
    Self: false,
    Hostname: 'h3',
    Status: 'Ready',
    Availability: 'Active',
    ManagerStatus: 'Reachable',
    EngineVersion: '0.1.0',
    TLSStatus: 'Unknown',
  });
  const tbl = await run(['node', 'ls', '--format', 'table {{.Hostname}}\t{{.ManagerStatus}}', '-f', 'role=worker']);
  assert.match(tbl.stdout, /^HOSTNAME\s+MANAGER STATUS\nh4\s*\nh5\s*\n$/);
  const badf = await run(['node', 'ls', '--filter', 'colour=red']);
  assert.equal(badf.stderr, "shoal: invalid filter 'colour'\n");
  const badt = await run(['node', 'ls', '--format', '{{.ID']);
  assert.match(badt.stderr, /^shoal: template: /);
  assert.notEqual(badt.code, 0);
});

test('node promote, demote, update and rm change the cluster; bad input and unknown nodes change nothing', async (t) => {
  const { d, run } = await withDaemon(t, true);
  const role = (id: string): string | undefined => d.nodes.get(id)?.Spec?.Role;

  const p = await run(['node', 'promote', 'h4']);
  assert.equal(p.stdout, 'Node h4 promoted to a manager in the swarm.\n', p.stderr);
  assert.equal(role('n4ddddddddddddddddddddddd'), 'manager');
  assert.equal((await run(['node', 'promote', 'h4'])).stdout, 'Node h4 is already a manager.\n');
  const dm = await run(['node', 'demote', 'n2b', 'h4']);
  assert.equal(dm.stdout, 'Manager n2b demoted in the swarm.\nManager h4 demoted in the swarm.\n');
  assert.equal(role('n2bbbbbbbbbbbbbbbbbbbbbbb'), 'worker');
  assert.equal(role('n4ddddddddddddddddddddddd'), 'worker');

  const u = await run([
    'node',
    'update',
    '--availability',
    'drain',
    '--label-add',
    'zone=c',
    '--label-add',
    'ssd',
    'h5',
  ]);
  assert.equal(u.stdout, 'h5\n', u.stderr);
  const h5 = d.nodes.get('n5eeeeeeeeeeeeeeeeeeeeeee');
  assert.deepEqual([h5?.Spec?.Availability, h5?.Spec?.Labels], ['drain', { zone: 'c', ssd: '' }]);
  await run(['node', 'update', '--label-rm', 'ssd', '--role', 'manager', 'h5']);
  assert.deepEqual(d.nodes.get('n5eeeeeeeeeeeeeeeeeeeeeee')?.Spec?.Labels, { zone: 'c' });
  assert.equal(role('n5eeeeeeeeeeeeeeeeeeeeeee'), 'manager');

  const before = d.writes().length;
  const snapshot = JSON.stringify([...d.nodes.entries()]);
  const bad: [string[], RegExp, number][] = [
    [['node', 'promote', 'nope'], /^Error response from daemon: node nope not found\n$/, 3],
    [['node', 'update', '--availability', 'sleepy', 'h5'], /^shoal: invalid --availability "sleepy"/, 2],
    [['node', 'update', '--role', 'boss', 'h5'], /^shoal: invalid --role "boss"/, 2],
    [['node', 'update', 'h5'], /^shoal: nothing to update/, 2],
    [['node', 'update', '--label-rm', 'missing', 'h5'], /^shoal: key missing doesn't exist in node's labels\n$/, 2],
    [['node', 'update', '--label-add', '=x', 'h5'], /^shoal: invalid --label-add "=x": no key/, 2],
    [['node', 'update', 'h4', 'h5'], /^shoal: too many arguments for 'update'/, 1],
    [
      ['node', 'rm', 'h4'],
      /^Error response from daemon: node n4d+ is not down and can't be removed \(use --force\)\n$/,
      5,
    ],
    [['node', 'inspect', 'nope'], /^Error response from daemon: node nope not found\n$/, 3],
    [['node', 'ls', '--no-such-flag'], /^shoal: unknown flag: --no-such-flag\nSee 'shoal node ls --help'\.\n$/, 1],
  ];
  for (const [args, re, code] of bad) {
    const r = await run(args);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.code, code, args.join(' '));
  }
  // Only the refused rm reached the daemon as a write; nothing changed.
  assert.deepEqual(d.writes().slice(before), ['RemoveNode']);
  assert.equal(JSON.stringify([...d.nodes.entries()]), snapshot);

  const rmf = await run(['node', 'rm', '--force', 'h4']);
  assert.equal(rmf.stdout, 'h4\n');
  assert.equal(d.nodes.has('n4ddddddddddddddddddddddd'), false);
});

test('node inspect prints Docker JSON (self resolves to the local node), --format, --pretty; node ps', async (t) => {
  const { run } = await withDaemon(t, true);
  const r = await run(['node', 'inspect', 'self', 'h2']);
  const objs = JSON.parse(r.stdout) as { ID: string; Description: { Hostname: string } }[];
  assert.deepEqual(
    objs.map((o) => [o.ID, o.Description.Hostname]),
    [
      ['n1aaaaaaaaaaaaaaaaaaaaaaa', 'h1'],
      ['n2bbbbbbbbbbbbbbbbbbbbbbb', 'h2'],
    ],
  );
  assert.equal(
    (await run(['node', 'inspect', '-f', '{{.Spec.Role}} {{.Status.State}}', 'h4'])).stdout,
    'worker ready\n',
  );
  const pr = await run(['node', 'inspect', '--pretty', 'h1']);
  assert.match(pr.stdout, /^ID:\s+n1a+\n.*Hostname:\s+h1\n.* Leader:\s+Yes\n/s);
  const ps = await run(['node', 'ps', 'h4']);
  assert.match(ps.stdout, /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS\n$/);
  assert.equal(ps.code, 0);
});
