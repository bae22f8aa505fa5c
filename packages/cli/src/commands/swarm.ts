/**
 * `shoal swarm init|join|join-token|leave|unlock|unlock-key|update|ca`: the local daemon's
 * membership (Swarm service) and the cluster's settings (Control GetCluster/UpdateCluster), with
 * what docker prints. Every flag value is checked before the first call.
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { Cluster, ClusterSpec } from '@shoal/api';
import { InvalidArgumentError, ShoalError } from '@shoal/common';
import { daemonAction } from '../daemon/action.js';
import type { DaemonClient } from '../daemon/client.js';
import {
  parseAddrPools,
  parseAdvertiseAddr,
  parseAvailability,
  parseListenAddr,
  parseRemoteAddr,
} from '../daemon/addr.js';
import { parseDuration } from './container.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** A failure of the CLI's own checks against the daemon's answers ("This node is not a manager"). */
export class SwarmStateError extends ShoalError {
  constructor(message: string) {
    super('CLI_SWARM_STATE', message, { kind: 'failed-precondition' });
  }
}

export class NotSupportedError extends ShoalError {
  constructor(message: string) {
    super('CLI_NOT_SUPPORTED', message, { kind: 'failed-precondition' });
  }
}

const NS_PER_MS = 1_000_000;

/** `--cert-expiry 2160h`: a duration of at least one hour, in nanoseconds. */
export function parseCertExpiry(v: string): number {
  const ms = parseDuration(v, '--cert-expiry');
  if (ms < 3_600_000) throw new InvalidArgumentError(`invalid --cert-expiry ${JSON.stringify(v)}: at least 1h`);
  return ms * NS_PER_MS;
}

async function getCluster(c: DaemonClient): Promise<Cluster> {
  const res = await c.control.getCluster({ ClusterID: '' });
  if (!res.Cluster) throw new SwarmStateError('the daemon returned no cluster');
  return res.Cluster;
}

/** The address joiners reach this manager at, as docker prints it in join commands. */
async function managerAddr(c: DaemonClient): Promise<string> {
  const info = await c.swarm.info({});
  const self = info.RemoteManagers?.find((p) => p.NodeID === info.NodeID);
  if (self?.Addr) return self.Addr;
  if (info.NodeAddr) return parseRemoteAddr(info.NodeAddr);
  throw new SwarmStateError('this node has no advertised address');
}

function joinText(role: string, token: string, addr: string): string {
  return `To add a ${role} to this swarm, run the following command:\n\n    shoal swarm join --token ${token} ${addr}\n\n`;
}

function unlockText(key: string): string {
  return (
    'To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\n' +
    'command and provide the following key:\n\n' +
    `    ${key}\n\n` +
    'Remember to store this key in a password manager, since without it you\n' +
    'will not be able to restart the manager.\n'
  );
}

function joinRole(v: string): 'worker' | 'manager' {
  if (v !== 'worker' && v !== 'manager')
    throw new InvalidArgumentError(`unknown role ${JSON.stringify(v)}: expected worker or manager`);
  return v;
}

/** Reads the unlock key: the first line of stdin (piped), or a prompt on a terminal. */
async function readUnlockKey(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Enter unlock key: ');
  const rl = createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    rl.close();
    return line.trim();
  }
  return '';
}

interface UpdateFlags {
  autolock?: boolean | string;
  certExpiry?: string;
  taskHistoryLimit?: string;
  dispatcherHeartbeat?: string;
  snapshotInterval?: string;
}

function parseBool(flag: string, v: boolean | string | undefined): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidArgumentError(`invalid ${flag} ${JSON.stringify(v)}: expected true or false`);
}

function nonNegativeInt(flag: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`invalid ${flag} ${JSON.stringify(v)}: expected a whole number`);
  return Number(v);
}

/** The ClusterSpec changes of `swarm update` (checked before any call). */
export function specChanges(o: UpdateFlags): (spec: ClusterSpec) => ClusterSpec {
  const autolock = parseBool('--autolock', o.autolock);
  const certExpiry = o.certExpiry === undefined ? undefined : parseCertExpiry(o.certExpiry);
  const history =
    o.taskHistoryLimit === undefined ? undefined : nonNegativeInt('--task-history-limit', o.taskHistoryLimit);
  const heartbeat =
    o.dispatcherHeartbeat === undefined
      ? undefined
      : parseDuration(o.dispatcherHeartbeat, '--dispatcher-heartbeat') * NS_PER_MS;
  const snapshot =
    o.snapshotInterval === undefined ? undefined : nonNegativeInt('--snapshot-interval', o.snapshotInterval);
  return (spec) => ({
    ...spec,
    ...(autolock === undefined ? {} : { EncryptionConfig: { ...spec.EncryptionConfig, AutoLockManagers: autolock } }),
    ...(certExpiry === undefined ? {} : { CAConfig: { ...spec.CAConfig, NodeCertExpiry: certExpiry } }),
    ...(history === undefined ? {} : { Orchestration: { ...spec.Orchestration, TaskHistoryRetentionLimit: history } }),
    ...(heartbeat === undefined ? {} : { Dispatcher: { ...spec.Dispatcher, HeartbeatPeriod: heartbeat } }),
    ...(snapshot === undefined ? {} : { Raft: { ...spec.Raft, SnapshotInterval: snapshot } }),
  });
}

export function registerSwarm(program: Command): void {
  if (!program.options.some((o) => o.long === '--host'))
    program.option(
      '-H, --host <unix:///path>',
      'daemon socket to connect to (default $SHOAL_HOST or /run/shoal/shoal.sock)',
    );
  const swarm = program.command('swarm').description('Manage the swarm (the cluster this node belongs to)');

  swarm
    .command('init')
    .description('Initialize a swarm: this node becomes its first manager')
    .option('--advertise-addr <addr[:port]>', 'address other nodes reach this one at')
    .option('--listen-addr <addr[:port]>', 'listen address (default 0.0.0.0:2377)')
    .option('--autolock', 'lock managers at restart until `swarm unlock` (encrypts keys and the Raft log)')
    .option('--cert-expiry <duration>', 'validity of node certificates (default 2160h0m0s)')
    .option('--force-new-cluster', "make a new one-manager cluster from this manager's state")
    .option('--default-addr-pool <cidr>', 'overlay address pool (repeatable; default 10.0.0.0/8)', collect, [])
    .option('--default-addr-pool-mask-length <n>', 'subnet size taken from the pool (default 24)')
    .option('--availability <active|pause|drain>', 'availability of this node')
    .option('--task-history-limit <n>', 'task history retention limit')
    .action(
      daemonAction(
        async (
          c,
          o: {
            advertiseAddr?: string;
            listenAddr?: string;
            autolock?: boolean;
            certExpiry?: string;
            forceNewCluster?: boolean;
            defaultAddrPool: string[];
            defaultAddrPoolMaskLength?: string;
            availability?: string;
            taskHistoryLimit?: string;
          },
        ) => {
          const listen = o.listenAddr === undefined ? '' : parseListenAddr(o.listenAddr);
          const advertise = o.advertiseAddr === undefined ? '' : parseAdvertiseAddr(o.advertiseAddr);
          const pools = parseAddrPools(o.defaultAddrPool, o.defaultAddrPoolMaskLength);
          const availability = o.availability === undefined ? '' : parseAvailability(o.availability);
          const spec = specChanges({ certExpiry: o.certExpiry, taskHistoryLimit: o.taskHistoryLimit })({});
          const res = await c.swarm.init({
            ListenAddr: listen,
            AdvertiseAddr: advertise,
            ForceNewCluster: o.forceNewCluster === true,
            AutoLockManagers: o.autolock === true,
            Availability: availability,
            DefaultAddrPool: pools.pools,
            SubnetSize: pools.subnetSize ?? 0,
            Spec: spec,
          });
          process.stdout.write(`Swarm initialized: current node (${res.NodeID}) is now a manager.\n\n`);
          const cluster = await getCluster(c);
          process.stdout.write(joinText('worker', cluster.JoinTokens?.Worker ?? '', await managerAddr(c)));
          process.stdout.write(
            "To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.\n\n",
          );
          if (res.UnlockKey) process.stdout.write(unlockText(res.UnlockKey));
        },
      ),
    );

  swarm
    .command('join')
    .description('Join a swarm as a node and/or manager')
    .argument('<host:port>', 'a manager of the swarm')
    .requiredOption('--token <token>', 'token for entry into the swarm')
    .option('--advertise-addr <addr[:port]>', 'address other nodes reach this one at')
    .option('--listen-addr <addr[:port]>', 'listen address (default 0.0.0.0:2377)')
    .option('--availability <active|pause|drain>', 'availability of this node')
    .action(
      daemonAction(
        async (
          c,
          addr: string,
          o: { token: string; advertiseAddr?: string; listenAddr?: string; availability?: string },
        ) => {
          const remote = parseRemoteAddr(addr);
          if (!/^SWMTKN-1-[0-9a-z]+-[0-9a-z]+$/i.test(o.token))
            throw new InvalidArgumentError(
              `invalid join token ${JSON.stringify(o.token)}: expected SWMTKN-1-<digest>-<secret>`,
            );
          await c.swarm.join({
            RemoteAddrs: [remote],
            JoinToken: o.token,
            ListenAddr: o.listenAddr === undefined ? '' : parseListenAddr(o.listenAddr),
            AdvertiseAddr: o.advertiseAddr === undefined ? '' : parseAdvertiseAddr(o.advertiseAddr),
            Availability: o.availability === undefined ? '' : parseAvailability(o.availability),
          });
          const info = await c.swarm.info({});
          process.stdout.write(`This node joined a swarm as a ${info.ControlAvailable ? 'manager' : 'worker'}.\n`);
        },
      ),
    );

  swarm
    .command('join-token')
    .description('Manage join tokens')
    .argument('<worker|manager>', 'the role the token joins as')
    .option('-q, --quiet', 'only display the token')
    .option('--rotate', 'rotate the join token (the old one stops working)')
    .action(
      daemonAction(async (c, roleArg: string, o: { quiet?: boolean; rotate?: boolean }) => {
        const role = joinRole(roleArg);
        let cluster = await getCluster(c);
        if (o.rotate) {
          const res = await c.control.updateCluster({
            ClusterID: cluster.ID ?? '',
            ClusterVersion: cluster.Version,
            Spec: cluster.Spec,
            Rotation: { WorkerJoinToken: role === 'worker', ManagerJoinToken: role === 'manager' },
          });
          cluster = res.Cluster ?? (await getCluster(c));
          if (!o.quiet) process.stdout.write(`Successfully rotated ${role} join token.\n\n`);
        }
        const token = (role === 'worker' ? cluster.JoinTokens?.Worker : cluster.JoinTokens?.Manager) ?? '';
        if (o.quiet) process.stdout.write(`${token}\n`);
        else process.stdout.write(joinText(role, token, await managerAddr(c)));
      }),
    );

  swarm
    .command('leave')
    .description('Leave the swarm')
    .option('-f, --force', 'leave even if this is the last manager or the cluster loses quorum')
    .action(
      daemonAction(async (c, o: { force?: boolean }) => {
        await c.swarm.leave({ Force: o.force === true });
        process.stdout.write('Node left the swarm.\n');
      }),
    );

  swarm
    .command('unlock')
    .description('Unlock a locked manager (reads the unlock key from stdin or a prompt)')
    .action(
      daemonAction(async (c) => {
        const key = await readUnlockKey();
        if (key === '') throw new InvalidArgumentError('no unlock key given');
        await c.swarm.unlock({ UnlockKey: key });
      }),
    );

  swarm
    .command('unlock-key')
    .description('Manage the unlock key')
    .option('-q, --quiet', 'only display the key')
    .option('--rotate', 'rotate the unlock key')
    .action(
      daemonAction(async (c, o: { quiet?: boolean; rotate?: boolean }) => {
        if (o.rotate) {
          const cluster = await getCluster(c);
          if (!cluster.Spec?.EncryptionConfig?.AutoLockManagers)
            throw new SwarmStateError(
              'cannot rotate the unlock key: autolock is not enabled (use `shoal swarm update --autolock=true`)',
            );
          await c.control.updateCluster({
            ClusterID: cluster.ID ?? '',
            ClusterVersion: cluster.Version,
            Spec: cluster.Spec,
            Rotation: { ManagerUnlockKey: true },
          });
          if (!o.quiet) process.stdout.write('Successfully rotated manager unlock key.\n\n');
        }
        const { UnlockKey: key } = await c.control.getUnlockKey({});
        if (!key) throw new SwarmStateError('no unlock key is set (autolock is off)');
        process.stdout.write(o.quiet ? `${key}\n` : unlockText(key));
      }),
    );

  swarm
    .command('update')
    .description('Update the swarm')
    .option('--autolock [bool]', 'change the manager autolock setting (true|false)')
    .option('--cert-expiry <duration>', 'validity of node certificates')
    .option('--task-history-limit <n>', 'task history retention limit')
    .option('--dispatcher-heartbeat <duration>', 'dispatcher heartbeat period')
    .option('--snapshot-interval <n>', 'Raft log entries between snapshots')
    .action(
      daemonAction(async (c, o: UpdateFlags) => {
        const change = specChanges(o);
        const cluster = await getCluster(c);
        const before = cluster.Spec?.EncryptionConfig?.AutoLockManagers === true;
        const res = await c.control.updateCluster({
          ClusterID: cluster.ID ?? '',
          ClusterVersion: cluster.Version,
          Spec: change(cluster.Spec ?? {}),
        });
        process.stdout.write('Swarm updated.\n');
        const after = res.Cluster?.Spec?.EncryptionConfig?.AutoLockManagers ?? parseBool('--autolock', o.autolock);
        if (!before && after === true) {
          const { UnlockKey: key } = await c.control.getUnlockKey({});
          if (key) process.stdout.write(unlockText(key));
        }
      }),
    );

  swarm
    .command('ca')
    .description("Display the swarm's root CA certificate")
    .option('--rotate', 'rotate the root CA')
    .option('-q, --quiet', 'only print the certificate')
    .action(
      daemonAction(async (c, o: { rotate?: boolean }) => {
        if (o.rotate)
          throw new NotSupportedError('swarm ca --rotate is not supported yet: the root CA cannot be rotated');
        const cluster = await getCluster(c);
        const pem = cluster.TLSInfo?.TrustRoot ?? '';
        if (pem === '') throw new SwarmStateError('the cluster has no root CA certificate');
        process.stdout.write(pem.endsWith('\n') ? pem : `${pem}\n`);
      }),
    );
}
