/**
 * shoald as a real process: temp data root, a unique socket, a loopback cluster port; driven
 * through the unix socket with api's generated clients.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unary } from '@shoal/api';
import { hasCode } from '@shoal/common';
import { ShoaldProcess, controlClient, freePort, swarmClient, TEST_ADDR_POOL } from './test-util.js';

const procs: ShoaldProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'shoald-test-'));
  dirs.push(d);
  return d;
}

function shoald(args: readonly string[]): ShoaldProcess {
  const p = new ShoaldProcess(args);
  procs.push(p);
  return p;
}

async function node(
  dir: string,
  port: number,
  extra: readonly string[] = [],
): Promise<{ p: ShoaldProcess; socket: string }> {
  const socket = join(dir, 'shoal.sock');
  const p = shoald([
    '--data-root',
    join(dir, 'data'),
    '--run-root',
    join(dir, 'run'),
    '--socket',
    socket,
    '--listen-addr',
    `127.0.0.1:${port}`,
    ...extra,
  ]);
  await p.ready();
  return { p, socket };
}

async function rejects(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(
      hasCode(err, code),
      `expected ${code}, got ${(err as { code?: string }).code}: ${(err as Error).message}`,
    );
    if (re) assert.match((err as Error).message, re);
    return true;
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('shoald process', () => {
  it('refuses bad flags and configuration files with one clear line and exit code 2', async () => {
    const dir = await tempDir();
    const cases: { args: string[]; file?: string; expect: RegExp }[] = [
      { args: ['--bogus', 'x'], expect: /unknown flag --bogus/ },
      { args: ['--listen-addr', 'nonsense'], expect: /listen address: "nonsense" is not a HOST:PORT address/ },
      { args: ['--listen-addr', '127.0.0.1:99999'], expect: /port in "127.0.0.1:99999" is not 1-65535/ },
      { args: ['--log-level', 'loud'], expect: /log level "loud" is not one of/ },
      { args: ['--data-root'], expect: /flag --data-root needs a value/ },
      { args: [], file: '{"log-level": "info", "debugg": true}', expect: /unknown key "debugg"/ },
      {
        args: [],
        file: '{"insecure-registries": "r:5000"}',
        expect: /"insecure-registries": expected an array of strings/,
      },
      {
        args: [],
        file: '{"default-address-pools": [{"base": "198.18.0.0/33", "size": 24}]}',
        expect: /is not an IPv4 CIDR/,
      },
      { args: [], file: '{not json', expect: /is not valid JSON/ },
      { args: ['--gwbridge-subnet', '198.19.255.0'], expect: /"198.19.255.0" is not an IPv4 CIDR with a prefix/ },
      { args: [], file: '{"gwbridge-subnet": "198.19.300.0/24"}', expect: /"gwbridge-subnet": .* is not an IPv4 CIDR/ },
    ];
    for (const [i, c] of cases.entries()) {
      const args = [...c.args, '--data-root', join(dir, `d${i}`), '--socket', join(dir, `s${i}.sock`)];
      if (c.file !== undefined) {
        const f = join(dir, `daemon${i}.json`);
        await writeFile(f, c.file);
        args.push('--config', f);
      }
      // a flag without value must stay last
      const p = shoald(c.args.length === 1 ? [...args.slice(1), c.args[0]!] : args);
      const { code } = await p.exited;
      assert.equal(code, 2, `exit code for ${JSON.stringify(c)}; stderr: ${p.stderr}`);
      const lines = p.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line for ${JSON.stringify(c)}: ${p.stderr}`);
      assert.match(lines[0]!, /^shoald: /);
      assert.match(lines[0]!, c.expect);
    }
    const missing = shoald([
      '--config',
      join(dir, 'nope.json'),
      '--data-root',
      join(dir, 'dm'),
      '--socket',
      join(dir, 'm.sock'),
    ]);
    assert.equal((await missing.exited).code, 2);
    assert.match(missing.stderr, /cannot read configuration file .*nope\.json/);
  });

  it('inits, serves Info and Control on the socket, keeps identity and state across a restart, reloads on SIGHUP', async () => {
    const dir = await tempDir();
    const port = await freePort();
    const config = join(dir, 'daemon.json');
    await writeFile(config, JSON.stringify({ 'log-level': 'info', 'insecure-registries': ['198.18.0.1:5000'] }));
    let { p, socket } = await node(dir, port, ['--config', config]);
    assert.equal((await stat(socket)).mode & 0o777, 0o600, 'socket is root-only');
    const swarm = swarmClient(socket);
    const control = controlClient(socket);
    try {
      const before = await unary(swarm.info.bind(swarm), {});
      assert.equal(before.LocalNodeState, 'inactive');
      assert.equal(before.ControlAvailable, false);
      await rejects(unary(control.listNodes.bind(control), {}), 'DAEMON_NOT_A_MANAGER', /not a swarm manager/);
      await rejects(unary(swarm.leave.bind(swarm), {}), 'DAEMON_NOT_IN_SWARM');
      await rejects(
        unary(swarm.init.bind(swarm), { ListenAddr: '0.0.0.0:1', ...TEST_ADDR_POOL }),
        'DAEMON_NO_ADVERTISE_ADDR',
        /--advertise-addr/,
      );

      const init = await unary(swarm.init.bind(swarm), { ...TEST_ADDR_POOL });
      assert.match(init.NodeID ?? '', /^[0-9a-z]{25}$/);
      assert.equal(init.UnlockKey, '');
      const info = await unary(swarm.info.bind(swarm), {});
      assert.equal(info.NodeID, init.NodeID);
      assert.equal(info.LocalNodeState, 'active');
      assert.equal(info.ControlAvailable, true);
      assert.equal(info.NodeAddr, '127.0.0.1');
      assert.deepEqual(info.RemoteManagers, [{ NodeID: init.NodeID, Addr: `127.0.0.1:${port}` }]);
      assert.ok(await portOpen(port), 'the cluster port listens after init');
      // Control through the socket: this manager leads its one-manager cluster
      const nodes = (await unary(control.listNodes.bind(control), {})).Nodes ?? [];
      assert.equal(nodes.length, 1);
      assert.equal(nodes[0]!.ID, init.NodeID);
      assert.equal(nodes[0]!.Spec?.Role, 'manager');
      assert.equal(nodes[0]!.ManagerStatus?.Leader, true);
      const cluster = (await unary(control.getCluster.bind(control), {})).Cluster;
      assert.match(cluster?.JoinTokens?.Worker ?? '', /^SWMTKN-1-/);
      // swarm init makes the ingress network, from the pool it was given
      assert.deepEqual(cluster?.DefaultAddrPool, TEST_ADDR_POOL.DefaultAddrPool);
      const networks = (await unary(control.listNetworks.bind(control), {})).Networks ?? [];
      assert.deepEqual(
        networks.map((n) => [n.Spec?.Name, n.Spec?.Ingress, n.IPAMOptions?.Configs?.[0]?.Subnet]),
        [['ingress', true, '198.19.128.0/24']],
      );
      const counted = await unary(swarm.info.bind(swarm), {});
      assert.equal(counted.Nodes, 1);
      assert.equal(counted.Managers, 1);
      assert.equal(counted.Cluster?.ID, cluster?.ID);
      await rejects(
        unary(swarm.init.bind(swarm), { ...TEST_ADDR_POOL }),
        'DAEMON_ALREADY_IN_SWARM',
        /already part of a swarm/,
      );

      const swarmDir = join(dir, 'data', 'swarm');
      assert.equal((await stat(join(swarmDir, 'certificates'))).mode & 0o777, 0o700);
      assert.equal((await stat(join(swarmDir, 'certificates', 'node.key'))).mode & 0o777, 0o600);
      assert.equal((await stat(join(swarmDir, 'state.json'))).mode & 0o777, 0o600);
      const state = JSON.parse(await readFile(join(swarmDir, 'state.json'), 'utf8')) as {
        nodeId: string;
        role: string;
      };
      assert.equal(state.nodeId, init.NodeID);
      assert.equal(state.role, 'manager');
      assert.ok(
        (await readdir(join(swarmDir, 'raft', 'wal'))).some((f) => f.endsWith('.wal')),
        'raft WAL on disk',
      );

      // SIGHUP: log level and insecure registries change live; address pools need a restart
      await writeFile(
        config,
        JSON.stringify({
          'log-level': 'debug',
          'insecure-registries': ['198.18.0.1:5000', '198.18.0.2:5000'],
          'default-address-pools': [{ base: '198.19.0.0/16', size: 24 }],
        }),
      );
      p.proc.kill('SIGHUP');
      const reloaded = await p.waitLog((l) => l.msg === 'configuration reloaded');
      assert.deepEqual(reloaded['changed'], ['logLevel', 'insecureRegistries']);
      assert.deepEqual(reloaded['insecureRegistries'], ['198.18.0.1:5000', '198.18.0.2:5000']);
      assert.deepEqual(reloaded['needRestart'], ['defaultAddressPools']);
      // a broken file on SIGHUP keeps the daemon and its settings
      await writeFile(config, '{"log-level": 7}');
      p.proc.kill('SIGHUP');
      await p.waitLog((l) => l.msg === 'configuration reload failed: keeping the current settings');
      assert.equal((await unary(swarm.info.bind(swarm), {})).LocalNodeState, 'active');
      await writeFile(config, JSON.stringify({ 'log-level': 'debug' }));

      // SIGTERM: clean stop, socket removed; restart keeps node ID and role
      const stopped = await p.stop('SIGTERM');
      assert.equal(stopped.code, 0, p.stderr);
      await assert.rejects(stat(socket), /ENOENT/);
      swarm.close();
      ({ p, socket } = await node(dir, port, ['--config', config]));
      const swarm2 = swarmClient(socket);
      try {
        const again = await unary(swarm2.info.bind(swarm2), {});
        assert.equal(again.NodeID, init.NodeID, 'same node ID after restart');
        assert.equal(again.LocalNodeState, 'active');
        assert.equal(again.ControlAvailable, true);
        // state kept: the cluster and node objects came back from the Raft WAL/snapshot
        const control2 = controlClient(socket);
        try {
          const nodesAfter = (await unary(control2.listNodes.bind(control2), {})).Nodes ?? [];
          assert.deepEqual(
            nodesAfter.map((n) => n.ID),
            [init.NodeID],
          );
          assert.equal((await unary(control2.getCluster.bind(control2), {})).Cluster?.ID, cluster?.ID);
        } finally {
          control2.close();
        }
        await rejects(
          unary(swarm2.leave.bind(swarm2), {}),
          'DAEMON_LAST_MANAGER',
          /Removing the last manager erases all current state/,
        );
        await unary(swarm2.leave.bind(swarm2), { Force: true });
        assert.equal((await unary(swarm2.info.bind(swarm2), {})).LocalNodeState, 'inactive');
        await assert.rejects(stat(swarmDir), /ENOENT/);
      } finally {
        swarm2.close();
      }
    } finally {
      swarm.close();
      control.close();
      await p.stop();
    }
  });

  it('autolock: a restarted manager is locked and serves nothing until the right unlock key is given', async () => {
    const dir = await tempDir();
    const port = await freePort();
    let { p, socket } = await node(dir, port);
    let swarm = swarmClient(socket);
    const init = await unary(swarm.init.bind(swarm), { AutoLockManagers: true, ...TEST_ADDR_POOL });
    assert.match(init.UnlockKey ?? '', /^SWMKEY-1-/);
    const keyFile = await readFile(join(dir, 'data', 'swarm', 'certificates', 'node.key'), 'utf8');
    assert.match(keyFile, /BEGIN SHOAL ENCRYPTED PRIVATE KEY/);
    assert.doesNotMatch(keyFile, /BEGIN PRIVATE KEY/);
    // the WAL holds the cluster object (its ID is a unique probe) only sealed
    const clusterId = (
      JSON.parse(await readFile(join(dir, 'data', 'swarm', 'state.json'), 'utf8')) as { clusterId: string }
    ).clusterId;
    const ctl = controlClient(socket);
    assert.equal(
      (await unary(ctl.getCluster.bind(ctl), {})).Cluster?.ID,
      clusterId,
      'the cluster object is in the store',
    );
    ctl.close();
    for (const sub of ['wal', 'snap']) {
      for (const f of await readdir(join(dir, 'data', 'swarm', 'raft', sub)).catch(() => [] as string[])) {
        const bytes = await readFile(join(dir, 'data', 'swarm', 'raft', sub, f));
        assert.equal(bytes.includes(Buffer.from(clusterId)), false, `${sub}/${f} holds no plaintext cluster ID`);
      }
    }
    swarm.close();
    assert.equal((await p.stop()).code, 0);

    ({ p, socket } = await node(dir, port));
    swarm = swarmClient(socket);
    const control = controlClient(socket);
    try {
      const locked = await unary(swarm.info.bind(swarm), {});
      assert.equal(locked.LocalNodeState, 'locked');
      assert.equal(locked.NodeID, init.NodeID);
      assert.equal(await portOpen(port), false, 'a locked manager does not open the cluster port');
      await rejects(unary(control.listNodes.bind(control), {}), 'DAEMON_LOCKED', /swarm unlock/);
      await rejects(unary(swarm.init.bind(swarm), { ...TEST_ADDR_POOL }), 'DAEMON_LOCKED');
      await rejects(
        unary(swarm.unlock.bind(swarm), { UnlockKey: 'SWMKEY-1-' + Buffer.alloc(32, 7).toString('base64') }),
        'CA_WRONG_UNLOCK_KEY',
      );
      await rejects(unary(swarm.unlock.bind(swarm), { UnlockKey: 'nope' }), 'CA_INVALID_UNLOCK_KEY');
      assert.equal((await unary(swarm.info.bind(swarm), {})).LocalNodeState, 'locked');
      await unary(swarm.unlock.bind(swarm), { UnlockKey: init.UnlockKey ?? '' });
      const open = await unary(swarm.info.bind(swarm), {});
      assert.equal(open.LocalNodeState, 'active');
      assert.ok(await portOpen(port), 'serves after unlock');
      await rejects(unary(swarm.unlock.bind(swarm), { UnlockKey: init.UnlockKey ?? '' }), 'DAEMON_NOT_LOCKED');
    } finally {
      swarm.close();
      control.close();
      await p.stop();
    }
  });
});
