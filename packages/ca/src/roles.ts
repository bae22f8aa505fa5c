/** Node roles and how they appear in certificates (the OU), as SwarmKit names them. */

export type NodeRole = 'manager' | 'worker';
export const NODE_ROLES: readonly NodeRole[] = ['manager', 'worker'];

/** Organizational unit of a manager's certificate. */
export const MANAGER_OU = 'swarm-manager';
/** Organizational unit of a worker's certificate. */
export const WORKER_OU = 'swarm-worker';
/** Extra DNS name a manager's certificate carries: any manager can serve the CA RPCs. */
export const CA_DNS_NAME = 'swarm-ca';

export function roleToOu(role: NodeRole): string {
  return role === 'manager' ? MANAGER_OU : WORKER_OU;
}

export function ouToRole(ou: string): NodeRole | undefined {
  if (ou === MANAGER_OU) return 'manager';
  if (ou === WORKER_OU) return 'worker';
  return undefined;
}

/** Who a node certificate says its holder is. */
export interface NodeIdentity {
  /** The node ID (certificate CN), assigned by the CA. */
  readonly nodeId: string;
  readonly role: NodeRole;
  /** The cluster ID (certificate O). */
  readonly clusterId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Hex serial number of the certificate. */
  readonly serial: string;
}
