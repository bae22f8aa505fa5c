/**
 * The node side of certificates: renewal before expiry (ca's CertRenewer: a random point between
 * 50 % and 80 % of the validity) and a forced renewal when the cluster wants another role for this
 * node (promote/demote): a CSR from the node's own key to a manager's CA service, authenticated
 * by the current certificate; the new certificate is installed live (TLS provider) and on disk,
 * then the role's runtime is switched.
 *
 * A role switch has several steps that can each fail (the CA unreachable, a certificate still
 * carrying the old role, the Raft join refused or timing out). `wantRole` keeps, per daemon, the
 * role the cluster last asked for and whether the leader counts this node as a Raft member, and
 * runs one loop that takes the missing steps again, with backoff, until the node's certificate,
 * runtime and Raft membership all match: a half-done switch converges without a restart.
 */
import { X509Certificate } from 'node:crypto';
import { CAClient, ControlClient, RaftMembershipClient, unary, type Node } from '@shoal/api';
import { CertRenewer, createCsr, type Validity } from '@shoal/ca';
import { Backoff, errorMessage, sleep, systemClock, type Logger } from '@shoal/common';
import type { Daemon } from './daemon.js';
import { DaemonError } from './errors.js';
import { clusterChannelOptions } from './grpc-raft-transport.js';
import { writeNodeState } from './layout.js';
import { rm } from 'node:fs/promises';

export function validityOf(certPem: string): Validity {
  const c = new X509Certificate(certPem);
  return { notBefore: new Date(c.validFrom), notAfter: new Date(c.validTo) };
}

/** The managers to try, this node's own first when it is one. */
export function managerAddresses(d: Daemon): string[] {
  const own = d.manager && d.state ? [d.state.advertiseAddr] : [];
  return [...new Set([...own, ...(d.state?.remoteManagers ?? []), ...Object.values(d.manager ? d.raftPeers() : {})])];
}

/** One renewal: CSR with the current key, issued by a manager, installed. Returns the new validity. */
export async function renewCertificate(d: Daemon, log: Logger): Promise<Validity> {
  const id = d.identity;
  if (!id) throw new DaemonError('DAEMON_NOT_IN_SWARM', 'this node is not part of a swarm', 'failed-precondition');
  let last: unknown;
  for (const addr of managerAddresses(d)) {
    const ca = new CAClient(addr, d.clientCredentials(), clusterChannelOptions());
    try {
      const deadline = Date.now() + 15_000;
      await unary(ca.issueNodeCertificate.bind(ca), { CSR: Buffer.from(await createCsr(id.key)) }, { deadline });
      const st = await unary(ca.nodeCertificateStatus.bind(ca), { NodeID: id.nodeId }, { deadline });
      const pem = Buffer.from(st.Certificate?.Certificate ?? new Uint8Array()).toString('utf8');
      if (st.Certificate?.State !== 'issued' || pem === '')
        throw new DaemonError('DAEMON_RENEW_PENDING', `no issued certificate from ${addr}`, 'unavailable', {
          retryable: true,
        });
      const root = Buffer.from(st.RootCABundle ?? new Uint8Array()).toString('utf8') || id.rootPem;
      await d.installCertificate(pem, root);
      log.info({ manager: addr, validTo: new X509Certificate(pem).validTo }, 'node certificate renewed');
      return validityOf(pem);
    } catch (err) {
      last = err;
      log.warn({ manager: addr, err: (err as Error).message }, 'certificate renewal failed on this manager');
    } finally {
      ca.close();
    }
  }
  throw last instanceof Error
    ? last
    : new DaemonError('DAEMON_RENEW_FAILED', 'no manager to renew the certificate with', 'unavailable', {
        retryable: true,
      });
}

export function startRenewer(d: Daemon, log: Logger): CertRenewer {
  const r = new CertRenewer({
    renew: () => renewCertificate(d, log),
    current: validityOf(d.identity!.certPem),
    clock: systemClock,
    logger: log,
  });
  r.start();
  return r;
}

/** What the cluster last said about this node's role, and the loop converging to it. */
interface RoleTarget {
  wanted: 'manager' | 'worker';
  /** The leader lists this node as a Raft member (its Node has a ManagerStatus). */
  member: boolean;
  running: boolean;
}

const targets = new WeakMap<Daemon, RoleTarget>();

/** Whether the node's certificate, runtime or Raft membership still differ from `t`. */
function roleDiffers(d: Daemon, t: RoleTarget): boolean {
  if (d.stopped || !d.identity || !d.state) return false;
  if (d.identity.role !== t.wanted) return true;
  if (t.wanted === 'worker') return d.manager !== undefined || d.state.role !== 'worker';
  return d.manager === undefined || !t.member;
}

/**
 * The cluster's view of this node arrived (a session message): remember the role it wants and
 * start converging to it if anything differs. Steps that fail are retried with backoff (0.5 s
 * to 5 s) until they succeed, the node leaves the swarm or the daemon stops.
 */
export function wantRole(d: Daemon, node: Node, log: Logger): void {
  const wanted = node.Spec?.Role;
  if (wanted !== 'manager' && wanted !== 'worker') return;
  let t = targets.get(d);
  if (t === undefined) targets.set(d, (t = { wanted, member: false, running: false }));
  t.wanted = wanted;
  t.member = node.ManagerStatus !== undefined;
  if (t.running || !roleDiffers(d, t)) return;
  t.running = true;
  log.info({ wanted, role: d.identity?.role }, "the cluster changed this node's role");
  void convergeLoop(d, t, log).finally(() => (t.running = false));
}

async function convergeLoop(d: Daemon, t: RoleTarget, log: Logger): Promise<void> {
  const backoff = new Backoff({ initialMs: 500, maxMs: 5000 });
  while (roleDiffers(d, t)) {
    try {
      await d.exclusive(() => (roleDiffers(d, t) ? changeRole(d, t) : Promise.resolve()));
      return;
    } catch (err) {
      const ms = backoff.next();
      log.warn({ wanted: t.wanted, err: errorMessage(err), retryInMs: ms }, 'role change failed; retrying');
      await sleep(ms);
    }
  }
}

/**
 * One pass towards `t.wanted`: a certificate with that role, then the runtime (a promoted worker
 * joins Raft and starts its manager; a demoted manager stops it and forgets its Raft state), then
 * for a manager the Raft membership. Each step is skipped when already done.
 */
async function changeRole(d: Daemon, t: RoleTarget): Promise<void> {
  const log = d.log.child({ component: 'role' });
  const wanted = t.wanted;
  if (!d.identity || !d.state) return;
  const remotes = managerAddresses(d).filter((a) => a !== d.state?.advertiseAddr);
  if (d.identity.role !== wanted) {
    await renewCertificate(d, log);
    if (d.identity.role !== wanted) {
      throw new DaemonError(
        'DAEMON_ROLE_PENDING',
        `the reissued certificate carries the role ${d.identity.role}, not ${wanted} yet`,
        'unavailable',
        { retryable: true },
      );
    }
  }
  if (wanted === 'worker') {
    log.info({ role: wanted }, 'role changed: switching runtime');
    await d.stopRole();
    await rm(d.layout.raft, { recursive: true, force: true });
    d.state = {
      ...d.state,
      role: wanted,
      raftPeers: {},
      remoteManagers: remotes.length > 0 ? remotes : d.state.remoteManagers,
    };
    await writeNodeState(d.layout, d.state);
    await d.startRole(false);
    return;
  }
  const remote = remotes[0] ?? d.state.remoteManagers[0] ?? '';
  if (d.manager === undefined) {
    log.info({ role: wanted }, 'role changed: switching runtime');
    await d.stopRole();
    d.state = { ...d.state, role: wanted };
    await joinRaft(d, remote);
  } else {
    // The manager runs but the leader does not count it: only the Join is missing.
    await joinRaftMembership(d, remote, d.raftPeers());
  }
  t.member = true;
}

/** A manager (new by join or promotion) enters Raft through `remote`: start Raft knowing the managers, then Join. */
export async function joinRaft(d: Daemon, remote: string): Promise<void> {
  const state = d.state!;
  const id = d.identity!;
  const deadline = (): number => Date.now() + 20_000;
  const peers: Record<string, string> = { [id.nodeId]: state.advertiseAddr };
  const ctl = new ControlClient(remote, d.clientCredentials(), clusterChannelOptions());
  try {
    const res = await unary(ctl.listNodes.bind(ctl), { Filters: { Roles: ['manager'] } }, { deadline: deadline() });
    for (const n of res.Nodes ?? []) if (n.ID && n.ManagerStatus?.Addr) peers[n.ID] = n.ManagerStatus.Addr;
  } finally {
    ctl.close();
  }
  d.state = { ...state, raftPeers: peers };
  await writeNodeState(d.layout, d.state);
  await d.startRole(false, peers);
  await joinRaftMembership(d, remote, peers);
}

/** Asks the leader (trying every known manager: followers refuse) to add this node to Raft. */
async function joinRaftMembership(d: Daemon, remote: string, peers: Record<string, string>): Promise<void> {
  const state = d.state!;
  const id = d.identity!;
  const deadline = (): number => Date.now() + 20_000;
  const targets = [
    ...new Set([
      remote,
      ...Object.entries(peers)
        .filter(([n]) => n !== id.nodeId)
        .map(([, a]) => a),
    ]),
  ].filter((a) => a !== '');
  let last: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    for (const addr of targets) {
      const rm_ = new RaftMembershipClient(addr, d.clientCredentials(), clusterChannelOptions());
      try {
        const res = await unary(rm_.join.bind(rm_), { Addr: state.advertiseAddr }, { deadline: deadline() });
        for (const m of res.Members ?? []) if (m.NodeID && m.Addr) d.manager?.transport.setPeer(m.NodeID, m.Addr);
        return;
      } catch (err) {
        last = err;
        const kind = (err as { kind?: string }).kind;
        if (kind === 'permission-denied' || kind === 'invalid-argument') throw err;
      } finally {
        rm_.close();
      }
    }
    await sleep(250);
  }
  throw last instanceof Error ? last : new Error(String(last));
}
