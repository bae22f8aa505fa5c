/**
 * `shoal.Swarm` on the unix socket: init, join, leave, unlock and info for this node.
 * Messages follow Docker's where the CLI shows them.
 */
import { X509Certificate } from 'node:crypto';
import { CAClient, unary, unaryHandler, type SwarmServer, type SwarmInfo, type Peer, type Cluster } from '@shoal/api';
import {
  RootCA,
  UnlockKey,
  checkRootAgainstToken,
  createCsr,
  generateDek,
  generateNodeKey,
  identityOf,
  newClusterId,
  newNodeId,
  parseJoinToken,
} from '@shoal/ca';
import { sleep } from '@shoal/common';
import type { Daemon } from './daemon.js';
import { joinRaft } from './node-certificate.js';
import { bootstrapClientCredentials, joinerClientCredentials } from './credentials.js';
import { DaemonError, NodeLockedError, SwarmStateError } from './errors.js';
import { clusterChannelOptions } from './grpc-raft-transport.js';
import { parseHostPort } from './config.js';
import { removeSwarmState, writeNodeState } from './layout.js';
import { recoverStoreState } from './manager-runtime.js';
import { rename } from 'node:fs/promises';

const ALREADY_IN_SWARM =
  'This node is already part of a swarm. Use "shoal swarm leave" to leave this swarm and join another one.';
const NOT_IN_SWARM = 'This node is not part of a swarm';

function notLocked(d: Daemon): void {
  if (d.status === 'locked') throw new NodeLockedError();
}

export function swarmService(d: Daemon): SwarmServer {
  return {
    init: unaryHandler((req) =>
      d.exclusive(async () => {
        notLocked(d);
        if (req.ForceNewCluster && d.state) return forceNewCluster(d, req.AdvertiseAddr ?? '', req.ListenAddr ?? '');
        if (d.state) throw new SwarmStateError('DAEMON_ALREADY_IN_SWARM', ALREADY_IN_SWARM);
        const listenAddr = req.ListenAddr || d.settings.listenAddr;
        parseHostPort(listenAddr, 'listen address');
        const advertiseAddr = d.advertiseFor(listenAddr, req.AdvertiseAddr ?? '');
        const ext = req.Spec?.CAConfig;
        const root =
          ext?.SigningCACert && ext.SigningCACert !== ''
            ? RootCA.fromPem(ext.SigningCACert, ext.SigningCAKey || undefined)
            : await RootCA.create();
        if (!root.canSign) {
          throw new DaemonError(
            'DAEMON_EXTERNAL_CA_WITHOUT_KEY',
            'an external root CA needs its key to issue node certificates (--external-ca with a signing key)',
            'invalid-argument',
          );
        }
        const clusterId = newClusterId();
        const nodeId = newNodeId();
        const key = generateNodeKey();
        const { certPem } = await root.issue(await createCsr(key), { nodeId, role: 'manager', clusterId });
        const dek = generateDek();
        const unlock = req.AutoLockManagers ? UnlockKey.generate() : undefined;
        await d.keyStore.writeRoot(root.certPem);
        await d.keyStore.write(certPem, { key, dek }, unlock);
        d.unlockKey = unlock;
        d.state = {
          version: 1,
          nodeId,
          clusterId,
          role: 'manager',
          listenAddr,
          advertiseAddr,
          remoteManagers: [advertiseAddr],
          raftPeers: { [nodeId]: advertiseAddr },
          autolock: unlock !== undefined,
        };
        await writeNodeState(d.layout, d.state);
        d.identity = { nodeId, clusterId, role: 'manager', certPem, key, dek, rootPem: root.certPem };
        try {
          await d.startRole(true, { [nodeId]: advertiseAddr }, root);
          await waitLeader(d);
          await d.manager!.manager.bootstrapCluster({
            clusterId,
            advertiseAddr,
            nodeCertPem: certPem,
            description: d.description(),
            autolock: unlock !== undefined,
            ...(unlock ? { unlockKey: unlock } : {}),
            ...(req.Spec ? { spec: req.Spec } : {}),
            ...(req.DefaultAddrPool && req.DefaultAddrPool.length > 0 ? { defaultAddrPool: req.DefaultAddrPool } : {}),
            ...(req.SubnetSize ? { subnetSize: req.SubnetSize } : {}),
            // Docker's `swarm init` always makes the `ingress` network, from the cluster's pool.
            ingress: true,
          });
        } catch (err) {
          d.log.error({ err: (err as Error).message }, 'swarm init failed: removing the new state');
          await d.stopRole();
          await removeSwarmState(d.layout);
          d.state = undefined;
          d.identity = undefined;
          d.status = 'inactive';
          throw err;
        }
        d.log.info({ nodeId, clusterId, advertiseAddr }, 'swarm initialized');
        return { NodeID: nodeId, UnlockKey: unlock?.format() ?? '' };
      }),
    ),

    join: unaryHandler((req) =>
      d.exclusive(async () => {
        notLocked(d);
        if (d.state) throw new SwarmStateError('DAEMON_ALREADY_IN_SWARM', ALREADY_IN_SWARM);
        const token = req.JoinToken ?? '';
        parseJoinToken(token);
        const remotes = (req.RemoteAddrs ?? []).map((a) => {
          const { host, port } = parseHostPort(a, 'remote manager address', 2377);
          return `${host}:${port}`;
        });
        const remote = remotes[0];
        if (remote === undefined)
          throw new DaemonError(
            'DAEMON_NO_REMOTE',
            'join needs the address of a manager (HOST:PORT)',
            'invalid-argument',
          );
        const listenAddr = req.ListenAddr || d.settings.listenAddr;
        parseHostPort(listenAddr, 'listen address');
        const advertiseAddr = d.advertiseFor(listenAddr, req.AdvertiseAddr ?? '');
        const deadline = () => Date.now() + 20_000;

        // 1. the root CA, pinned by the token's digest
        const boot = new CAClient(remote, bootstrapClientCredentials(), clusterChannelOptions());
        let rootPem: string;
        try {
          const res = await unary(boot.getRootCaCertificate.bind(boot), {}, { deadline: deadline() });
          rootPem = checkRootAgainstToken(Buffer.from(res.Certificate ?? new Uint8Array()).toString('utf8'), token);
        } finally {
          boot.close();
        }
        // 2. a certificate for a new key, issued on the token
        const key = generateNodeKey();
        const ca = new CAClient(remote, joinerClientCredentials(rootPem), clusterChannelOptions());
        let certPem = '';
        try {
          const issued = await unary(
            ca.issueNodeCertificate.bind(ca),
            { CSR: Buffer.from(await createCsr(key)), Token: token, Availability: req.Availability || 'active' },
            { deadline: deadline() },
          );
          const nodeId = issued.NodeID ?? '';
          const until = Date.now() + 30_000;
          while (certPem === '') {
            const st = await unary(ca.nodeCertificateStatus.bind(ca), { NodeID: nodeId }, { deadline: deadline() });
            const c = st.Certificate;
            if (c?.State === 'issued' && c.Certificate && c.Certificate.length > 0)
              certPem = Buffer.from(c.Certificate).toString('utf8');
            else if (c?.State === 'failed')
              throw new DaemonError(
                'DAEMON_JOIN_REFUSED',
                `the manager refused the certificate: ${c.Err ?? ''}`,
                'permission-denied',
              );
            else if (Date.now() > until)
              throw new DaemonError(
                'DAEMON_JOIN_TIMEOUT',
                `no certificate issued by ${remote} within 30 s`,
                'unavailable',
                { retryable: true },
              );
            else await sleep(200);
          }
        } finally {
          ca.close();
        }
        const ident = identityOf(new X509Certificate(certPem));
        const dek = generateDek();
        await d.keyStore.writeRoot(rootPem);
        await d.keyStore.write(certPem, { key, dek });
        d.identity = {
          nodeId: ident.nodeId,
          clusterId: ident.clusterId,
          role: ident.role,
          certPem,
          key,
          dek,
          rootPem,
        };
        d.state = {
          version: 1,
          nodeId: ident.nodeId,
          clusterId: ident.clusterId,
          role: d.identity.role,
          listenAddr,
          advertiseAddr,
          remoteManagers: remotes,
          raftPeers: {},
          autolock: false,
        };
        try {
          await writeNodeState(d.layout, d.state);
          if (ident.role === 'manager') await joinRaft(d, remote);
          else await d.startRole(false);
        } catch (err) {
          await d.stopRole();
          await removeSwarmState(d.layout);
          d.state = undefined;
          d.identity = undefined;
          d.status = 'inactive';
          throw err;
        }
        d.log.info({ nodeId: ident.nodeId, role: ident.role, remote }, 'joined the swarm');
        return { NodeID: ident.nodeId };
      }),
    ),

    leave: unaryHandler((req) =>
      d.exclusive(async () => {
        if (!d.state) throw new SwarmStateError('DAEMON_NOT_IN_SWARM', NOT_IN_SWARM);
        if (d.manager && !req.Force) {
          const voters = d.manager.raft.status().confState.voters.length;
          if (voters <= 1) {
            throw new SwarmStateError(
              'DAEMON_LAST_MANAGER',
              'You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.',
            );
          }
          const reachable = Math.floor(voters / 2) + 1;
          if (voters - 1 < reachable) {
            throw new SwarmStateError(
              'DAEMON_LEAVE_BREAKS_QUORUM',
              `You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves ${voters - 1} managers out of ${voters}. Without a Raft quorum your swarm will be inaccessible. Use \`--force\` to suppress this message.`,
            );
          }
        }
        await d.stopRole();
        await removeSwarmState(d.layout);
        d.state = undefined;
        d.identity = undefined;
        d.status = 'inactive';
        d.log.info('left the swarm');
        return {};
      }),
    ),

    unlock: unaryHandler((req) =>
      d.exclusive(async () => {
        if (!d.state) throw new SwarmStateError('DAEMON_NOT_IN_SWARM', NOT_IN_SWARM);
        if (d.status !== 'locked') throw new SwarmStateError('DAEMON_NOT_LOCKED', 'Error: swarm is not locked');
        const key = UnlockKey.parse(req.UnlockKey ?? '');
        await d.resume(key);
        d.log.info('node unlocked');
        return {};
      }),
    ),

    info: unaryHandler(async () => info(d)),
    // `container run --network NAME` / `container rm`: this node's agent asks the leader (its
    // dispatcher session) and builds or removes the sandbox.
    attachNetwork: unaryHandler(async (req, _call, signal) => {
      const agent = attachingAgent(d);
      const r = await agent.attachNetwork(
        {
          target: req.Target ?? '',
          aliases: req.Aliases ?? [],
          containerName: req.ContainerName ?? '',
          ...(req.Sandbox ? { sandbox: req.Sandbox } : {}),
        },
        signal,
      );
      return {
        AttachmentID: r.attachmentId,
        NetnsPath: r.netnsPath,
        Addresses: r.addresses,
        DNS: r.dns,
        DNSSearch: r.dnsSearch,
        DNSOptions: r.dnsOptions,
      };
    }),
    detachNetwork: unaryHandler(async (req) => {
      const agent = attachingAgent(d);
      // `network disconnect NET CONTAINER` names the container and the network; `container rm` the attachment
      if (!req.AttachmentID && req.ContainerName) await agent.disconnectNetwork(req.ContainerName, req.Target ?? '');
      else await agent.detachNetwork(req.AttachmentID ?? '');
      return {};
    }),
    // `container inspect`: NetworkSettings.Networks of a container of this node
    containerNetworks: unaryHandler(async (req) => {
      await Promise.resolve(); // a refusal below is this call's rejection
      const agent = attachingAgent(d);
      return {
        Networks: agent.containerNetworks(req.ContainerName ?? '').map((n) => ({
          NetworkID: n.networkId,
          NetworkName: n.networkName,
          AttachmentID: n.attachmentId,
          Address: n.address,
          Aliases: n.aliases,
        })),
      };
    }),
  };
}

/** The node agent, for network attachments: the node must be in a swarm and unlocked. */
function attachingAgent(d: Daemon): NonNullable<Daemon['node']>['agent'] {
  notLocked(d);
  if (!d.state || !d.node) throw new SwarmStateError('DAEMON_NOT_IN_SWARM', NOT_IN_SWARM);
  return d.node.agent;
}

/**
 * `swarm init --force-new-cluster` on a manager of a cluster that lost quorum: the store as this
 * manager's Raft log has it becomes the first snapshot of a new one-manager Raft group (node ID,
 * certificates, cluster and objects kept); the old Raft directory is kept aside as raft.old-<time>.
 */
async function forceNewCluster(
  d: Daemon,
  advertise: string,
  listen: string,
): Promise<{ NodeID: string; UnlockKey: string }> {
  const state = d.state!;
  const id = d.identity!;
  if (id.role !== 'manager') {
    throw new SwarmStateError('DAEMON_NOT_A_MANAGER', 'force-new-cluster needs a manager: this node is a worker');
  }
  if (listen !== '' && listen !== state.listenAddr) {
    throw new DaemonError(
      'DAEMON_INVALID_REQUEST',
      `force-new-cluster keeps the listen address ${state.listenAddr}`,
      'invalid-argument',
    );
  }
  const advertiseAddr = advertise === '' ? state.advertiseAddr : d.advertiseFor(state.listenAddr, advertise);
  await d.stopRole();
  const sm = await recoverStoreState(d.layout.raft, id.nodeId, id.dek, d.log.child({ component: 'raft-recovery' }));
  await rename(d.layout.raft, `${d.layout.raft}.old-${Date.now()}`);
  d.state = { ...state, advertiseAddr, raftPeers: { [id.nodeId]: advertiseAddr }, remoteManagers: [advertiseAddr] };
  await writeNodeState(d.layout, d.state);
  await d.startRole(true, { [id.nodeId]: advertiseAddr }, undefined, sm);
  await waitLeader(d);
  d.log.warn({ nodeId: id.nodeId }, "forced a new one-manager cluster from this manager's state");
  return { NodeID: id.nodeId, UnlockKey: '' };
}

async function waitLeader(d: Daemon): Promise<void> {
  const until = Date.now() + 10_000;
  while (!d.manager?.raft.leaderInfo().isLeader) {
    if (Date.now() > until)
      throw new DaemonError(
        'DAEMON_NO_LEADER',
        'the new one-manager cluster elected no leader within 10 s',
        'unavailable',
      );
    await sleep(20);
  }
}

async function info(d: Daemon): Promise<SwarmInfo> {
  const s = d.state;
  const out: SwarmInfo = {
    NodeID: s?.nodeId ?? '',
    NodeAddr: s ? (s.advertiseAddr.replace(/:\d+$/, '') ?? '') : '',
    LocalNodeState: d.status,
    ControlAvailable: d.manager !== undefined,
    Error: d.lastError,
    RemoteManagers: [],
    Nodes: 0,
    Managers: 0,
    Warnings: [],
  };
  if (d.status === 'locked' || !s) return Promise.resolve(out);
  const peers: Peer[] = d.manager
    ? Object.entries(d.raftPeers()).map(([NodeID, Addr]) => ({ NodeID, Addr }))
    : s.remoteManagers.map((Addr) => ({ NodeID: '', Addr }));
  out.RemoteManagers = peers;
  if (d.manager) {
    const nodes = d.manager.store.list('node') as unknown as { Spec?: { Role?: string } }[];
    out.Nodes = nodes.length;
    out.Managers = nodes.filter((n) => n.Spec?.Role === 'manager').length;
    const cluster = d.manager.store.list('cluster')[0] as Cluster | undefined;
    if (cluster) out.Cluster = stripSecrets(cluster);
  }
  return Promise.resolve(out);
}

/** Info never carries the CA key or the unlock key. */
function stripSecrets(c: Cluster): Cluster {
  const copy = { ...c } as Cluster & Record<string, unknown>;
  delete copy['RootCA'];
  delete copy['UnlockKey'];
  return copy;
}
