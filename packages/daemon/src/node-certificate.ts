/**
 * The node side of certificates: renewal before expiry (ca's CertRenewer: a random point between
 * 50 % and 80 % of the validity) and a forced renewal when the cluster wants another role for this
 * node (promote/demote): a CSR from the node's own key to a manager's CA service, authenticated
 * by the current certificate; the new certificate is installed live (TLS provider) and on disk,
 * then the role's runtime is switched.
 */
import { X509Certificate } from 'node:crypto';
import { CAClient, ControlClient, RaftMembershipClient, unary } from '@shoal/api';
import { CertRenewer, createCsr, type Validity } from '@shoal/ca';
import { sleep, systemClock, type Logger } from '@shoal/common';
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

/**
 * The cluster wants `wanted` for this node: get a certificate with that role, then switch the
 * runtime (a promoted worker joins Raft and starts its manager; a demoted manager stops it and
 * forgets its Raft state). Runs as a Swarm operation.
 */
export async function changeRole(d: Daemon, wanted: 'manager' | 'worker', log: Logger): Promise<void> {
  if (!d.identity || !d.state || d.identity.role === wanted) return;
  const remotes = managerAddresses(d).filter((a) => a !== d.state?.advertiseAddr);
  await renewCertificate(d, log);
  if (d.identity.role !== wanted) {
    log.warn({ wanted, got: d.identity.role }, 'the reissued certificate does not carry the new role yet');
    return;
  }
  log.info({ role: wanted }, 'role changed: switching runtime');
  await d.stopRole();
  d.state = { ...d.state, role: wanted };
  if (wanted === 'worker') {
    await rm(d.layout.raft, { recursive: true, force: true });
    d.state = { ...d.state, raftPeers: {}, remoteManagers: remotes.length > 0 ? remotes : d.state.remoteManagers };
    await writeNodeState(d.layout, d.state);
    await d.startRole(false);
    return;
  }
  await joinRaft(d, remotes[0] ?? d.state.remoteManagers[0] ?? '');
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
  let last: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    const rm_ = new RaftMembershipClient(remote, d.clientCredentials(), clusterChannelOptions());
    try {
      const res = await unary(rm_.join.bind(rm_), { Addr: state.advertiseAddr }, { deadline: deadline() });
      for (const m of res.Members ?? []) if (m.NodeID && m.Addr) d.manager?.transport.setPeer(m.NodeID, m.Addr);
      return;
    } catch (err) {
      last = err;
      if (!(err as { retryable?: boolean }).retryable) throw err;
      await sleep(250);
    } finally {
      rm_.close();
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}
